package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// The two-line adoption with the one model a user has: twlc.New over a
// single langchaingo model and the default policy, which routes tool
// selection to gpt-4o-mini and falls back to it. Only the Models can serve
// a call: no layer may move it to a model they do not hold (that call
// could only fail with twlc.ErrUnknownModel).
func TestLangchaingoWithOneModelUnderTheDefaultPolicy(t *testing.T) {
	tools := []llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "disk_usage", Description: "disk usage", Parameters: map[string]any{"type": "object"}}}}
	ask := func(t *testing.T, srv *openaitest.Server, p *policies.Policy) (*llms.ContentResponse, error) {
		chain, err := llmwrap.Build(p)
		if err != nil {
			t.Fatal(err)
		}
		llm := langchaingo(t, srv, chain, "gpt-4o")
		msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "How full is the disk? "+strings.Repeat("Check it well. ", 40))}
		return llm.GenerateContent(context.Background(), msgs, llms.WithTools(tools))
	}
	upstreamModels := func(srv *openaitest.Server) (ms []string) {
		for _, r := range srv.Requests() {
			ms = append(ms, r.Chat.Model)
		}
		return ms
	}

	t.Run("routed tool selection stays on the model", func(t *testing.T) {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Text("ok"))
		out, err := ask(t, srv, policies.Default())
		if err != nil {
			t.Fatalf("tool-selection call: %v", err)
		}
		if out.Choices[0].Content != "ok" {
			t.Errorf("answer %q", out.Choices[0].Content)
		}
		if ms := upstreamModels(srv); len(ms) != 1 || ms[0] != "gpt-4o" {
			t.Errorf("upstream saw models %v, want [gpt-4o]", ms)
		}
	})

	t.Run("fallback to a model it does not hold", func(t *testing.T) {
		srv := openaitest.NewServer(t)
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Unavailable())
		srv.On().Reply(openaitest.Error(400, "invalid_request_error", "model_not_found", "no such model"))
		p := policies.Default()
		p.Fallback.Retry.MaxAttempts = 1
		_, err := ask(t, srv, p)
		if err == nil || errors.Is(err, twlc.ErrUnknownModel) || !errors.Is(err, middleware.ErrUnavailable) {
			t.Fatalf("error %v, want gpt-4o's own failure (middleware.ErrUnavailable), not an unknown model", err)
		}
		for _, m := range upstreamModels(srv) {
			if m != "gpt-4o" {
				t.Errorf("upstream saw model %q", m)
			}
		}
	})

	t.Run("budget downgrade to a model it does not hold", func(t *testing.T) {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Text("ok"))
		p := policies.Default()
		p.Routing = policies.Routing{}
		// $0.002 affords 256 output tokens of gpt-4o-mini, not of gpt-4o.
		usd, err := policies.ParseUSD("0.002")
		if err != nil {
			t.Fatal(err)
		}
		p.Budget.Team = policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: usd}
		p.Budget.OnExceed, p.Budget.DowngradeTo = policies.OnExceedDowngrade, "gpt-4o-mini"
		_, err = ask(t, srv, p)
		if err == nil || errors.Is(err, twlc.ErrUnknownModel) || !errors.Is(err, middleware.ErrBudget) {
			t.Fatalf("error %v, want the budget's refusal, not a downgrade to an unknown model", err)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("upstream saw %d requests, want none", n)
		}
	})
}
