package llmwrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRunBudgetSurvivesReload spends most of a run budget, reloads the
// policy (the registry rebuilds every chain and budget), and checks that
// the run's next call is still refused for what it already spent.
func TestRunBudgetSurvivesReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Each call reserves about 40 input + 100 output tokens of gpt-4o
	// (≈ $0.0011) and is billed 100 in + 100 out = $0.00125.
	policy := func(maxCalls string) string {
		return "version: 1\nname: devops\nlimits: {max_calls: " + maxCalls + "}\n" +
			"budget:\n  request: {max_output_tokens: 100}\n  run: {max_usd: 0.003}\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(policy("10")), 0o644); err != nil {
		t.Fatal(err)
	}
	preg, err := policies.NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := llmwrap.NewRegistry(preg)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 100}})
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware(), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ask := func(ctx context.Context) error {
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "how full is the disk?"}}})
		return err
	}

	ctx, run := middleware.StartRun(context.Background(), "ticket-1")
	for i := range 2 {
		if err := ask(ctx); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if i == 0 { // mid-run: the policy changes and every chain is rebuilt
			gen := reg.Generation()
			if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(policy("20")), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := preg.Reload(); err != nil {
				t.Fatal(err)
			}
			if reg.Generation() == gen {
				t.Fatal("the reload did not rebuild the chains")
			}
		}
	}
	if got := run.Totals().CostPico; got != 2*1_250_000_000 {
		t.Fatalf("run spent %s, want 2 × $0.00125", middleware.FormatPico(got))
	}
	// $0.0025 spent of $0.003: the third call's worst case no longer fits.
	err = ask(ctx)
	if !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("third call after the reload: err = %v, want the run budget exceeded", err)
	}
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Scope != "run" || e.Used != 2_500 {
		t.Fatalf("refusal = %+v, want scope run with $0.0025 used", e)
	}
	if srv.Count() != 2 {
		t.Fatalf("server saw %d calls, want 2", srv.Count())
	}
}

// TestRollingWindowChangedByAReload: a team's rolling window goes from one
// hour to a day by a reload. The in-memory ledger kept counting with the
// window it was created with: spend left it after an hour, and the team
// spent its daily limit again every hour. After the reload the ledger
// counts the last day, as a Redis ledger (keyed by its window) does.
func TestRollingWindowChangedByAReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := func(window string) string {
		return "version: 1\nname: devops\n" +
			"budget:\n  request: {max_output_tokens: 100}\n  team: {period: rolling, window: " + window + ", max_tokens: 1000}\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(policy("1h")), 0o644); err != nil {
		t.Fatal(err)
	}
	preg, err := policies.NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	reg, err := llmwrap.NewRegistry(preg, llmwrap.WithBudgetOptions(budget.WithClock(clock)))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 850, CompletionTokens: 100}})
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware(), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ask := func() error {
		_, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "how full is the disk?"}}})
		return err
	}
	if err := ask(); err != nil { // 950 tokens in the hour's window
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(policy("24h")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := preg.Reload(); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Hour)
	if err := ask(); err != nil { // 950 tokens in the day's window
		t.Fatalf("first call of the day's window: %v", err)
	}
	advance(2 * time.Hour)
	// 950 of the 1000 tokens of the day are spent: the worst case of
	// another call does not fit.
	if err := ask(); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("a call 2h after 950 of a day's 1000 tokens were spent: err = %v, want the team budget exceeded", err)
	}
	if srv.Count() != 2 {
		t.Fatalf("server saw %d calls, want 2", srv.Count())
	}
}
