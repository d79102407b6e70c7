package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
)

// A connection lost in the middle of an event's data line (a proxy or a
// server dropping it) is a cut stream, as one lost between two events:
// retried when no chunk had reached the caller, ErrStreamCut when one
// had; never ErrMalformed, which is not retried.
func TestConnectionLostMidLineIsACut(t *testing.T) {
	t.Parallel()
	const first = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n"
	const rest = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	// cutServer answers its first request with before, then half an event,
	// and the connection dies; later requests with a whole stream.
	cutServer := func(t *testing.T, before string) (*httptest.Server, *atomic.Int64) {
		var n atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if n.Add(1) == 1 {
				conn, bw, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				part := before + `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choi`
				fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(part), part)
				_ = bw.Flush()
				_ = conn.Close()
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, first+rest)
		}))
		t.Cleanup(srv.Close)
		return srv, &n
	}
	p := mustPolicy(t, "version: 1\nfallback: {retry: {max_attempts: 2, base_delay: 1ms}}\n")
	stream := func(t *testing.T, srv *httptest.Server) (string, error) {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		cfg := goopenai.DefaultConfig("k")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(base))
		return streamText(context.Background(), goopenai.NewClientWithConfig(cfg), goopenai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hello"}}})
	}

	t.Run("before the first chunk: retried", func(t *testing.T) {
		t.Parallel()
		srv, n := cutServer(t, "")
		text, err := stream(t, srv)
		if err != nil || text != "hi" || n.Load() != 2 {
			t.Fatalf("text %q, err %v (malformed %v), upstream calls %d; want \"hi\" after a retry", text, err,
				errors.Is(err, middleware.ErrMalformed), n.Load())
		}
	})
	t.Run("after a chunk: a cut", func(t *testing.T) {
		t.Parallel()
		srv, n := cutServer(t, first)
		text, err := stream(t, srv)
		if !errors.Is(err, middleware.ErrStreamCut) || errors.Is(err, middleware.ErrMalformed) || text != "hi" || n.Load() != 1 {
			t.Fatalf("text %q, err %v, upstream calls %d; want \"hi\" then ErrStreamCut, not retried", text, err, n.Load())
		}
	})
}
