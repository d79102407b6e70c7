package e2e

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestMaxTokensFitsTheRemainingBudget: a run budget that cannot afford
// gpt-4o's maximum output (16,384 tokens, $0.16) but affords a useful
// answer sends the call with max_tokens lowered to what it affords, and
// says so; once less than budget.min_output_tokens is affordable, the call
// is refused.
func TestMaxTokensFitsTheRemainingBudget(t *testing.T) {
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: policies.MicroUSD(20_000)}, MinOutputTokens: 300}}
	// gpt-4o priced by the policy itself, at the catalog's figures: billed,
	// and so reserved, at $2.50/$10 alone, not at its snapshot
	// gpt-4o-2024-05-13's $5/$15 (policies.Policy.AnswerModels).
	gpt4o, _ := p.Model("gpt-4o")
	p.Models = map[string]policies.ModelSpec{"gpt-4o": gpt4o}
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "Disk at 95%; clean /var/log.", Usage: &openaitest.Usage{PromptTokens: 30, CompletionTokens: 1_000}})
	events := &recorder{}
	chain := llmwrap.MustBuild(p, llmwrap.WithObserver(events), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(context.Background(), "fit")
	ask := func() error {
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Why is the disk full?"}}})
		return err
	}
	est := tokens.New().Request("gpt-4o", &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Why is the disk full?"}}})
	// fits returns the largest max_tokens whose worst case fits left µ$.
	fits := func(left int64) int {
		return int((left*1_000_000 - est*2_500_000) / 10_000_000)
	}

	// 1. $0.02 left: about 2,000 output tokens fit, not 16,384.
	if err := ask(); err != nil {
		t.Fatal(err)
	}
	sent := srv.Requests()[0].Chat.MaxCompletionTokens
	if sent == nil || *sent != fits(20_000) {
		t.Fatalf("max_tokens sent = %v, want %d (what $0.02 affords)", sent, fits(20_000))
	}
	if c := run.Calls()[0]; len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "max_tokens lowered to") {
		t.Errorf("the call's notes do not say max_tokens was lowered: %q", c.Notes)
	}
	if fit := events.exceeded(); len(fit) != 1 || fit[0].Action != "fit" || fit[0].Scope != "run" {
		t.Errorf("events = %+v, want one BudgetExceeded with action fit", fit)
	}
	// Billed 30 × $2.50 + 1,000 × $10 per 1M = $0.010075.
	spent := run.Totals().CostPico
	if spent != 10_075_000_000 {
		t.Fatalf("spent %s", middleware.FormatPico(spent))
	}

	// 2. $0.009925 left: about 990 output tokens fit.
	if err := ask(); err != nil {
		t.Fatal(err)
	}
	if sent := srv.Requests()[1].Chat.MaxCompletionTokens; sent == nil || *sent != fits(20_000-10_075) {
		t.Fatalf("second max_tokens sent = %v, want %d", sent, fits(20_000-10_075))
	}

	// 3. Nothing useful left (−$0.00015): refused, not sent.
	err := ask()
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Scope != "run" {
		t.Fatalf("third call: %v, want the run budget exceeded", err)
	}
	if srv.Count() != 2 {
		t.Fatalf("the server saw %d calls, want 2", srv.Count())
	}
}

func (r *recorder) exceeded() []middleware.BudgetExceeded {
	return middlewaretest.Of[middleware.BudgetExceeded](&r.Recorder)
}
