package gateway_test

// The team's ledger (GET /v1/spend) against the gateway's cost metric,
// for the same calls, both against the provider's bill computed by hand.

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
)

// chatAs makes one chat call of model as the devops team.
func chatAs(t *testing.T, e *env, model string) {
	t.Helper()
	r := e.do(t, "POST", "/v1/chat/completions", devopsKey,
		`{"model":"`+model+`","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", r.StatusCode, b)
	}
}

// scriptedGateway is the default test gateway, served by serveFile (its
// metrics read with finalMetrics), in front of a scripted upstream.
func scriptedGateway(t *testing.T) *env {
	t.Helper()
	t.Setenv(upstreamEnv, upstreamKey)
	up := openaitest.NewServer(t)
	e := serveFile(t, writeFiles(t, up.URL, defaultPolicies, ""))
	e.upstream = up
	return e
}

// 500 chat calls of gpt-4o-mini, each billed 11 prompt and 1 completion
// token by the provider ($0.00000225). The cost metric sums them exactly
// ($0.001125), and so does /v1/spend (it used to round every call up to a
// micro-dollar and say $0.0015: a third more than the bill, and a team's
// budget ran out that much early).
func TestSpendDriftsFromTheBill(t *testing.T) {
	e := scriptedGateway(t)
	e.upstream.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 11, CompletionTokens: 1}})
	const calls = 500
	for range calls {
		chatAs(t, e, "gpt-4o-mini")
	}
	const bill = calls * (11*150_000 + 600_000) // pico
	spent := e.spend(t).SpentUSD
	m := e.finalMetrics(t)
	if got, _ := metricValue(t, m, "tokenwise_cost_total", `gen_ai_response_model="gpt-4o-mini"`, `tokenwise_team="devops"`); got != strconv.FormatFloat(bill, 'g', -1, 64) {
		t.Errorf("cost metric %s, want %d pico", got, int64(bill))
	}
	if spent != "0.001125" { // the bill, exactly a whole number of micro-dollars
		t.Errorf("/v1/spend says $%s for a bill of %s", spent, policies.PicoUSD(bill))
	}
}

// Asked for gpt-4o, the upstream (an Azure deployment of version
// 2024-05-13) answers as "gpt-4o-2024-05-13", $5/$15 per 1M: the cost
// metric and /v1/spend both bill the snapshot ($0.0065), not gpt-4o's
// $2.50/$10 ($0.0035).
func TestSpendPricesTheAnsweringModel(t *testing.T) {
	e := scriptedGateway(t)
	e.upstream.On().Reply(openaitest.Reply{Content: "ok", Model: "gpt-4o-2024-05-13",
		Usage: &openaitest.Usage{PromptTokens: 1_000, CompletionTokens: 100}})
	chatAs(t, e, "gpt-4o")
	spent := e.spend(t).SpentUSD
	m := e.finalMetrics(t)
	got, _ := metricValue(t, m, "tokenwise_cost_total", `gen_ai_response_model="gpt-4o-2024-05-13"`, `tokenwise_team="devops"`)
	if spent != "0.006500" || got != "6.5e+09" {
		t.Errorf("/v1/spend $%s, cost metric %s pico; the provider bills $0.0065 (6.5e+09 pico)", spent, got)
	}
}

// A chat call and a Responses call, both asking for gpt-4o and answered
// as gpt-4o-2024-05-13, are billed by one rule: at the snapshot's price,
// or — when the team's policy itself prices gpt-4o (a deployment's
// contract price) — at the policy's price, in /v1/spend and the cost
// metric alike.
func TestSpendPricesChatAndResponsesByOneRule(t *testing.T) {
	for _, tt := range []struct {
		name, models string
		spent        string  // after both calls
		cost         float64 // the cost metric of both, pico
	}{
		{"catalog", "", "0.013000", 13e9},
		{"policy price of the model asked for", "models:\n  gpt-4o: {input_per_1m: 2, output_per_1m: 8}\n", "0.005600", 5.6e9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := newModelUpstream(t)
			up.body["gpt-4o"] = `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-2024-05-13","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`
			t.Setenv(upstreamEnv, upstreamKey)
			e := serveFile(t, writeFiles(t, up.URL, fallbackPolicies(tt.models), ""))
			chatAs(t, e, "gpt-4o")
			up.mu.Lock()
			up.body["gpt-4o"] = `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-2024-05-13","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`
			up.mu.Unlock()
			r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","max_output_tokens":200,"input":"hi"}`)
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("responses: %d %s", r.StatusCode, b)
			}
			spent := e.spend(t).SpentUSD
			m := e.finalMetrics(t)
			// (A Responses call is labelled with the model it was sent
			// to, a chat call with the answer's name: their sum.)
			var cost float64
			for line := range strings.SplitSeq(m, "\n") {
				if strings.HasPrefix(line, "tokenwise_cost_total{") && strings.Contains(line, `tokenwise_team="devops"`) {
					v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
					if err != nil {
						t.Fatal(err)
					}
					cost += v
				}
			}
			if cost != tt.cost {
				t.Errorf("cost metric %g pico, want %g", cost, tt.cost)
			}
			if spent != tt.spent {
				t.Errorf("/v1/spend $%s, want $%s", spent, tt.spent)
			}
		})
	}
}
