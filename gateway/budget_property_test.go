package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayChatBudgetIsExactUnderConcurrency: go-openai clients call
// the gateway's chat completions concurrently — streams and not, n > 1,
// tool calls, answers the response cache holds, a 500 or a 429 retried, a
// model that always fails and falls back to the cheaper one — under a team
// budget in tokens or USD, in memory or in Redis. At the end the team's
// ledger holds exactly what the upstream's answers bill (their usage at
// the catalog's rates: the oracle is the scripted upstream's record, not
// tokenwise's report), never more than its limit, nothing is reserved or
// in flight, and no call the budget refused got an answer from the
// upstream.
func TestGatewayChatBudgetIsExactUnderConcurrency(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			store := ""
			if seed >= 2 {
				_, prefix := testRedis(t)
				store = fmt.Sprintf("  store: {kind: redis, key_prefix: %s}\n", prefix)
			}
			gatewayBudgetProperty(t, seed, store)
		})
	}
}

// per-token list prices (pico-dollars) of the catalog's models the test uses.
var picoPerToken = map[string][2]int64{
	"gpt-4o":      {2_500_000, 10_000_000},
	"gpt-4o-mini": {150_000, 600_000},
}

func gatewayBudgetProperty(t *testing.T, seed uint64, store string) {
	limit := "max_usd: 0.004"
	if seed%2 == 1 {
		limit = "max_tokens: 3000"
	}
	const maxOut = 40
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": fmt.Sprintf(`version: 1
name: devops
budget:
  team: {period: monthly, %s}
  min_output_tokens: %d
%scache: {enabled: true, ttl: 1h, max_entries: 1000}
fallback:
  models: [gpt-4o, gpt-4o-mini]
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
`, limit, 2*maxOut, store),
	}
	extra := ""
	if store != "" {
		extra = fmt.Sprintf("redis: {addr: %q}\n", redisAddr())
	}
	e := start(t, pols, extra)
	up := e.upstream

	// billed[rule] is what an answer of the rule bills: its model's
	// rates are applied to the request's model when it is served.
	type bill struct{ in, out int }
	billed := map[int]bill{}
	rules := 0 // the rules added: the index of the next one
	rule := func(marker string, times int, rep openaitest.Reply, ms ...openaitest.Matcher) {
		r := up.On(append(ms, openaitest.LastContains(marker))...).Reply(rep)
		if times > 0 {
			r.Times(times)
		}
		if rep.Usage != nil && rep.Status == 0 {
			billed[rules] = bill{rep.Usage.PromptTokens, rep.Usage.CompletionTokens}
		}
		rules++
	}
	answer := func(r *rand.Rand) openaitest.Reply {
		k := 1 + r.IntN(maxOut)
		return openaitest.Reply{Content: words(k), Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: k}}
	}

	kinds := []string{"ok", "stream", "n2", "tool", "500", "429", "fallback", "cache"}
	type call struct {
		kind, marker string
		req          goopenai.ChatCompletionRequest
	}
	r := rand.New(rand.NewPCG(seed, 11))
	var calls []call
	for i := range 120 {
		kind := kinds[r.IntN(len(kinds))]
		marker := fmt.Sprintf("#c%d.", i)
		req := goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: maxOut,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "question " + marker}}}
		switch kind {
		case "ok", "stream":
			rule(marker, 0, answer(r))
		case "n2":
			req.N = 2
			a, b := answer(r), answer(r)
			a.Alternatives = []openaitest.Reply{{Content: b.Content}}
			a.Usage.CompletionTokens += b.Usage.CompletionTokens
			rule(marker, 0, a)
		case "tool":
			k := 10 + r.IntN(maxOut-10)
			rule(marker, 0, openaitest.Reply{ToolCalls: []openaitest.ToolCall{openaitest.Call("", "search", `{"q":"`+words(k-8)+`"}`)},
				Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: k}})
			req.Tools = []goopenai.Tool{{Type: "function", Function: &goopenai.FunctionDefinition{Name: "search",
				Parameters: map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}}}}}
		case "500":
			rule(marker, 1, openaitest.ServerError())
			rule(marker, 0, answer(r))
		case "429":
			rule(marker, 1, openaitest.RateLimited(0))
			rule(marker, 0, answer(r))
		case "fallback":
			rule(marker, 0, openaitest.ServerError(), openaitest.Model("gpt-4o"))
			rule(marker, 0, answer(r), openaitest.Model("gpt-4o-mini"))
		case "cache":
			// One of three questions, asked again and again.
			marker = fmt.Sprintf("#cached%d.", r.IntN(3))
			req.Messages[0].Content = "question " + marker
			known := false
			for _, c := range calls {
				known = known || c.marker == marker
			}
			if !known {
				rule(marker, 0, answer(r))
			}
		}
		calls = append(calls, call{kind, marker, req})
	}

	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = e.url + "/v1"
	client := goopenai.NewClientWithConfig(cfg)
	var mu sync.Mutex
	refused := map[string]bool{}
	var wg sync.WaitGroup
	next := 0
	for range 8 {
		wg.Go(func() {
			for {
				mu.Lock()
				if next == len(calls) {
					mu.Unlock()
					return
				}
				c := calls[next]
				next++
				mu.Unlock()
				var err error
				if c.kind == "stream" {
					var st *goopenai.ChatCompletionStream
					if st, err = client.CreateChatCompletionStream(context.Background(), c.req); err == nil {
						for err == nil {
							_, err = st.Recv()
						}
						if errors.Is(err, io.EOF) {
							err = nil
						}
						st.Close()
					}
				} else {
					_, err = client.CreateChatCompletion(context.Background(), c.req)
				}
				var ae *goopenai.APIError
				switch {
				case err == nil:
				case errors.As(err, &ae) && ae.HTTPStatusCode == http.StatusTooManyRequests && strings.Contains(ae.Message, "budget"):
					mu.Lock()
					refused[c.marker] = true
					mu.Unlock()
				case c.kind == "fallback" && errors.As(err, &ae) && ae.HTTPStatusCode == http.StatusInternalServerError:
					// gpt-4o failed, and the budget refused gpt-4o-mini:
					// the provider's failure is the call's.
					mu.Lock()
					refused[c.marker] = true
					mu.Unlock()
				default:
					t.Errorf("%s call %s: %v", c.kind, c.marker, err)
				}
				sp := e.spend(t)
				if over(t, sp) {
					t.Errorf("after a %s call: spend %+v, past its limit", c.kind, sp)
				}
			}
		})
	}
	wg.Wait()

	var pico, tokens int64
	answered := map[string]bool{}
	for _, rec := range up.Requests() {
		b, ok := billed[rec.Rule]
		if !ok || rec.Chat == nil {
			continue
		}
		rates := picoPerToken[rec.Chat.Model]
		pico += int64(b.in)*rates[0] + int64(b.out)*rates[1]
		tokens += int64(b.in + b.out)
		answered[rec.Chat.LastMessage().Content.String()] = true
	}
	for _, c := range calls {
		if refused[c.marker] && answered[c.req.Messages[0].Content] && c.kind != "cache" {
			t.Errorf("the %s call %s was refused by the budget, and answered by the upstream", c.kind, c.marker)
		}
	}
	sp := e.spend(t)
	want := fmt.Sprintf("%.6f", float64((pico+999_999)/1_000_000)/1e6)
	if sp.SpentUSD != want || sp.SpentTokens != tokens || sp.ReservedUSD != "0.000000" || sp.InFlightCalls != 0 || over(t, sp) {
		t.Errorf("spend %+v; want spent $%s (%d pico-USD) and %d tokens, as the upstream billed, nothing reserved or in flight",
			sp, want, pico, tokens)
	}
	if len(refused) == 0 {
		t.Errorf("no call refused: the budget did not bind")
	}
	t.Logf("%d calls, %d refused, %d upstream requests; spend %+v", len(calls), len(refused), up.Count(), sp)
}

// over reports whether sp spent past its limit.
func over(t *testing.T, sp gateway.Spend) bool {
	t.Helper()
	if sp.LimitTokens > 0 && sp.SpentTokens > sp.LimitTokens {
		return true
	}
	if sp.LimitUSD == "" {
		return false
	}
	spent, err1 := strconv.ParseFloat(sp.SpentUSD, 64)
	lim, err2 := strconv.ParseFloat(sp.LimitUSD, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return spent > lim+1e-9
}

func words(n int) string { return strings.TrimSpace(strings.Repeat(" ok", n)) }
