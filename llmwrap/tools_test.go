package llmwrap_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// TestRunTimeoutBoundsTheRunsTools: a policy's limits.run_timeout is the
// deadline of the whole run, its tools' calls too. A go-openai tool loop
// asks, 10 s into a run of one minute, for a log search (no timeout of its
// own, 5 minutes) and a restart (side effects, after it): the search is
// cancelled at the run's deadline, the restart never runs, and the turn
// ends with the run's deadline error. The executor of the policy used to
// know nothing of the run's deadline: the search ran its 5 minutes and the
// restart was done 4 minutes after the run was over.
func TestRunTimeoutBoundsTheRunsTools(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &policies.Policy{Version: 1, Name: "ops", Limits: policies.Limits{RunTimeout: policies.Duration(time.Minute)},
			Tools: policies.Tools{MaxParallel: 4}}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		var restarted atomic.Bool
		ex, err := llmwrap.NewExecutor(p, []toolwrap.Tool{
			{Name: "search_logs", Call: func(ctx context.Context, _ string) (string, error) {
				select {
				case <-time.After(5 * time.Minute):
					return "nothing found", nil
				case <-ctx.Done():
					return "", context.Cause(ctx)
				}
			}},
			{Name: "restart_nginx", Meta: toolwrap.Meta{SideEffects: true}, Call: func(context.Context, string) (string, error) {
				restarted.Store(true)
				return "restarted", nil
			}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := openaitest.New()
		srv.On(openaitest.LastRole("user")).Reply(openaitest.Reply{Latency: 10 * time.Second, ToolCalls: []openaitest.ToolCall{
			openaitest.Call("c1", "search_logs", `{}`), openaitest.Call("c2", "restart_nginx", `{}`)}})
		cfg := goopenai.DefaultConfig("test")
		cfg.BaseURL = "http://openai.test/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
		client := goopenai.NewClientWithConfig(cfg)
		ctx, _ := middleware.StartRun(t.Context(), "incident-7")
		start := time.Now()
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "nginx is down"}}, Tools: twopenai.ToolDefinitions(ex)})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := twopenai.ExecuteToolCalls(ctx, ex, resp.Choices[0].Message.ToolCalls)
		if !errors.Is(err, guard.ErrRunDeadline) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("turn error %v, want the run's deadline", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("the turn ended %v into the run, want at its deadline, 1m", d)
		}
		if restarted.Load() {
			t.Error("restart_nginx ran after the run's deadline")
		}
		if len(msgs) != 2 || msgs[0].ToolCallID != "c1" || msgs[1].ToolCallID != "c2" || msgs[1].Content == "restarted" {
			t.Errorf("tool messages %+v", msgs)
		}
	})
}
