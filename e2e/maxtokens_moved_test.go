package e2e

import (
	"context"
	"testing"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// A call tokenwise moves to another model (a fallback, a routing rule, a
// budget's downgrade)
// keeps the caller's max_tokens where the model can give it, and gets the
// model's own maximum output where it cannot: gpt-4.1 gives 32,768 tokens,
// gpt-4o-mini at most 16,384, and OpenAI refuses a max_tokens above a
// model's maximum with a 400 ("max_tokens is too large"). The moved call
// went with the caller's 30,000, so that every fallback (and every routed
// call) failed with that 400, which does not fall back.
func TestMovedCallFitsTheModelsMaxOutput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(p *policies.Policy, srv *openaitest.Server)
	}{
		{"fallback", func(p *policies.Policy, srv *openaitest.Server) {
			p.Fallback.Models = []string{"gpt-4o-mini"}
			srv.On(openaitest.Model("gpt-4.1")).Reply(openaitest.Unavailable())
		}},
		{"budget downgrade", func(p *policies.Policy, _ *openaitest.Server) {
			// 30,000 output tokens of gpt-4.1 ($0.24) do not fit $0.10, nor
			// the 20,000 it may be shrunk to; of gpt-4o-mini they do.
			p.Budget.Team = policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.MicroUSD(100_000)}
			p.Budget.MinOutputTokens = 20000
			p.Budget.OnExceed, p.Budget.DowngradeTo = policies.OnExceedDowngrade, "gpt-4o-mini"
		}},
		{"routing rule", func(p *policies.Policy, _ *openaitest.Server) {
			p.Routing.Rules = []policies.Rule{{Name: "cheap", When: policies.Condition{Keywords: []string{"disk"}}, Model: "gpt-4o-mini"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &policies.Policy{Version: 1, Name: "moved"}
			srv := openaitest.New()
			tc.setup(p, srv)
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			tooLarge := func(r *openaitest.ChatRequest) bool {
				n := r.MaxCompletionTokens
				if n == nil {
					n = r.MaxTokens
				}
				return r.Model == "gpt-4o-mini" && n != nil && *n > 16384
			}
			srv.On(tooLarge).Reply(openaitest.Error(400, "invalid_request_error", "invalid_value",
				"max_tokens is too large: 30000. This model supports at most 16384 completion tokens, whereas you provided 30000."))
			srv.Default(openaitest.Text("fine"))
			c := rlClient(srv, llmwrap.MustBuild(p))
			ctx := middleware.WithTeam(context.Background(), "sre")
			resp, err := c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4.1", MaxCompletionTokens: 30000,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}})
			if err != nil {
				t.Fatalf("%v (provider saw %v)", err, models(srv))
			}
			if resp.Choices[0].Message.Content != "fine" {
				t.Errorf("answer %q", resp.Choices[0].Message.Content)
			}
			reqs := srv.Requests()
			last := reqs[len(reqs)-1].Chat
			n := last.MaxCompletionTokens
			if n == nil {
				n = last.MaxTokens
			}
			if last.Model != "gpt-4o-mini" || n == nil || *n != 16384 {
				t.Errorf("sent %s with max_tokens %v, want gpt-4o-mini with 16384", last.Model, deref(n))
			}
			if first := reqs[0].Chat; first.Model == "gpt-4.1" {
				n := first.MaxCompletionTokens
				if n == nil {
					n = first.MaxTokens
				}
				if n == nil || *n != 30000 {
					t.Errorf("gpt-4.1 sent max_tokens %v, want the caller's 30000", deref(n))
				}
			}
		})
	}
}

func deref(n *int) any {
	if n == nil {
		return nil
	}
	return *n
}
