package route

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestKeywordMemoAnswersAsTheSearch: over random texts searched again and
// again (the same strings, as a resent conversation has them, and equal
// copies at other addresses) for random needles, from several goroutines,
// the memo's answer is always the search's, and it stays within its byte
// bound.
func TestKeywordMemoAnswersAsTheSearch(t *testing.T) {
	t.Parallel()
	words := []string{"deploy", "Deploy", "DEPLOY", "deployment", "rollback", "status", "ſtatus", "İstanbul", "istanbul", "k8s", "K8S", "kelvin", "\u212aelvin",
		"error", "errors", "_error", "error_", "db", "the", "a", "日本", "ünïcode", "x", "\n", " ", ", ", ".", "-", "🚀"}
	rng := rand.New(rand.NewPCG(11, 12))
	var needles []needle
	for i := range 40 {
		w := words[rng.IntN(len(words))]
		if i%5 == 0 {
			w += " " + words[rng.IntN(len(words))]
		}
		n := newNeedle(w)
		n.bit = int8(i)
		needles = append(needles, n)
	}
	var texts []string
	for range 300 {
		var sb strings.Builder
		for sb.Len() < kwMinText || rng.IntN(8) > 0 {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteString([]string{" ", "", ",", "\t"}[rng.IntN(4)])
		}
		texts = append(texts, sb.String())
	}
	memo := newKWMemo(64, 64<<10) // small: entries collide and get forgotten
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for range 20000 {
				s := texts[rng.IntN(len(texts))]
				if rng.IntN(10) == 0 {
					s = strings.Clone(s) // equal bytes, another string
				}
				n := &needles[rng.IntN(len(needles))]
				whole := n.bit%2 == 0 // a needle is always searched one way
				if got, want := memo.in(n, s, whole), n.in(s, whole); got != want {
					t.Errorf("needle %q in %q (whole %v): memo %v, search %v", n.s, s, whole, got, want)
					return
				}
				if b := memo.bytes.Load(); b > memo.max+int64(len(s))+kwOverhead {
					t.Errorf("memo keeps %d bytes, bound %d", b, memo.max)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkKeywordsConversation50 is a routing decision on a resent
// 50-message conversation of about 400 bytes a message, whose three
// keyword rules (six keywords, two of them over the whole conversation)
// miss: with the keyword memo, and without it (every text searched).
func BenchmarkKeywordsConversation50(b *testing.B) {
	cfg := Config{Default: "gpt-4o", Rules: []Rule{
		{Name: "deploys", When: Condition{Keywords: []string{"deploy", "rollback"}}, Model: "gpt-4.1"},
		{Name: "incidents", When: Condition{Keywords: []string{"incident", "outage"}, KeywordsIn: KeywordsInConversation}, Model: "gpt-4.1"},
		{Name: "money", When: Condition{Keywords: []string{"invoice", "refund"}, KeywordsIn: KeywordsInConversation}, Model: "gpt-4o-mini"},
	}}
	req := &middleware.Request{Model: "gpt-4o"}
	for i := range 50 {
		req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf(
			"Turn %d: the health check on port %d answered in %d ms, the error budget for the week is at %d%% and "+
				"the on-call engineer asked whether the canary should be promoted before the freeze on Friday. "+
				"Logs mention a retry storm between 10:%02d and 10:%02d that cleared without intervention; nothing else to report today, all green.",
			i, 8000+i, 20+i, 90-i, i%60, (i+4)%60)})
	}
	for _, memo := range []bool{true, false} {
		b.Run(fmt.Sprintf("memo=%v", memo), func(b *testing.B) {
			rules, err := NewRules(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if !memo {
				rules.kw = nil
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := rules.Route(ctx, NewQuery(ctx, req)); d.Model != "gpt-4o" {
					b.Fatal(d)
				}
			}
		})
	}
}
