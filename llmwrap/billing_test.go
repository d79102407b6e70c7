package llmwrap_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// TestEachAttemptIsBilledOnce: a call retried on gpt-4o and answered by
// the gpt-4o-mini fallback (as a dated snapshot, with cached prompt
// tokens) records each provider attempt once under its own model, priced
// once at list price; the call's cost, the event's, the run's and the
// per-model totals are that one figure, exactly.
func TestEachAttemptIsBilledOnce(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1,
		Budget:   policies.Budget{Run: policies.RunBudget{MaxUSD: policies.Dollar}, Team: policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.Dollar}},
		Fallback: policies.Fallback{Models: []string{"gpt-4o-mini"}, Retry: policies.Retry{MaxAttempts: 2, BaseDelay: policies.Duration(1)}}}
	srv := openaitest.New()
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Unavailable())
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "Disk at 95%.", Model: "gpt-4o-mini-2024-07-18",
		Usage: &openaitest.Usage{PromptTokens: 1_234, CachedTokens: 1_024, CompletionTokens: 57}})
	rec := &middlewaretest.Recorder{}
	chain := llmwrap.MustBuild(p, llmwrap.WithObserver(rec), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	ctx, run := middleware.StartRun(context.Background(), "billing")
	if _, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}}); err != nil {
		t.Fatal(err)
	}
	// (1234 − 1024) × $0.15 + 1024 × $0.075 + 57 × $0.60 per 1M = $0.0001425.
	const want = 210*150_000 + 1_024*75_000 + 57*600_000
	fin := middlewaretest.Of[middleware.CallFinished](rec)
	if len(fin) != 1 {
		t.Fatalf("%d CallFinished events", len(fin))
	}
	f := fin[0].Facts
	if len(f.Attempts) != 3 {
		t.Fatalf("attempts = %+v, want gpt-4o twice, then gpt-4o-mini", f.Attempts)
	}
	for i, a := range f.Attempts[:2] {
		if a.Model != "gpt-4o" || a.Err == nil || a.CostPico != 0 {
			t.Errorf("attempt %d = %+v, want a failed, unbilled gpt-4o attempt", i+1, a)
		}
	}
	if a := f.Attempts[2]; a.Model != "gpt-4o-mini-2024-07-18" || a.Err != nil || a.CostPico != want {
		t.Errorf("attempt 3 = %+v, want gpt-4o-mini-2024-07-18 billed %s", a, middleware.FormatPico(want))
	}
	tot := run.Totals()
	if f.CostPico != want || tot.CostPico != want {
		t.Errorf("call cost %s, run cost %s, want %s", middleware.FormatPico(f.CostPico), middleware.FormatPico(tot.CostPico), middleware.FormatPico(want))
	}
	var byModel int64
	for _, m := range tot.ByModel {
		byModel += m.CostPico
	}
	if byModel != want || tot.ByModel["gpt-4o-mini-2024-07-18"].CostPico != want || tot.ByModel["gpt-4o-mini-2024-07-18"].Calls != 1 {
		t.Errorf("per-model totals %+v do not add up to %s", tot.ByModel, middleware.FormatPico(want))
	}
	if got := middleware.FormatPico(want); got != "$0.0001425" {
		t.Errorf("printed %s", got)
	}

	// The JSON report reads the same record: each attempt under its own
	// model, and figures that add up.
	b, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Cost  int64 `json:"cost_usd_pico"`
		Calls []struct {
			Cost   int64 `json:"cost_usd_pico"`
			Billed []struct {
				Model string `json:"model"`
				Cost  int64  `json:"cost_usd_pico"`
			} `json:"billed_attempts"`
		} `json:"calls"`
		ByModel map[string]struct {
			Cost int64 `json:"cost_usd_pico"`
		} `json:"by_model"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var attempts, models int64
	for _, c := range rep.Calls {
		for _, a := range c.Billed {
			attempts += a.Cost
		}
	}
	for _, m := range rep.ByModel {
		models += m.Cost
	}
	if rep.Cost != want || len(rep.Calls) != 1 || rep.Calls[0].Cost != want || len(rep.Calls[0].Billed) != 3 ||
		rep.Calls[0].Billed[0].Model != "gpt-4o" || attempts != want || models != want {
		t.Errorf("JSON report does not add up to %d: %s", int64(want), b)
	}
}
