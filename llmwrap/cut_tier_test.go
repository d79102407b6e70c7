package llmwrap_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"

	goopenai "github.com/sashabaranov/go-openai"
)

// TestCutChatAttemptIsChargedAtTheProjectsTier: a chat call that names no
// service tier, sent through the go-openai transport and timed out before
// its answer (the provider bills its input; no usage to read), is charged
// its estimated input at the project's default tier
// (budget.default_service_tier: priority, gpt-4o's $4.25 per 1M input
// beside the standard $2.50), the tier the provider processed it at and
// the budget reserved it at (the gateway's ledger:
// TestGatewayChatCutAnswerIsChargedAtTheProjectsTier). A call that names
// a tier is charged at it.
func TestCutChatAttemptIsChargedAtTheProjectsTier(t *testing.T) {
	question := strings.Repeat("Check the disks of every web host and report each mount. ", 200)
	charged := func(t *testing.T, tier, asked string) (report int64) {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			defer srv.Close()
			srv.On().Reply(openaitest.Stall())
			p, err := policies.LoadBytes([]byte("version: 1\ntimeouts: {call: 30s, total: 60s}\nfallback:\n  retry: {max_attempts: 1}\n"+
				"budget:\n"+tier+"  request: {max_output_tokens: 10}\n  run: {max_usd: 5}\n"), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			ctx, run := middleware.StartRun(context.Background(), "cut")
			req := goopenai.ChatCompletionRequest{Model: "gpt-4o", ServiceTier: goopenai.ServiceTier(asked),
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: question}}}
			if _, err := client(srv, p).CreateChatCompletion(ctx, req); !errors.Is(err, timeout.ErrCall) {
				t.Fatalf("err = %v, want the call timeout", err)
			}
			report = run.Totals().CostPico
		})
		return report
	}
	standard := charged(t, "", "")
	priority := charged(t, "  default_service_tier: priority\n", "")
	if standard <= 0 || priority*100 != standard*170 {
		t.Errorf("a cut call charged %s under a priority project, %s under a standard one: want 4.25/2.50 = 1.7 times",
			middleware.FormatPico(priority), middleware.FormatPico(standard))
	}
	if asked := charged(t, "", "priority"); asked != priority {
		t.Errorf("a cut call that asked for priority under a standard project charged %s, want %s",
			middleware.FormatPico(asked), middleware.FormatPico(priority))
	}
}
