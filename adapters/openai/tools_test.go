package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/tokens"
	"github.com/tokenwise/tokenwise/toolwrap"
)

func waitTool(name string, d time.Duration) toolwrap.Tool {
	return toolwrap.Tool{Name: name, Description: "checks " + name, Call: func(ctx context.Context, args string) (string, error) {
		select {
		case <-time.After(d):
			return name + ": OK", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}}
}

// agentLoop is the seed's ReAct loop on a go-openai client: call the model,
// execute its tool calls with ExecuteToolCalls, repeat until it answers.
func agentLoop(ctx context.Context, t *testing.T, client *goopenai.Client, ex *toolwrap.Executor, task string) ([]goopenai.ChatCompletionMessage, string) {
	t.Helper()
	msgs := []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: task}}
	for range 10 {
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o-mini", Messages: msgs, Tools: twopenai.ToolDefinitions(ex)})
		if err != nil {
			t.Fatal(err)
		}
		msg := resp.Choices[0].Message
		msgs = append(msgs, msg)
		if len(msg.ToolCalls) == 0 {
			return msgs, msg.Content
		}
		toolMsgs, err := twopenai.ExecuteToolCalls(ctx, ex, msg.ToolCalls)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, toolMsgs...)
	}
	t.Fatal("no final answer in 10 iterations")
	return nil, ""
}

func toolMessages(r openaitest.Recorded) []openaitest.Message {
	var out []openaitest.Message
	for _, m := range r.Chat.Messages {
		if m.Role == "tool" {
			out = append(out, m)
		}
	}
	return out
}

// One turn asks for three independent 2s tools: the turn takes 2s of fake
// time, and the next request carries the results in call order with their
// call ids.
func TestExecuteToolCallsParallelGoOpenAI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(
			openaitest.Call("call_disk", "check_disk", `{}`),
			openaitest.Call("call_mem", "check_memory", `{}`),
			openaitest.Call("call_cpu", "check_cpu", `{}`)))
		srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("All healthy."))
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = &http.Client{Transport: srv.Transport()}
		client := goopenai.NewClientWithConfig(cfg)

		ex, err := toolwrap.New([]toolwrap.Tool{
			waitTool("check_disk", 2*time.Second), waitTool("check_memory", 2*time.Second), waitTool("check_cpu", 2*time.Second),
		}, toolwrap.Config{MaxParallel: 4, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, run := middleware.StartRun(t.Context(), "parallel")
		start := time.Now()
		_, answer := agentLoop(ctx, t, client, ex, "How is the server?")
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("run took %v of fake time, want 2s (3 tools × 2s in parallel)", got)
		}
		if answer != "All healthy." {
			t.Errorf("answer %q", answer)
		}
		reqs := srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests", len(reqs))
		}
		tm := toolMessages(reqs[1])
		want := [][2]string{{"call_disk", "check_disk: OK"}, {"call_mem", "check_memory: OK"}, {"call_cpu", "check_cpu: OK"}}
		if len(tm) != 3 {
			t.Fatalf("%d tool messages", len(tm))
		}
		for i, w := range want {
			if tm[i].ToolCallID != w[0] || tm[i].Content.String() != w[1] {
				t.Errorf("tool message %d = %s %q, want %s %q", i, tm[i].ToolCallID, tm[i].Content.String(), w[0], w[1])
			}
		}
		if tot := run.Totals(); tot.ToolTime-tot.ToolWall != 4*time.Second {
			t.Errorf("saved wall time %v, want 4s", tot.ToolTime-tot.ToolWall)
		}
	})
}

// A tool that panics, one that times out and one that errors: the loop goes
// on and the model's next request carries three observations.
func TestExecuteToolCallsFailuresAreObservations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(
			openaitest.Call("c1", "check_disk", `{}`),
			openaitest.Call("c2", "clean_logs", `{}`),
			openaitest.Call("c3", "restart_nginx", `{}`)))
		srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("I could not fix it; here is why."))
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = &http.Client{Transport: srv.Transport()}
		client := goopenai.NewClientWithConfig(cfg)

		slow := waitTool("clean_logs", time.Hour)
		slow.Meta.Timeout = 30 * time.Second
		ex, _ := toolwrap.New([]toolwrap.Tool{
			{Name: "check_disk", Call: func(context.Context, string) (string, error) {
				panic("check_disk broke") // a tool that panics
			}},
			slow,
			{Name: "restart_nginx", Call: func(context.Context, string) (string, error) {
				return "", errors.New("permission denied")
			}},
		}, toolwrap.Config{MaxParallel: 3})
		_, answer := agentLoop(t.Context(), t, client, ex, "Sort it out.")
		if answer == "" {
			t.Fatal("no answer")
		}
		tm := toolMessages(srv.Requests()[1])
		if len(tm) != 3 {
			t.Fatalf("%d tool messages", len(tm))
		}
		for i, want := range []string{
			"tool check_disk failed: panic: check_disk broke",
			"tool clean_logs timed out after 30s",
			"tool restart_nginx failed: permission denied",
		} {
			if got := tm[i].Content.String(); got != want {
				t.Errorf("observation %d = %q, want %q", i, got, want)
			}
		}
	})
}

// A 2MB log becomes an artifact: the next request carries a small excerpt,
// and the model reads lines and greps through read_artifact.
func TestExecuteToolCallsArtifactGoOpenAI(t *testing.T) {
	var b strings.Builder
	n := 0
	for ; b.Len() < 2<<20; n++ {
		if n == 12345 {
			fmt.Fprintf(&b, "2025-11-26 ERROR disk full on /var pid=%d\n", n)
			continue
		}
		fmt.Fprintf(&b, "2025-11-26 INFO request ok pid=%d\n", n)
	}
	log := b.String()
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{ThresholdBytes: 4096}, nil)
	ex, err := toolwrap.New([]toolwrap.Tool{{Name: "read_logs", Description: "returns the syslog",
		Call: func(context.Context, string) (string, error) { return log, nil }}}, toolwrap.Config{}, toolwrap.WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "read_logs", `{}`)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(middleware.Chain())
	client := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(t.Context(), "logs")

	msgs := []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Why is the disk full?"}}
	resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: twopenai.ToolDefinitions(ex)})
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, resp.Choices[0].Message)
	tm, err := twopenai.ExecuteToolCalls(ctx, ex, resp.Choices[0].Message.ToolCalls)
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, tm...)
	id := run.Tools()[0].Artifact
	if id == "" {
		t.Fatal("no artifact")
	}
	// the model reads lines 100-109, then greps for the error
	srv.On(openaitest.LastContains("[tool result stored as artifact")).Reply(openaitest.ToolCalls(
		openaitest.Call("c2", "read_artifact", fmt.Sprintf(`{"id":%q,"offset":100,"limit":10}`, id)),
		openaitest.Call("c3", "read_artifact", fmt.Sprintf(`{"id":%q,"grep":"ERROR"}`, id))))
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("/var filled up at pid 12345."))
	for range 3 {
		resp, err = client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: twopenai.ToolDefinitions(ex)})
		if err != nil {
			t.Fatal(err)
		}
		m := resp.Choices[0].Message
		msgs = append(msgs, m)
		if len(m.ToolCalls) == 0 {
			break
		}
		tm, _ := twopenai.ExecuteToolCalls(ctx, ex, m.ToolCalls)
		msgs = append(msgs, tm...)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	// request 2 carries the excerpt: under 2KB of the 2MB log
	excerpt := toolMessages(reqs[1])[0].Content.String()
	est := tokens.New()
	excerptTokens, logTokens := est.Text("gpt-4o", excerpt), toolwrap.DefaultTokenCounter()(log)
	t.Logf("request 2: %d bytes of body; excerpt %d bytes / %d tokens instead of %d bytes / ~%d tokens",
		len(reqs[1].Body), len(excerpt), excerptTokens, len(log), logTokens)
	if len(excerpt) >= 2048 || len(reqs[1].Body) >= 4096 || excerptTokens*100 > logTokens {
		t.Errorf("excerpt %d bytes, %d tokens; body %d bytes", len(excerpt), excerptTokens, len(reqs[1].Body))
	}
	// request 3 carries the exact lines and the grep hit
	reads := toolMessages(reqs[2])
	lines := strings.Split(reads[1].Content.String(), "\n")
	if len(lines) != 11 {
		t.Fatalf("range read: %q", reads[1].Content.String())
	}
	for i, l := range lines[1:] {
		if want := fmt.Sprintf("2025-11-26 INFO request ok pid=%d", 100+i); l != want {
			t.Errorf("line %d = %q, want %q", 100+i, l, want)
		}
	}
	if g := reads[2].Content.String(); !strings.Contains(g, "12345: 2025-11-26 ERROR disk full on /var pid=12345") {
		t.Errorf("grep: %q", g)
	}
	// another run cannot read the artifact
	other, _ := middleware.StartRun(t.Context(), "other")
	stolen, _ := twopenai.ExecuteToolCalls(other, ex, []goopenai.ToolCall{{ID: "x", Type: "function",
		Function: goopenai.FunctionCall{Name: "read_artifact", Arguments: fmt.Sprintf(`{"id":%q}`, id)}}})
	if !strings.Contains(stolen[0].Content, "not found") {
		t.Errorf("another run read %q", stolen[0].Content)
	}
	if !strings.Contains(observe.Report(run), "artifacts: 1") {
		t.Errorf("report:\n%s", observe.Report(run))
	}
}

// A tool that answers one long line (minified JSON, as most APIs answer)
// is offloaded like any large result, and every byte of it stays readable
// through read_artifact: a grep shows the match itself, wherever it is in
// the line, and the line is read on by byte from where a range read cut
// it, until its end. Before, every line was cut at 200 bytes in every
// answer: the match of a grep deep in the line was not shown and the rest
// of the result could not be read at all.
func TestExecuteToolCallsLongLineArtifactIsReadable(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 800 {
		if i > 0 {
			b.WriteByte(',')
		}
		status := "Running"
		if i == 733 {
			status = "CrashLoopBackOff"
		}
		fmt.Fprintf(&b, `{"name":"pod-%d","node":"nœud-%d","status":%q}`, i, i%7, status)
	}
	b.WriteString(`]}`)
	pods := b.String()
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{ThresholdBytes: 4096}, nil)
	ex, err := toolwrap.New([]toolwrap.Tool{{Name: "get_pods", Description: "lists the pods as JSON",
		Call: func(context.Context, string) (string, error) { return pods, nil }}}, toolwrap.Config{MaxParallel: 2}, toolwrap.WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("user")).Times(1).Reply(openaitest.ToolCalls(openaitest.Call("c1", "get_pods", `{}`)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(middleware.Chain())
	client := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(t.Context(), "pods")
	msgs := []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Which pod is failing?"}}
	turn := func() []goopenai.ChatCompletionMessage {
		t.Helper()
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: twopenai.ToolDefinitions(ex)})
		if err != nil {
			t.Fatal(err)
		}
		m := resp.Choices[0].Message
		msgs = append(msgs, m)
		tm, err := twopenai.ExecuteToolCalls(ctx, ex, m.ToolCalls)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, tm...)
		return tm
	}
	turn()
	id := run.Tools()[0].Artifact
	if id == "" {
		t.Fatal("no artifact")
	}
	srv.On(openaitest.LastContains("[tool result stored as artifact")).Times(1).Reply(openaitest.ToolCalls(
		openaitest.Call("c2", "read_artifact", fmt.Sprintf(`{"id":%q,"grep":"CrashLoop"}`, id)),
		openaitest.Call("c3", "read_artifact", fmt.Sprintf(`{"id":%q,"offset":0,"limit":5}`, id))))
	tm := turn()
	if g := tm[0].Content; !strings.Contains(g, `{"name":"pod-733","node":"nœud-5","status":"CrashLoopBackOff"}`) {
		t.Errorf("grep does not show the match: %q", g)
	}
	// the range read shows the line's head and says how to read on
	got := strings.SplitN(tm[1].Content, "\n", 2)
	if len(got) != 2 || !strings.HasPrefix(pods, strings.TrimSuffix(got[1], "…")) {
		t.Fatalf("range read: %.300q", tm[1].Content)
	}
	read := strings.TrimSuffix(got[1], "…")
	next := regexp.MustCompile(`\{"id":"art_[A-Z2-7]+","offset":0,"byte":(\d+)\}`)
	for range 20 {
		m := next.FindStringSubmatch(msgs[len(msgs)-1].Content)
		if m == nil {
			break
		}
		if m[1] != strconv.Itoa(len(read)) {
			t.Fatalf("read on from byte %s after %d bytes read", m[1], len(read))
		}
		srv.On(openaitest.LastRole("tool")).Times(1).Reply(openaitest.ToolCalls(openaitest.Call("c", "read_artifact", m[0])))
		tm := turn()
		body := strings.SplitN(tm[0].Content, "\n", 2)
		if len(body) != 2 || len(body[1]) > 16<<10 || !utf8.ValidString(body[1]) {
			t.Fatalf("byte read: %.300q", tm[0].Content)
		}
		read += body[1]
	}
	if read != pods {
		t.Errorf("read back %d bytes of the %d-byte line; they differ at byte %d", len(read), len(pods), firstDiff(read, pods))
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// The tool messages ExecuteToolCalls returns carry what a tool message
// has on the OpenAI wire (role, content, tool_call_id), and no "name":
// xAI answers 400 "Only messages of role 'user' can have a name" and
// other OpenAI-compatible endpoints that check the schema refuse it, so
// that a go-openai loop failed on its first request after a tool call.
func TestExecuteToolCallsMessagesHaveNoName(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{}`),
		openaitest.Call("c2", "nope", `{}`)))
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("Disk fine."))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(middleware.Chain())
	client := goopenai.NewClientWithConfig(cfg)
	ex, err := toolwrap.New([]toolwrap.Tool{waitTool("check_disk", 0)}, toolwrap.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := middleware.StartRun(t.Context(), "names")
	if _, answer := agentLoop(ctx, t, client, ex, "Disk?"); answer != "Disk fine." {
		t.Fatalf("answer %q", answer)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	var body struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(reqs[1].Body, &body); err != nil {
		t.Fatal(err)
	}
	tools := 0
	for i, m := range body.Messages {
		if string(m["role"]) != `"tool"` {
			continue
		}
		tools++
		for k := range m {
			if k != "role" && k != "content" && k != "tool_call_id" {
				t.Errorf("tool message %d has %q (%s): not a member of a tool message", i, k, m[k])
			}
		}
	}
	if tools != 2 {
		t.Errorf("%d tool messages, want 2", tools)
	}
}
