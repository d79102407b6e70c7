package langchaingo_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms/openai"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// slowTool is a langchaingo tool that takes d and logs when it runs.
type slowTool struct {
	name, out string
	d         time.Duration
	mu        *sync.Mutex
	log       *[]string
}

func (s slowTool) Name() string        { return s.name }
func (s slowTool) Description() string { return "checks " + s.name }
func (s slowTool) Call(ctx context.Context, input string) (string, error) {
	s.mu.Lock()
	*s.log = append(*s.log, fmt.Sprintf("%s start %s input=%s", time.Now().Format("05"), s.name, input))
	s.mu.Unlock()
	select {
	case <-time.After(s.d):
		return s.out, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// The OpenAI functions agent, driven by a scripted server that asks for
// two tools in one turn: both run at once (2s, not 4s, of fake time) and
// the next request's scratchpad has the assistant's two tool calls
// followed by the two results, in the original order with their ids.
func TestParallelAgentRunsOneTurnsActionsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(
			openaitest.Call("call_disk", "check_disk", `{"__arg1":"/"}`),
			openaitest.Call("call_mem", "check_memory", `{"__arg1":"all"}`)))
		srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("Disk 95% full, memory fine: clean /var/log."))
		llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o-mini"),
			openai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
		if err != nil {
			t.Fatal(err)
		}
		model := twlc.New(twlc.Models{"gpt-4o-mini": llm}, passThrough)

		var mu sync.Mutex
		var log []string
		lcTools := []tools.Tool{
			slowTool{"check_disk", "Disk Usage: 95% (CRITICAL). Large folder: /var/log", 2 * time.Second, &mu, &log},
			slowTool{"check_memory", "Memory: 41% used", 2 * time.Second, &mu, &log},
		}
		ex, err := toolwrap.New(twlc.FromTools(lcTools, nil), toolwrap.Config{MaxParallel: 4, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		agent := agents.NewOpenAIFunctionsAgent(model, twlc.Tools(ex))
		executor := agents.NewExecutor(twlc.NewParallelAgent(agent, ex), agents.WithReturnIntermediateSteps())

		ctx, run := middleware.StartRun(t.Context(), "lc-parallel")
		start := time.Now()
		out, err := chains.Call(ctx, executor, map[string]any{"input": "I'm out of disk space. Sort it out."})
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("agent run took %v of fake time, want 2s (two 2s tools at once)", got)
		}
		if out["output"] != "Disk 95% full, memory fine: clean /var/log." {
			t.Errorf("output %q", out["output"])
		}
		if len(log) != 2 || !strings.HasPrefix(log[0], "00 start") || !strings.HasPrefix(log[1], "00 start") {
			t.Errorf("tools did not start together: %q", log)
		}
		steps := out["intermediateSteps"].([]schema.AgentStep)
		if len(steps) != 2 || steps[0].Action.ToolID != "call_disk" || steps[1].Action.ToolID != "call_mem" ||
			steps[0].Observation != lcTools[0].(slowTool).out || steps[1].Observation != lcTools[1].(slowTool).out {
			t.Errorf("steps %+v", steps)
		}

		reqs := srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests", len(reqs))
		}
		msgs := reqs[1].Chat.Messages
		var tail []string
		for _, m := range msgs {
			switch m.Role {
			case "assistant":
				for _, tc := range m.ToolCalls {
					tail = append(tail, "call "+tc.ID+" "+tc.Function.Name)
				}
			case "tool":
				tail = append(tail, "result "+m.ToolCallID+" "+m.Content.String())
			}
		}
		// langchaingo's scratchpad groups tool calls by their action Log,
		// which the OpenAI functions agent makes distinct per call: one
		// assistant message per call, each followed by its result, exactly
		// as its sequential Executor would have produced.
		want := []string{
			"call call_disk check_disk",
			"result call_disk Disk Usage: 95% (CRITICAL). Large folder: /var/log",
			"call call_mem check_memory",
			"result call_mem Memory: 41% used",
		}
		if fmt.Sprint(tail) != fmt.Sprint(want) {
			t.Errorf("scratchpad:\n got %q\nwant %q", tail, want)
		}
		if tot := run.Totals(); tot.ToolCalls != 2 || tot.ToolWall != 2*time.Second || tot.ToolTime != 4*time.Second {
			t.Errorf("run totals: %d tools, %v wall, %v time", tot.ToolCalls, tot.ToolWall, tot.ToolTime)
		}
	})
}

// A failing tool does not abort langchaingo's Executor: the model reads the
// error as the observation.
func TestToolsErrorBecomesObservation(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "clean_logs", `{"__arg1":"/var/log"}`)))
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("Cleaning failed."))
	model := twlc.New(twlc.Models{"gpt-4o-mini": newOpenAI(t, srv, "gpt-4o-mini", false)}, passThrough)
	ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "clean_logs", Description: "cleans logs",
		Call: func(context.Context, string) (string, error) { return "", fmt.Errorf("read-only file system") }}}, toolwrap.Config{})
	executor := agents.NewExecutor(agents.NewOpenAIFunctionsAgent(model, twlc.Tools(ex)))
	out, err := chains.Run(t.Context(), executor, "Sort it out.")
	if err != nil || out != "Cleaning failed." {
		t.Fatalf("out %q err %v", out, err)
	}
	tm := srv.Requests()[1].Chat.LastMessage()
	if tm.Role != "tool" || tm.Content.String() != "tool clean_logs failed: read-only file system" {
		t.Errorf("observation %+v", tm)
	}
}

// deafTool is a langchaingo tool that ignores its context: it runs for d.
type deafTool struct {
	name    string
	d       time.Duration
	started *[]string
	mu      *sync.Mutex
}

func (s deafTool) Name() string        { return s.name }
func (s deafTool) Description() string { return "runs " + s.name }
func (s deafTool) Call(context.Context, string) (string, error) {
	s.mu.Lock()
	*s.started = append(*s.started, s.name)
	s.mu.Unlock()
	time.Sleep(s.d)
	return s.name + " done", nil
}

// A langchaingo agent whose tools run through the executor one action at
// a time (each a turn of its own): "deploy", a tool with side effects that
// ignores its context, is given up on at its 1s timeout and still runs;
// the model then asks for "rollback", which would run beside it. It is not
// run, and the model reads so. Before, it ran beside the deploy.
func TestSequentialAgentRunsNoSideEffectBesideAnAbandonedOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "deploy", `{"__arg1":"v2"}`)))
		srv.On(openaitest.LastContains("tool deploy timed out")).Reply(openaitest.ToolCalls(openaitest.Call("c2", "rollback", `{"__arg1":"v1"}`)))
		srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("Deploy stuck; rollback not run."))
		llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o-mini"),
			openai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
		if err != nil {
			t.Fatal(err)
		}
		model := twlc.New(twlc.Models{"gpt-4o-mini": llm}, passThrough)
		var mu sync.Mutex
		var started []string
		side := toolwrap.Meta{SideEffects: true, Timeout: time.Second}
		ex, err := toolwrap.New(twlc.FromTools([]tools.Tool{
			deafTool{"deploy", 5 * time.Second, &started, &mu}, deafTool{"rollback", 0, &started, &mu},
		}, map[string]toolwrap.Meta{"deploy": side, "rollback": side}), toolwrap.Config{})
		if err != nil {
			t.Fatal(err)
		}
		executor := agents.NewExecutor(agents.NewOpenAIFunctionsAgent(model, twlc.Tools(ex)))
		ctx, _ := middleware.StartRun(t.Context(), "lc-deploy")
		out, err := chains.Run(ctx, executor, "Deploy v2; roll back to v1 if it fails.")
		if err != nil || out != "Deploy stuck; rollback not run." {
			t.Errorf("out %q err %v", out, err)
		}
		mu.Lock()
		ran := fmt.Sprint(started)
		mu.Unlock()
		if ran != "[deploy]" {
			t.Errorf("tools started: %s; want the deploy alone (rollback beside the deploy given up on, still running)", ran)
		}
		reqs := srv.Requests()
		if last := reqs[len(reqs)-1].Chat.LastMessage(); last.Role != "tool" || !strings.Contains(last.Content.String(), "rollback was not run") {
			t.Errorf("the model read %q after asking for the rollback", last.Content.String())
		}
		time.Sleep(5 * time.Second) // the deploy ends
		synctest.Wait()
	})
}
