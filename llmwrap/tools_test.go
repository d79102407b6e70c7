package llmwrap_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// TestContextOffloadGivesTheAgentReadArtifact: a policy whose context
// compaction offloads old tool results (context.strategies: [offload])
// but sets no tools.artifacts threshold. The excerpts the model gets tell
// it to call read_artifact, so the policy's executor offers that tool and
// it reads the offloaded results back; the executor used to have no
// read_artifact, and the model's call of it was an unknown tool: the
// offload lost the results.
func TestContextOffloadGivesTheAgentReadArtifact(t *testing.T) {
	t.Parallel()
	p := policies.Default()
	p.Context = policies.ContextPolicy{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []policies.ContextStrategy{policies.StrategyOffload}}
	logText := func(i int) string {
		var b strings.Builder
		for l := range 300 {
			fmt.Fprintf(&b, "call %d log line %d\n", i, l)
		}
		return b.String()
	}
	calls := 0
	ex, err := llmwrap.NewExecutor(p, []toolwrap.Tool{{Name: "read_log", Description: "reads the log",
		Call: func(context.Context, string) (string, error) { calls++; return logText(calls - 1), nil }}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	srv.On(openaitest.LastRole("tool")).Times(8).Reply(openaitest.ToolCalls(openaitest.Call("c", "read_log", `{}`)))
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c", "read_log", `{}`)))
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("done"))
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx, _ := middleware.StartRun(t.Context(), "offload")
	msgs := []goopenai.ChatCompletionMessage{{Role: "system", Content: "You read logs."}, {Role: "user", Content: "What does the log say?"}}
	for range 10 {
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: twopenai.ToolDefinitions(ex)})
		if err != nil {
			t.Fatal(err)
		}
		m := resp.Choices[0].Message
		msgs = append(msgs, m)
		if len(m.ToolCalls) == 0 {
			break
		}
		for i := range m.ToolCalls {
			m.ToolCalls[i].ID = fmt.Sprintf("c%d", len(msgs)) // one id a call
		}
		msgs[len(msgs)-1] = m
		tm, err := twopenai.ExecuteToolCalls(ctx, ex, m.ToolCalls)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, tm...)
	}
	// The last request the model got has the first log offloaded.
	reqs := srv.Requests()
	last := reqs[len(reqs)-1].Chat
	var excerpt string
	for _, m := range last.Messages {
		if m.Role == "tool" && strings.Contains(m.Content.String(), toolwrap.IDPrefix) {
			excerpt = m.Content.String()
			break
		}
	}
	i := strings.Index(excerpt, toolwrap.IDPrefix)
	if i < 0 || !strings.Contains(excerpt, toolwrap.ReadArtifactName) {
		t.Fatalf("no tool result offloaded in the last request (%d messages)", len(last.Messages))
	}
	offered := false
	for _, tool := range last.Tools {
		offered = offered || tool.Function.Name == toolwrap.ReadArtifactName
	}
	if !offered {
		t.Errorf("the excerpt says to call %s; the request's tools do not offer it", toolwrap.ReadArtifactName)
	}
	id := excerpt[i : i+len(toolwrap.IDPrefix)+26]
	out, err := twopenai.ExecuteToolCalls(ctx, ex, []goopenai.ToolCall{{ID: "r", Type: "function",
		Function: goopenai.FunctionCall{Name: toolwrap.ReadArtifactName, Arguments: fmt.Sprintf(`{"id":%q,"offset":150,"limit":1}`, id)}}})
	if err != nil || !strings.Contains(out[0].Content, "call 0 log line 150") {
		t.Errorf("read_artifact of the offloaded result: %q, %v", out[0].Content, err)
	}
}
