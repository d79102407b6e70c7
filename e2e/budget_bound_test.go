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

// TestBothOutputCapsArePoliced: a request that gives both max_tokens and
// max_completion_tokens (go-openai sends both when both are set) may be
// read by either (OpenAI honours max_completion_tokens, many compatible
// servers max_tokens): the chain polices the larger, and an output cap
// lowers whichever is over it, never raising the caller's smaller one.
// Before, the chain saw max_completion_tokens alone: a max_tokens of
// 100,000 beside it reached a server that honours it, past the policy's
// cap of 1,000 and a budget reserved for 10 tokens.
func TestBothOutputCapsArePoliced(t *testing.T) {
	t.Parallel()
	withCap := policies.Default()
	withCap.Budget.Request.MaxOutputTokens = 1000
	for _, c := range []struct {
		name                          string
		maxTokens, maxCompletion      int
		wantMaxTokens, wantCompletion int
	}{
		{"max_tokens over the cap", 100000, 10, 1000, 10},
		{"max_completion_tokens over the cap", 10, 100000, 10, 1000},
		{"both over the cap", 5000, 2000, 1000, 1000},
		{"both within the cap", 50, 60, 50, 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Default(openaitest.Text("ok"))
			client := goClient(t, srv, withCap, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: c.maxCompletion,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Is the disk full?"}}}
			//lint:ignore SA1019 deprecated, and still what many callers set beside the other: go-openai sends both
			req.MaxTokens = c.maxTokens
			if _, err := client.CreateChatCompletion(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			var sent struct {
				MaxTokens     int `json:"max_tokens"`
				MaxCompletion int `json:"max_completion_tokens"`
			}
			if err := json.Unmarshal(srv.Requests()[0].Body, &sent); err != nil {
				t.Fatal(err)
			}
			if sent.MaxTokens != c.wantMaxTokens || sent.MaxCompletion != c.wantCompletion {
				t.Fatalf("sent max_tokens %d, max_completion_tokens %d; want %d, %d", sent.MaxTokens, sent.MaxCompletion, c.wantMaxTokens, c.wantCompletion)
			}
		})
	}
}
