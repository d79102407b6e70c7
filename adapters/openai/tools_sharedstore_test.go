package openai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// Two go-openai agent loops, two runs, one executor whose memory store
// (a policy's tools.artifacts, 64 KiB here) both share: run B's large
// results come after run A's, whose excerpt is in run A's conversation.
// When run A's model reads its artifact back, it is there; run B's result
// that does not fit beside them is cut to an excerpt naming no artifact.
// Before, run B's results evicted run A's artifact, and run A's model read
// that it was no longer kept.
func TestExecuteToolCallsArtifactOfARunInProgressIsKept(t *testing.T) {
	logOf := func(tag string) string {
		var b strings.Builder
		for i := 0; b.Len() < 20<<10; i++ {
			fmt.Fprintf(&b, "%s line %d INFO request ok\n", tag, i)
		}
		return b.String()
	}
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(64<<10), toolwrap.ArtifactConfig{ThresholdBytes: 4096}, nil)
	ex, err := toolwrap.New([]toolwrap.Tool{{Name: "read_logs", Description: "returns a log",
		Call: func(_ context.Context, args string) (string, error) {
			var a struct{ Which string }
			if err := json.Unmarshal([]byte(args), &a); err != nil {
				return "", err
			}
			return logOf(a.Which), nil
		}}}, toolwrap.Config{MaxParallel: 4}, toolwrap.WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastContains("task A")).Reply(openaitest.ToolCalls(openaitest.Call("a1", "read_logs", `{"which":"A"}`)))
	srv.On(openaitest.LastContains("task B")).Reply(openaitest.ToolCalls(openaitest.Call("b1", "read_logs", `{"which":"B1"}`),
		openaitest.Call("b2", "read_logs", `{"which":"B2"}`), openaitest.Call("b3", "read_logs", `{"which":"B3"}`)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(middleware.Chain())
	client := goopenai.NewClientWithConfig(cfg)
	turn := func(ctx context.Context, msgs []goopenai.ChatCompletionMessage) []goopenai.ChatCompletionMessage {
		t.Helper()
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: twopenai.ToolDefinitions(ex)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, resp.Choices[0].Message)
		tm, err := twopenai.ExecuteToolCalls(ctx, ex, resp.Choices[0].Message.ToolCalls)
		if err != nil {
			t.Fatal(err)
		}
		return append(msgs, tm...)
	}

	ctxA, runA := middleware.StartRun(t.Context(), "run-A")
	msgsA := turn(ctxA, []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "task A: why the errors?"}})
	idA := runA.Tools()[0].Artifact
	if idA == "" {
		t.Fatalf("run A's log not offloaded: %.200q", msgsA[len(msgsA)-1].Content)
	}
	ctxB, _ := middleware.StartRun(t.Context(), "run-B")
	msgsB := turn(ctxB, []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "task B: compare the logs"}})

	srv.On(openaitest.LastContains("A line 0 INFO")).Reply(openaitest.ToolCalls(
		openaitest.Call("a2", "read_artifact", fmt.Sprintf(`{"id":%q,"offset":300,"limit":1}`, idA))))
	msgsA = turn(ctxA, msgsA)
	if got := msgsA[len(msgsA)-1].Content; !strings.Contains(got, "A line 300 INFO") {
		t.Errorf("run A's model read its artifact back after run B's results: %q", got)
	}
	kept := 0
	for _, m := range msgsB[2:] {
		if i := strings.Index(m.Content, toolwrap.IDPrefix); i >= 0 {
			kept++
			id := m.Content[i : i+len(toolwrap.IDPrefix)+26]
			if _, err := ex.Artifacts().Get(ctxB, id); err != nil {
				t.Errorf("run B's excerpt names %s, which cannot be read: %v", id, err)
			}
		} else if !strings.Contains(m.Content, "could not be stored") {
			t.Errorf("run B's result neither kept nor cut saying so: %.200q", m.Content)
		}
	}
	if kept == 0 || kept == 3 {
		t.Errorf("run B kept %d of its 3 results beside run A's (store of 64 KiB, results of 20 KiB); want some, not all", kept)
	}
}
