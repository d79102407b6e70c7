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
)

func handler(srv *openaitest.Server, l timeout.Limits) middleware.Handler {
	return middleware.Then(twopenai.NewProvider(srv.URL, "k", twopenai.WithBaseTransport(srv.Transport())), timeout.New(l))
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
		limits   timeout.Limits
		stream   bool
		sentinel error
		after    time.Duration
		chunks   int
	}{
		{"call, not streaming", openaitest.Stall(), timeout.Limits{Call: 30 * time.Second}, false, timeout.ErrCall, 30 * time.Second, 0},
		{"call, streaming", openaitest.Reply{Content: "0123456789", ChunkSize: 1, ChunkLatency: time.Second},
			timeout.Limits{Call: 5500 * time.Millisecond, Idle: 2 * time.Second}, true, timeout.ErrCall, 5500 * time.Millisecond, 6},
		{"first token", openaitest.Stall(), timeout.Limits{Call: time.Minute, FirstToken: 3 * time.Second, Idle: time.Second}, true, timeout.ErrFirstToken, 3 * time.Second, 0},
		{"first token, slow headers", openaitest.Reply{Content: "late", Latency: 10 * time.Second}, timeout.Limits{FirstToken: 3 * time.Second}, true, timeout.ErrFirstToken, 3 * time.Second, 0},
		{"idle", openaitest.Reply{Content: "0123456789", ChunkSize: 1, ChunkLatency: 500 * time.Millisecond, Fault: openaitest.Fault{Kind: openaitest.FaultStallStream, After: 4}},
			timeout.Limits{FirstToken: time.Second, Idle: 2 * time.Second}, true, timeout.ErrIdle, 1500*time.Millisecond + 2*time.Second, 4},
		// The idle limit is shorter than the first token's: it takes over at
		// the first chunk.
		{"idle shorter than first token", openaitest.Reply{Content: "0123456789", ChunkSize: 1, ChunkLatency: 500 * time.Millisecond, Fault: openaitest.Fault{Kind: openaitest.FaultStallStream, After: 3}},
			timeout.Limits{FirstToken: 10 * time.Second, Idle: 700 * time.Millisecond}, true, timeout.ErrIdle, 1000*time.Millisecond + 700*time.Millisecond, 3},
		// Idle alone: no clock before the first chunk.
		{"idle only", openaitest.Reply{Content: "0123456789", ChunkSize: 1, Latency: 4 * time.Second, ChunkLatency: 500 * time.Millisecond, Fault: openaitest.Fault{Kind: openaitest.FaultStallStream, After: 2}},
			timeout.Limits{Idle: time.Second}, true, timeout.ErrIdle, 4*time.Second + 500*time.Millisecond + time.Second, 2},
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
		h := handler(srv, timeout.Limits{Idle: time.Second})
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
		_, err := handler(srv, timeout.Limits{Call: time.Minute, FirstToken: 10 * time.Second}).Handle(ctx, request(func(context.Context, middleware.Chunk) error { return nil }))
		if !errors.Is(err, context.Canceled) || errors.Is(err, middleware.ErrTimeout) || !middleware.IsCancellation(err) {
			t.Fatalf("err %v, want a plain cancellation", err)
		}
	})
}

func TestZeroLimitsAddNoLayer(t *testing.T) {
	if timeout.New(timeout.Limits{}) != nil {
		t.Fatal("zero limits must add no layer")
	}
}
