package langchaingo_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

// optionPool is the pool of langchaingo call options the property draws
// from, each a family of variants: a request has at most one variant of
// each family (or none).
var optionPool = [][]llms.CallOption{
	{llms.WithTemperature(0), llms.WithTemperature(0.7)},
	{llms.WithTopP(0.5), llms.WithTopP(1)},
	{llms.WithSeed(1), llms.WithSeed(2)},
	{llms.WithN(2), llms.WithCandidateCount(2), llms.WithN(3)},
	{llms.WithMaxTokens(50), llms.WithMaxTokens(51)},
	{llms.WithStopWords([]string{"x"}), llms.WithStopWords([]string{"y"})},
	{llms.WithJSONMode(), llms.WithResponseMIMEType("application/json"), llms.WithResponseMIMEType("text/plain")},
	{llms.WithFrequencyPenalty(0.5), llms.WithPresencePenalty(0.5)},
	{llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "f", Parameters: map[string]any{"type": "object"}}}}),
		llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "f", Description: "d", Parameters: map[string]any{"type": "object"}}}})},
	{llms.WithMetadata(map[string]any{"openai:use_legacy_max_tokens": true}), llms.WithMetadata(map[string]any{"tag": "a"})},
	{llms.WithModel("gpt-4o-mini")},
}

// draw returns a random request's options: for each family, none or one
// variant (its index in the family, -1 for none).
func draw(r *rand.Rand) []int {
	pick := make([]int, len(optionPool))
	for i, fam := range optionPool {
		pick[i] = r.IntN(len(fam)+1) - 1
	}
	return pick
}

func optionsOf(pick []int) []llms.CallOption {
	var opts []llms.CallOption
	for i, v := range pick {
		if v >= 0 {
			opts = append(opts, optionPool[i][v])
		}
	}
	return opts
}

// sentBody is what the provider reads of a recorded request: its body
// decoded, the neutral members left out.
func sentBody(t *testing.T, rec openaitest.Recorded) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body, &m); err != nil {
		t.Fatal(err)
	}
	for k := range m {
		if middleware.NeutralField(k) {
			delete(m, k)
		}
	}
	return m
}

func sameSent(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestCacheNeverAnswersARequestLangchaingoSendsDifferently is the cache's
// property through the langchaingo adapter: two GenerateContent calls
// whose options make langchaingo's openai backend send bodies that differ
// (neutral members aside) never share an answer. Each pair differs in one
// option family.
func TestCacheNeverAnswersARequestLangchaingoSendsDifferently(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text("an answer"))
	plain := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true), "gpt-4o-mini": newOpenAI(t, srv, "gpt-4o-mini", true)}, nil, twlc.WithDefaultModel("gpt-4o"))
	for i := range 300 {
		a := draw(r)
		b := append([]int(nil), a...)
		fam := r.IntN(len(optionPool))
		for b[fam] == a[fam] {
			b[fam] = r.IntN(len(optionPool[fam])+1) - 1
		}
		// What each request sends, without a cache.
		srv.Reset()
		srv.Default(openaitest.Text("an answer"))
		msgs := []llms.MessageContent{human(fmt.Sprint("q", i))}
		if _, err := plain.GenerateContent(t.Context(), msgs, optionsOf(a)...); err != nil {
			t.Fatal(err)
		}
		if _, err := plain.GenerateContent(t.Context(), msgs, optionsOf(b)...); err != nil {
			t.Fatal(err)
		}
		recs := srv.Requests()
		if sameSent(sentBody(t, recs[0]), sentBody(t, recs[1])) {
			continue // the same request: may share an answer
		}
		// Through a cache: the second call must reach the provider.
		srv.Reset()
		srv.Default(openaitest.Text("an answer"))
		c, err := cache.New(cache.Config{})
		if err != nil {
			t.Fatal(err)
		}
		llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true), "gpt-4o-mini": newOpenAI(t, srv, "gpt-4o-mini", true)}, c.Middleware(), twlc.WithDefaultModel("gpt-4o"))
		if _, err := llm.GenerateContent(t.Context(), msgs, optionsOf(a)...); err != nil {
			t.Fatal(err)
		}
		if _, err := llm.GenerateContent(t.Context(), msgs, optionsOf(b)...); err != nil {
			t.Fatal(err)
		}
		if srv.Count() != 2 {
			t.Fatalf("family %d: options %v then %v: the second call was a hit, yet it sends\n%s\nnot\n%s",
				fam, a, b, recs[1].Body, recs[0].Body)
		}
	}
}
