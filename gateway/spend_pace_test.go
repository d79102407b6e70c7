package gateway_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// TestGatewaySpendProjectsThePeriod: /v1/spend says where the team's
// month ends at the pace of its elapsed part and when the budget runs out
// at it. Ten days into March (the chains' and the endpoint's budget clock,
// given with WithLLMOptions), three calls of gpt-4o-mini at 1,000 + 100
// tokens have spent $0.00063 of $0.001: the 31-day month ends at $0.001953
// and 10,230 tokens, and the $0.00037 left is spent 0.37 / 0.63 × 10 days
// = 5 d 20 h 57 min 8 s later.
func TestGatewaySpendProjectsThePeriod(t *testing.T) {
	at := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"payments.yaml": "version: 1\nname: payments\nbudget: {team: {period: monthly, max_usd: 0.001}}\n"}
	e := start(t, pols, "", gateway.WithLLMOptions(llmwrap.WithBudgetOptions(budget.WithClock(func() time.Time { return at }))))
	e.upstream.Default(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 100}})
	for i := range 3 {
		body := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hi ` + string(rune('a'+i)) + `"}]}`
		if resp := e.do(t, "POST", "/v1/chat/completions", paymentsKey, body); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
	s := e.spendOf(t, paymentsKey)
	if s.SpentUSD != "0.000630" || !s.WindowStart.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("spend %+v: want $0.00063 in March", s)
	}
	if s.ProjectedUSD != "0.001953" || s.ProjectedTokens == nil || *s.ProjectedTokens != 10230 {
		t.Errorf("projected %q and %v tokens: want 0.001953 and 10230", s.ProjectedUSD, s.ProjectedTokens)
	}
	if want := time.Date(2026, 3, 16, 20, 57, 8, 0, time.UTC); s.RunsOutAt == nil || !s.RunsOutAt.Equal(want) {
		t.Errorf("runs out at %v, want %s", s.RunsOutAt, want)
	}

	// /metrics has the same figures, by team and period: an alert on
	// projected above limit warns before the budget runs out. The team
	// without a team budget (devops, on the default policy) has none.
	resp := e.do(t, "GET", "/metrics", "", "")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	for name, want := range map[string]string{"tokenwise_budget_spent_usd": "0.00063", "tokenwise_budget_limit_usd": "0.001",
		"tokenwise_budget_projected_usd": "0.001953", "tokenwise_budget_spent_tokens": "3300", "tokenwise_budget_projected_tokens": "10230"} {
		if got := gaugeValue(string(body), name, `team="payments"`); got != want {
			t.Errorf("%s of payments = %q, want %q", name, got, want)
		}
		if got := gaugeValue(string(body), name, `team="devops"`); got != "" {
			t.Errorf("%s of devops = %q, want none (no team budget)", name, got)
		}
	}
	if got := gaugeValue(string(body), "tokenwise_budget_limit_tokens", `team="payments"`); got != "" {
		t.Errorf("a token limit of payments, which has none: %q", got)
	}
}

// gaugeValue returns the value of the sample of metric name whose labels
// hold label, in the Prometheus text body ("" when there is none).
func gaugeValue(body, name, label string) string {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok || !strings.Contains(rest, label) {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			return rest[i+1:]
		}
	}
	return ""
}
