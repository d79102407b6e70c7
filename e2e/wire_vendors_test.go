package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestVendorShapesAreBilledAsTheProviderBills: for each named server's
// shape (wiregen.Vendors: vLLM's usage in every chunk, Groq's x_groq
// usage, Azure's chunks of no choices, DeepSeek's cache counts,
// OpenRouter's cost and mid-stream error, usage of nulls, floats, huge
// and negative counts...), go-openai through the transport bills the call
// the usage the provider reported, wherever it put it — an estimate,
// flagged, only when it reported none (or a count that is no count) —
// and the team's ledger charges what the call was billed, no
// reservation left.
func TestVendorShapesAreBilledAsTheProviderBills(t *testing.T) {
	for _, v := range wiregen.Vendors {
		t.Run(v.Name, func(t *testing.T) {
			c := v.Case()
			srv := &wiregen.Server{}
			srv.Set(c.Wire)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			obs := new(recorder) // the calls' facts: obs.callFacts()
			p := policies.Default()
			p.Budget.Team = policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: 1_000_000 * policies.Dollar}
			store := budget.NewMemoryStore()
			chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			cfg := goopenai.DefaultConfig("k")
			cfg.BaseURL = ts.URL
			cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(base))
			got := wiregen.Call(middleware.WithTeam(context.Background(), "sre"), goopenai.NewClientWithConfig(cfg), c.Request(v.Name))
			if v.WantErr && got.Err == nil {
				t.Errorf("the provider's failure read as a success: %v", got.Answer)
			}
			facts := obs.callFacts()
			f := checkBill(t, v, facts)
			if f.CostPico <= 0 {
				t.Errorf("cost %d pico", f.CostPico)
			}
			want := f.CostPico / 1_000_000 // rounded up once, as a ledger reads its total
			if f.CostPico%1_000_000 != 0 {
				want++
			}
			if spent := ledgerSpent(t, p, store, "sre"); spent != want {
				t.Errorf("the ledger charged %d micro-USD; the call was billed %d pico", spent, f.CostPico)
			}
		})
	}
}

// checkBill checks that the one call of facts was billed v's bill (an
// estimate, flagged, when v reports none), and returns its facts.
func checkBill(t *testing.T, v wiregen.Vendor, facts []middleware.CallFacts) middleware.CallFacts {
	t.Helper()
	if len(facts) != 1 || len(facts[0].Attempts) == 0 {
		t.Fatalf("calls %+v", facts)
	}
	f := facts[0]
	billed := f.Attempts[len(f.Attempts)-1]
	u := billed.Usage
	switch {
	case v.Bill == nil && !billed.Estimated:
		t.Errorf("billed %+v as the provider's count; it reported none", u)
	case v.Bill != nil && (billed.Estimated || u.InputTokens != v.Bill.Prompt || u.OutputTokens != v.Bill.Completion ||
		u.CachedInputTokens != v.Bill.Cached || u.ReasoningTokens != v.Bill.Reasoning || u.CacheWriteTokens != v.Bill.CacheWrite):
		t.Errorf("billed %+v (estimated %t); the provider billed %+v", u, billed.Estimated, *v.Bill)
	}
	return f
}

// TestLangchaingoVendorShapesAreBilledAsTheProviderBills: for each named
// server's shape, langchaingo through the adapter (twlc.NewTransport
// installed) bills the call the usage the provider reported — Groq's in
// x_groq too, which the backend does not read; counts of 12.0 and a
// created time as a string, which it cannot decode — an estimate,
// flagged, only when it reported none; an answer that is no failure is
// returned as a success; and the team's ledger charges what the call was
// billed.
func TestLangchaingoVendorShapesAreBilledAsTheProviderBills(t *testing.T) {
	for _, v := range wiregen.Vendors {
		t.Run(v.Name, func(t *testing.T) {
			c := v.Case()
			srv := &wiregen.Server{}
			srv.Set(c.Wire)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			obs := new(recorder) // the calls' facts: obs.callFacts()
			p := policies.Default()
			p.Budget.Team = policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: 1_000_000 * policies.Dollar}
			store := budget.NewMemoryStore()
			chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
			if err != nil {
				t.Fatal(err)
			}
			got := lcCall(middleware.WithTeam(context.Background(), "sre"), twlc.New(twlc.Models{"gpt-4o-mini": inner}, chain), c, v.Name)
			if v.WantErr && got.err == nil {
				t.Errorf("the provider's failure read as a success: %+v", got.choices)
			}
			if !v.WantErr && got.err != nil {
				t.Errorf("the answer failed: %v", got.err)
			}
			facts := obs.callFacts()
			f := checkBill(t, v, facts)
			want := f.CostPico / 1_000_000
			if f.CostPico%1_000_000 != 0 {
				want++
			}
			if spent := ledgerSpent(t, p, store, "sre"); spent != want {
				t.Errorf("the ledger charged %d micro-USD; the call was billed %d pico", spent, f.CostPico)
			}
		})
	}
}
