package breaker_test

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// BenchmarkBreakerSuccess: the breaker layer of the default policy's rule
// (5 consecutive failures) around a model that answers at once, every
// call a success: what the layer costs a healthy model's call, from one
// goroutine (serial) and from many (parallel, sharing the breaker).
func BenchmarkBreakerSuccess(b *testing.B) {
	s, err := breaker.New(breaker.Config{ConsecutiveFailures: 5})
	if err != nil {
		b.Fatal(err)
	}
	resp := &middleware.Response{Model: "gpt-4o"}
	h := s.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return resp, nil
	}))
	ctx := context.Background()
	req := &middleware.Request{Model: "gpt-4o"}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		start, ok := cpuNanos()
		for b.Loop() {
			if _, err := h.Handle(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start, ok)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32) // 64 goroutines on 2 Ps
		start, ok := cpuNanos()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Handle(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportCPU(b, start, ok)
	})
}

// reportCPU reports the process's CPU time per op since start.
func reportCPU(b *testing.B, start int64, ok bool) {
	if end, ok2 := cpuNanos(); ok && ok2 && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}
