package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestMaxTokensSetOnlyWhereABudgetHoldsTheCall: the budget sets a request's
// max_tokens (the model's max output: gpt-4o-mini's 16,384) only when a
// ledger holds what the call may spend — a team budget, or a run budget
// for a call in a run — so that the provider never answers more than was
// reserved. Under a policy that reserves nothing (the default policy: an
// input cap per request only) the request reaches the provider byte for
// byte as the raw go-openai client sends it (before, every request was
// rewritten to carry "max_completion_tokens":16384, which changes nothing
// at the provider and cost a copy of the body per call). A caller's own
// max_tokens and the policy's output cap are sent as before.
func TestMaxTokensSetOnlyWhereABudgetHoldsTheCall(t *testing.T) {
	t.Parallel()
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{
		{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Is the disk full?"}}}
	// What the raw client sends.
	rawSrv := openaitest.NewServer(t)
	rawSrv.Default(openaitest.Text("ok"))
	rawCfg := goopenai.DefaultConfig("test-key")
	rawCfg.BaseURL = rawSrv.URL
	rawCfg.HTTPClient = &http.Client{Transport: rawSrv.Transport()}
	if _, err := goopenai.NewClientWithConfig(rawCfg).CreateChatCompletion(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	raw := rawSrv.Requests()[0].Body

	withTeam := policies.Default()
	withTeam.Budget.Team = policies.TeamBudget{Period: policies.PeriodMonthly, MaxTokens: 1_000_000}
	withRun := policies.Default()
	withRun.Budget.Run = policies.RunBudget{MaxTokens: 1_000_000}
	withCap := policies.Default()
	withCap.Budget.Request.MaxOutputTokens = 500
	for _, c := range []struct {
		name      string
		p         *policies.Policy
		inRun     bool
		maxTokens int
		want      int // the max_completion_tokens sent; 0: the raw client's body, unchanged
	}{
		{"default policy", policies.Default(), false, 0, 0},
		{"default policy, in a run", policies.Default(), true, 0, 0},
		{"run budget, outside a run", withRun, false, 0, 0},
		{"run budget, in a run", withRun, true, 0, 16384},
		{"team budget", withTeam, false, 0, 16384},
		{"output cap", withCap, false, 0, 500},
		{"the caller's own bound", policies.Default(), false, 300, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Default(openaitest.Text("ok"))
			client := goClient(t, srv, c.p, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			ctx := context.Background()
			if c.inRun {
				ctx, _ = middleware.StartRun(ctx, "r1")
			}
			r := req
			r.MaxCompletionTokens = c.maxTokens
			if _, err := client.CreateChatCompletion(ctx, r); err != nil {
				t.Fatal(err)
			}
			sent := srv.Requests()[0].Body
			if c.want == 0 {
				if !bytes.Equal(sent, raw) {
					t.Fatalf("sent %s\nthe raw client sends %s", sent, raw)
				}
				return
			}
			var body struct {
				MaxCompletionTokens int `json:"max_completion_tokens"`
			}
			if err := json.Unmarshal(sent, &body); err != nil || body.MaxCompletionTokens != c.want {
				t.Fatalf("max_completion_tokens %d (%v), want %d: %s", body.MaxCompletionTokens, err, c.want, sent)
			}
		})
	}
}
