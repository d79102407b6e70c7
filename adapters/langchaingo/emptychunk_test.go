package langchaingo_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// TestEmptyChunksAreNoActivity: a stream of chunks that carry nothing (no
// content, tool call, usage or finish reason: {"choices":[]}, an empty
// delta), one every 500ms, neither meets timeouts.first_token nor resets
// timeouts.idle: through langchaingo's openai backend (and NewTransport)
// the call ends at its first_token (2s) or, after a chunk of content, its
// idle (2s) limit, not at its call limit (5 minutes).
func TestEmptyChunksAreNoActivity(t *testing.T) {
	const (
		empty   = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[]}`
		nothing = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":null}]}`
		content = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	)
	for _, tc := range []struct {
		name string
		head []string
		want error
	}{
		{"before the first token", nil, timeout.ErrFirstToken},
		{"after a token", []string{content}, timeout.ErrIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				defer srv.Close()
				var raw [][]byte
				for _, h := range tc.head {
					raw = append(raw, []byte("data: "+h+"\n\n"))
				}
				for i := range 1000 {
					raw = append(raw, []byte("data: "+[]string{empty, nothing}[i%2]+"\n\n"))
				}
				srv.On().Reply(openaitest.Reply{Raw: raw, ChunkLatency: 500 * time.Millisecond})
				llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
					openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
				if err != nil {
					t.Fatal(err)
				}
				to := middlewaretest.Must(timeout.New(timeout.Config{Call: 5 * time.Minute, FirstToken: 2 * time.Second, Idle: 2 * time.Second}))
				m := twlc.New(twlc.Models{"gpt-4o": llm}, to)
				start := time.Now()
				_, err = m.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")},
					llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
				if el := time.Since(start); !errors.Is(err, tc.want) || el != 2*time.Second {
					t.Fatalf("the stream ended after %v with %v, want %v after 2s", el, err, tc.want)
				}
			})
		})
	}
}
