package gateway_test

import (
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewaySpendSaysWhenNothingIsTracked: /v1/spend of a team whose
// policy sets no team budget keeps no ledger: it says so (tracked false,
// a note naming where the spend is) instead of a spent_usd of "0.000000"
// that reads as nothing spent, after the team did spend. A team with a
// budget is tracked.
func TestGatewaySpendSaysWhenNothingIsTracked(t *testing.T) {
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\n",
		"payments.yaml": "version: 1\nname: payments\nbudget: {team: {period: monthly, max_usd: 1}}\n"}
	e := start(t, pols, "")
	e.upstream.Default(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 100}})
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, key := range []string{devopsKey, paymentsKey} {
		if resp := e.do(t, "POST", "/v1/chat/completions", key, body); resp.StatusCode != 200 {
			t.Fatalf("call: %d", resp.StatusCode)
		}
	}
	s := e.spendOf(t, devopsKey)
	if s.Tracked || s.SpentUSD != "" || !strings.Contains(s.Note, "no team budget") || !strings.Contains(s.Note, "/metrics") {
		t.Errorf("spend of a team without a team budget %+v: want tracked false, no spent_usd, a note saying why and where its spend is", s)
	}
	if p := e.spendOf(t, paymentsKey); !p.Tracked || p.SpentUSD != "0.000210" || p.Note != "" {
		t.Errorf("spend of a team with a budget %+v: want tracked, $0.000210 spent", p)
	}
}
