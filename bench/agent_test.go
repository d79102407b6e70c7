package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// agentIterations is the number of LLM calls of one agent run.
const agentIterations = 30

// newAgentServer starts a local OpenAI-compatible server that plays the
// model of a tool-using agent: it answers each request with one call of
// the check_disk tool, whose id is numbered by the tool results already in
// the conversation, until the conversation holds agentIterations-1 of
// them; then it answers with the final text.
func newAgentServer(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := completion
		if done := bytes.Count(body, []byte(`"tool_call_id"`)); done < agentIterations-1 {
			out = toolCallCompletion(done)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.Write(out)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// toolCallCompletions are the server's answers that call a tool, by the
// number of tool results before them.
var toolCallCompletions [agentIterations][]byte

func init() {
	for i := range toolCallCompletions {
		toolCallCompletions[i] = []byte(`{"id":"chatcmpl-` + strconv.Itoa(i) + `","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_` + strconv.Itoa(i) + `","type":"function","function":{"name":"check_disk","arguments":"{\"host\":\"web-` + strconv.Itoa(i) + `\",\"path\":\"/var\"}"}}],"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":` + strconv.Itoa(300+150*i) + `,"completion_tokens":18,"total_tokens":` + strconv.Itoa(318+150*i) + `},"system_fingerprint":"fp_1"}`)
	}
}

func toolCallCompletion(i int) []byte { return toolCallCompletions[i] }

// agentPolicy is the default policy with a run guard that lets a run make
// agentIterations calls (the default's max_calls is 10): everything else
// (cache, routing, context, fallback and retry, budget, timeouts,
// metering) as embedded.
func agentPolicy(tb testing.TB) middleware.Middleware {
	tb.Helper()
	p := policies.Default()
	p.Limits.MaxCalls = agentIterations
	mw, err := llmwrap.Build(p, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	return mw
}

// agentTools are the tools the agent offers the model.
var agentTools = func() []goopenai.Tool {
	var tools []goopenai.Tool
	for _, name := range []string{"check_disk", "rotate_logs", "list_files"} {
		tools = append(tools, goopenai.Tool{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: name, Description: "Runs " + name + " on a host and returns its output.",
			Parameters: map[string]any{"type": "object", "properties": map[string]any{
				"host": map[string]any{"type": "string"}, "path": map[string]any{"type": "string"}}, "required": []string{"host"}},
		}})
	}
	return tools
}()

// toolResult is what the check_disk tool returns for host i: a df line
// and a short listing, about 300 bytes.
func toolResult(i int) string {
	return fmt.Sprintf("Filesystem Size Used Avail Use%% Mounted on\n/dev/sda1 100G %dG %dG %d%% /var\n", 40+i%50, 60-i%50, 40+i%50) +
		strings.Repeat(fmt.Sprintf("/var/log/app-%d.log %dM\n", i, 10+i%7), 8)
}

// agentRun is one agent run of agentIterations LLM calls in a run scope
// (middleware.StartRun, as the README shows): the conversation starts
// with a system prompt and task n, and every answer's tool call is
// appended with the tool's result before the next call, as an agent loop
// does. It returns the final answer.
func agentRun(ctx context.Context, c *goopenai.Client, n int) (string, error) {
	out, _, err := agentRunOf(ctx, c, n)
	return out, err
}

// agentRunOf is agentRun, which also returns its run.
func agentRunOf(ctx context.Context, c *goopenai.Client, n int) (string, *middleware.Run, error) {
	ctx, run := middleware.StartRun(ctx, "agent-"+strconv.Itoa(n))
	msgs := []goopenai.ChatCompletionMessage{
		{Role: goopenai.ChatMessageRoleSystem, Content: "You are an SRE assistant. Use the tools, be terse, cite hosts. Disks above 80% need cleanup; logs rotate daily."},
		{Role: goopenai.ChatMessageRoleUser, Content: "Task " + strconv.Itoa(n) + ": check the disks of the web tier and tell me which hosts need cleanup."},
	}
	for range agentIterations {
		resp, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: msgs, Tools: agentTools, Temperature: 0.2,
		})
		if err != nil {
			return "", run, err
		}
		if len(resp.Choices) != 1 {
			return "", run, fmt.Errorf("%d choices", len(resp.Choices))
		}
		m := resp.Choices[0].Message
		if len(m.ToolCalls) == 0 {
			return m.Content, run, nil
		}
		msgs = append(msgs, m)
		for _, tc := range m.ToolCalls {
			i, _ := strconv.Atoi(strings.TrimPrefix(tc.ID, "call_"))
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleTool, ToolCallID: tc.ID, Content: toolResult(i)})
		}
	}
	return "", run, fmt.Errorf("no final answer after %d calls", agentIterations)
}

// BenchmarkGoOpenAIAgentRun30: one op is a whole agent run of 30 LLM calls
// through go-openai (the conversation grows by an assistant tool call and
// its tool result every iteration, to about 60 messages), in a run scope,
// with the default policy (its run guard raised to 30 calls); every run
// has its own task, so every call is a cache miss. cpu-ns/call is
// cpu-ns/op divided by 30; the tokenwise − raw difference of cpu-ns/call
// is tokenwise's CPU per LLM call of an agent run. thread-cpu-ns/call is
// the CPU time of the benchmark's own OS thread (locked) per call: the
// client's work alone (see threadCPUNanos), whose tokenwise − raw
// difference moves far less with the machine's load.
func BenchmarkGoOpenAIAgentRun30(b *testing.B) {
	srv := newAgentServer(b)
	for _, side := range []string{"raw", "tokenwise"} {
		b.Run("client="+side, func(b *testing.B) {
			var mw middleware.Middleware
			if side == "tokenwise" {
				mw = agentPolicy(b)
			}
			c := newClient(b, srv, side == "tokenwise", mw)
			ctx := context.Background()
			if _, err := agentRun(ctx, c, -1); err != nil { // warm up
				b.Fatal(err)
			}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start, ok := cpuNanos()
			tstart, tok := threadCPUNanos()
			n := 0
			for b.Loop() {
				out, err := agentRun(ctx, c, n)
				if err != nil {
					b.Fatal(err)
				}
				if out != answer {
					b.Fatalf("final answer %q", out)
				}
				n++
			}
			tend, tok2 := threadCPUNanos()
			if end, ok2 := cpuNanos(); ok && ok2 && b.N > 0 {
				b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(end-start)/float64(b.N)/agentIterations, "cpu-ns/call")
			}
			if tok && tok2 && b.N > 0 {
				b.ReportMetric(float64(tend-tstart)/float64(b.N)/agentIterations, "thread-cpu-ns/call")
			}
		})
	}
}

// TestAgentRunThirtyCalls checks that BenchmarkGoOpenAIAgentRun30 does
// what it says: raw and through the default policy, a run ends with the
// final answer after 30 calls; through tokenwise the run records 30
// calls, every one a cache miss, and the run guard lets them all through.
func TestAgentRunThirtyCalls(t *testing.T) {
	srv := newAgentServer(t)
	ctx := context.Background()
	for _, side := range []string{"raw", "tokenwise"} {
		var mw middleware.Middleware
		if side == "tokenwise" {
			mw = agentPolicy(t)
		}
		c := newClient(t, srv, side == "tokenwise", mw)
		out, run, err := agentRunOf(ctx, c, 1)
		if err != nil || out != answer {
			t.Fatalf("%s: answer %q, %v", side, out, err)
		}
		if side == "raw" {
			continue
		}
		calls := run.Calls()
		if len(calls) != agentIterations {
			t.Fatalf("tokenwise: the run recorded %d calls, want %d", len(calls), agentIterations)
		}
		for i, rec := range calls {
			if rec.Cache != middleware.CacheMiss {
				t.Fatalf("tokenwise: call %d: cache %v, want a miss", i+1, rec.Cache)
			}
		}
	}
}
