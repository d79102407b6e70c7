package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

// TestReportCutStreamIsNoAnswer: a stream cut before its end is a failed
// call; the run report says so and does not also say the call answered
// ("→ answer", "final_answer": true) or asked for the tools whose calls
// the cut stream had begun.
func TestReportCutStreamIsNoAnswer(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	srv.On(openaitest.LastContains("answer")).Reply(openaitest.CutAfter(2))
	srv.On(openaitest.LastContains("tools")).Reply(openaitest.Reply{ToolCalls: []openaitest.ToolCall{openaitest.Call("", "check_disk", `{"host":"web-1","path":"/var/log"}`)},
		Fault: openaitest.Fault{Kind: openaitest.FaultCut, After: 2}})
	client := goClient(t, srv, mustPolicy(t, "version: 1\n"))
	ctx, run := middleware.StartRun(context.Background(), "cut")
	for _, text := range []string{"Please answer.", "Please use the tools."} {
		s, err := client.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Stream: true,
			StreamOptions: &goopenai.StreamOptions{IncludeUsage: true}, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: text}}})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = s.Recv()
		}
		s.Close()
		if !errors.Is(err, middleware.ErrStreamCut) {
			t.Fatalf("%q: err %v, want a cut stream", text, err)
		}
	}
	calls := run.Calls()
	if len(calls) != 2 || calls[0].Err == nil || calls[1].Err == nil {
		t.Fatalf("want two failed calls: %+v", calls)
	}
	for _, c := range calls {
		if c.Final || len(c.ToolCalls) > 0 {
			t.Errorf("call %d failed (%v), yet final %v, tool calls %v", c.Seq, c.Err, c.Final, c.ToolCalls)
		}
	}
	rep := observe.Report(run)
	for _, line := range strings.Split(rep, "\n") {
		if strings.Contains(line, "stream cut") && (strings.Contains(line, " answer ") || strings.Contains(line, "check_disk")) {
			t.Errorf("report line of a cut stream: %q", line)
		}
	}
	b, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Calls []struct {
			Final     bool     `json:"final_answer"`
			ToolCalls []string `json:"tool_calls"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	for i, c := range js.Calls {
		if c.Final || len(c.ToolCalls) > 0 {
			t.Errorf("JSON call %d: final_answer %v, tool_calls %v", i+1, c.Final, c.ToolCalls)
		}
	}
}
