package e2e

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// streamed is what a go-openai stream delivered.
type streamed struct {
	contentPieces []string
	calls         []openai.ToolCall
	argPieces     map[int]int
	finish        []openai.FinishReason
	usage         *openai.Usage
	afterFinish   int // content or tool-call chunks after the finish reason
}

func readStream(t *testing.T, client *openai.Client, req openai.ChatCompletionRequest) streamed {
	t.Helper()
	s, err := client.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := streamed{argPieces: map[int]int{}}
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Usage != nil {
			out.usage = r.Usage
		}
		for _, c := range r.Choices {
			d := c.Delta
			if (d.Content != "" || len(d.ToolCalls) > 0) && len(out.finish) > 0 {
				out.afterFinish++
			}
			if d.Content != "" {
				out.contentPieces = append(out.contentPieces, d.Content)
			}
			for _, tc := range d.ToolCalls {
				i := *tc.Index
				for len(out.calls) <= i {
					out.calls = append(out.calls, openai.ToolCall{})
				}
				if tc.ID != "" {
					out.calls[i].ID = tc.ID
				}
				out.calls[i].Function.Name += tc.Function.Name
				out.calls[i].Function.Arguments += tc.Function.Arguments
				if tc.Function.Arguments != "" {
					out.argPieces[i]++
				}
			}
			if c.FinishReason != "" {
				out.finish = append(out.finish, c.FinishReason)
			}
		}
	}
}

// TestStreamedReplayIsChunked: a hit replayed to a go-openai stream comes
// like a provider's stream: the content in many small pieces, each tool
// call by its index with its arguments in pieces, one finish reason after
// them, and the usage chunk exactly when the caller asked for it (with the
// usage the answer cost when it was made, as in a non-streaming hit).
func TestStreamedReplayIsChunked(t *testing.T) {
	srv := openaitest.NewServer(t)
	content := strings.Repeat("The disk on web-1 is at 95 percent; /var/log holds 20 GB of old logs. ", 4)
	srv.On().Reply(openaitest.Reply{Content: content, ToolCalls: []openaitest.ToolCall{
		openaitest.Call("call_a", "check_disk", `{"path":"/var/log","human_readable":true,"depth":2}`),
		openaitest.Call("call_b", "clean_logs", `{"older_than":"30d","dry_run":false}`),
	}})
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
	req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "disk?"}}}
	stored, err := client.CreateChatCompletion(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := stored.Choices[0].Message
	for _, includeUsage := range []bool{true, false} {
		r := req
		if includeUsage {
			r.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
		}
		got := readStream(t, client, r)
		if n := srv.Count(); n != 1 {
			t.Fatalf("the provider saw %d requests, want 1", n)
		}
		if strings.Join(got.contentPieces, "") != want.Content {
			t.Fatalf("content %q, want %q", strings.Join(got.contentPieces, ""), want.Content)
		}
		if len(got.contentPieces) < len(want.Content)/16 {
			t.Fatalf("content in %d pieces, want at least %d", len(got.contentPieces), len(want.Content)/16)
		}
		for _, p := range got.contentPieces {
			if len(p) > 16 {
				t.Fatalf("a piece of %d bytes: %q", len(p), p)
			}
		}
		if len(got.calls) != len(want.ToolCalls) {
			t.Fatalf("%d tool calls, want %d", len(got.calls), len(want.ToolCalls))
		}
		for i, c := range got.calls {
			w := want.ToolCalls[i]
			if c.ID != w.ID || c.Function != w.Function {
				t.Fatalf("tool call %d: %+v, want %+v", i, c, w)
			}
			if got.argPieces[i] < 2 {
				t.Fatalf("tool call %d: arguments in %d pieces", i, got.argPieces[i])
			}
		}
		if len(got.finish) != 1 || got.finish[0] != stored.Choices[0].FinishReason || got.afterFinish != 0 {
			t.Fatalf("finish reasons %v (%d chunks after), want one %q at the end", got.finish, got.afterFinish, stored.Choices[0].FinishReason)
		}
		switch {
		case includeUsage && (got.usage == nil || got.usage.TotalTokens != stored.Usage.TotalTokens):
			t.Fatalf("usage %+v, want %+v", got.usage, stored.Usage)
		case !includeUsage && got.usage != nil:
			t.Fatalf("usage %+v without include_usage", got.usage)
		}
	}
}
