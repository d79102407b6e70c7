package e2e

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func handler(srv *openaitest.Server, l timeout.Config) middleware.Handler {
	return middleware.Then(twopenai.NewProvider(srv.URL, "k", twopenai.WithBaseTransport(srv.Transport())), middlewaretest.Must(timeout.New(l)))
}

func request(stream middleware.StreamFunc) *middleware.Request {
	return &middleware.Request{Model: "gpt-4o", Stream: stream,
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}}}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		reply    openaitest.Reply
		limits   timeout.Config
		stream   bool
		sentinel error
		after    time.Duration
		chunks   int
	}{
		{"call, not streaming", openaitest.Stall(), timeout.Config{Call: 30 * time.Second}, false, timeout.ErrCall, 30 * time.Second, 0},
		{"call, streaming", openaitest.Reply{Content: "0123456789", ChunkSize: 1, ChunkLatency: time.Second},
			timeout.Config{Call: 5500 * time.Millisecond, Idle: 2 * time.Second}, true, timeout.ErrCall, 5500 * time.Millisecond, 6},
		{"first token", openaitest.Stall(), timeout.Config{Call: time.Minute, FirstToken: 3 * time.Second, Idle: time.Second}, true, timeout.ErrFirstToken, 3 * time.Second, 0},
		{"first token, slow headers", openaitest.Reply{Content: "late", Latency: 10 * time.Second}, timeout.Config{FirstToken: 3 * time.Second}, true, timeout.ErrFirstToken, 3 * time.Second, 0},
		{"idle", openaitest.Reply{Content: "0123456789", ChunkSize: 1, ChunkLatency: 500 * time.Millisecond, Fault: openaitest.Fault{Kind: openaitest.FaultStallStream, After: 4}},
			timeout.Config{FirstToken: time.Second, Idle: 2 * time.Second}, true, timeout.ErrIdle, 1500*time.Millisecond + 2*time.Second, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(tc.reply)
				chunks := 0
				var fn middleware.StreamFunc
				if tc.stream {
					fn = func(context.Context, middleware.Chunk) error { chunks++; return nil }
				}
				start := time.Now()
				_, err := handler(srv, tc.limits).Handle(context.Background(), request(fn))
				if !errors.Is(err, tc.sentinel) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, middleware.ErrTimeout) {
					t.Fatalf("err %v, want %v, context.DeadlineExceeded and ErrTimeout", err, tc.sentinel)
				}
				if !middleware.Transient(err) || middleware.IsCancellation(err) {
					t.Errorf("a timeout must be transient and not a cancellation")
				}
				if el := time.Since(start); el != tc.after {
					t.Errorf("failed after %v, want %v", el, tc.after)
				}
				if chunks != tc.chunks {
					t.Errorf("%d chunks, want %d", chunks, tc.chunks)
				}
				var de *middleware.DeadlineError
				if !errors.As(err, &de) || de.Limit == 0 {
					t.Errorf("no DeadlineError with its limit: %#v", err)
				}
			})
		})
	}
}

// Idle starts with the first chunk; a healthy slow stream within its limits
// completes; the caller's own slowness does not count as idle.
func TestHealthyStreamsPass(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Reply{Content: "0123456789", ChunkSize: 2, Latency: 5 * time.Second, ChunkLatency: 900 * time.Millisecond})
		// no FirstToken limit: the 5s wait is not an idle gap
		h := handler(srv, timeout.Config{Idle: time.Second})
		var got string
		resp, err := h.Handle(context.Background(), request(func(_ context.Context, c middleware.Chunk) error {
			got += c.Content
			<-time.After(3 * time.Second) // a slow consumer
			return nil
		}))
		if err != nil || got != "0123456789" || resp.Message.Content != got {
			t.Fatalf("%q, %v", got, err)
		}
	})
}

func TestCallerCancellationIsNotATimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Stall())
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := handler(srv, timeout.Config{Call: time.Minute, FirstToken: 10 * time.Second}).Handle(ctx, request(func(context.Context, middleware.Chunk) error { return nil }))
		if !errors.Is(err, context.Canceled) || errors.Is(err, middleware.ErrTimeout) || !middleware.IsCancellation(err) {
			t.Fatalf("err %v, want a plain cancellation", err)
		}
	})
}

func TestZeroLimitsAddNoLayer(t *testing.T) {
	if middlewaretest.Must(timeout.New(timeout.Config{})) != nil {
		t.Fatal("zero limits must add no layer")
	}
}

func TestNegativeLimitIsAnError(t *testing.T) {
	for _, cfg := range []timeout.Config{{Call: -1}, {FirstToken: -time.Second}, {Idle: -time.Millisecond}} {
		if _, err := timeout.New(cfg); !errors.Is(err, timeout.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}
