package timeout_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
)

// chunks is an instant streaming model: n chunks, then the answer.
func chunks(n int) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		for range n {
			if err := req.Stream(ctx, middleware.Chunk{Content: "x"}); err != nil {
				return nil, err
			}
		}
		return &middleware.Response{FinishReason: "stop"}, nil
	})
}

// BenchmarkStreamChunk is what the first-token and idle watchdog costs per
// chunk of a 1000-chunk stream from an instant model (ns/chunk).
func BenchmarkStreamChunk(b *testing.B) {
	const n = 1000
	h := mw(b, timeout.Config{Call: time.Minute, FirstToken: time.Minute, Idle: time.Minute})(chunks(n))
	req := request(func(context.Context, middleware.Chunk) error { return nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/chunk")
}

// BenchmarkCall is the cost of the call limit on an instant, unstreamed
// call.
func BenchmarkCall(b *testing.B) {
	h := mw(b, timeout.Config{Call: time.Minute})(chunks(0))
	req := request(nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// request is a one-message request streamed to stream (nil: not streamed).
func request(stream middleware.StreamFunc) *middleware.Request {
	return &middleware.Request{Model: "gpt-4o", Stream: stream,
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}}}
}

// mw is the timeout middleware of cfg.
func mw(b *testing.B, cfg timeout.Config) middleware.Middleware {
	t, err := timeout.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return t.Middleware()
}

// BenchmarkExtendingCall is BenchmarkCall as package llmwrap builds the
// call layer of a policy whose models have totals of their own (the
// default policy's): an extendable total outside, the call limit inside
// extending it, and the process's CPU time per call (cpu-ns/op).
func BenchmarkExtendingCall(b *testing.B) {
	total, err := timeout.New(timeout.Config{Total: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	call, err := timeout.New(timeout.Config{Call: 30 * time.Second, Total: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	h := total.ExtendableTotalMiddleware(10 * time.Minute)(call.ExtendingMiddleware()(chunks(0)))
	req := request(nil)
	ctx := context.Background()
	b.ReportAllocs()
	start, ok := cpuNanos()
	for b.Loop() {
		if _, err := h.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	if end, ok2 := cpuNanos(); ok && ok2 && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}
