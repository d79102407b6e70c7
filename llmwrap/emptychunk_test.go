package llmwrap_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/policies"
)

// emptyChunks is a stream that begins with head (its chunks, nil: none)
// then sends n chunks that carry nothing — {"choices":[]} without usage,
// and a delta without content — one every 500ms, never its end.
func emptyChunks(head []string, n int) openaitest.Reply {
	var raw [][]byte
	for _, h := range head {
		raw = append(raw, []byte("data: "+h+"\n\n"))
	}
	for i := range n {
		c := `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[]}`
		if i%2 == 1 {
			c = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":null}]}`
		}
		raw = append(raw, []byte("data: "+c+"\n\n"))
	}
	return openaitest.Reply{Raw: raw, ChunkLatency: 500 * time.Millisecond}
}

// contentChunk is a chunk of content, the first token of a stream.
const contentChunk = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`

// TestEmptyChunksAreNoActivity: a stream of chunks that carry nothing (no
// content, tool call, usage or finish reason: {"choices":[]}, an empty
// delta), one every 500ms, neither meets timeouts.first_token nor resets
// timeouts.idle: through the go-openai transport the call ends at its
// first_token (2s) or, after a chunk of content, its idle (2s) limit.
// Before, every empty chunk counted as activity and only timeouts.call (5
// minutes) ended such a stream.
func TestEmptyChunksAreNoActivity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  []string
		after time.Duration
		want  error
	}{
		{"before the first token", nil, 2 * time.Second, timeout.ErrFirstToken},
		{"after a token", []string{contentChunk}, 2 * time.Second, timeout.ErrIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				defer srv.Close()
				srv.On().Reply(emptyChunks(tc.head, 1000))
				p, err := policies.LoadBytes([]byte("version: 1\ntimeouts: {call: 5m, total: 5m, first_token: 2s, idle: 2s}\nfallback:\n  retry: {max_attempts: 1}\n"), "t.yaml")
				if err != nil {
					t.Fatal(err)
				}
				req := chatReq()
				req.Stream = true
				start := time.Now()
				s, err := client(srv, p).CreateChatCompletionStream(context.Background(), req)
				if err == nil {
					defer s.Close()
					for err == nil {
						_, err = s.Recv()
					}
				}
				if el := time.Since(start); !errors.Is(err, tc.want) || el != tc.after {
					t.Fatalf("the stream ended after %v with %v, want %v after %v", el, err, tc.want, tc.after)
				}
				if errors.Is(err, io.EOF) {
					t.Fatal("a stream of empty chunks ended as complete")
				}
			})
		})
	}
}
