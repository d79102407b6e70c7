package e2e

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// BenchmarkObserverOverheadOTel measures the chain with no observer, with
// the OTel observer (SDK providers, nothing sampled) and with slog plus
// OTel attached (observe's BenchmarkObserverOverhead has slog alone).
// Target: under 2 µs more per call.
func BenchmarkObserverOverheadOTel(b *testing.B) {
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "hi"}}}
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}}, nil
	})
	bench := func(b *testing.B, opts ...llmwrap.Option) {
		h := middleware.Then(provider, llmwrap.MustBuild(p, opts...))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Handle(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("none", func(b *testing.B) { bench(b) })
	b.Run("otel", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		mp := metric.NewMeterProvider(metric.WithReader(metric.NewManualReader()))
		ot, err := twotel.New(twotel.WithTracerProvider(tp), twotel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		bench(b, llmwrap.WithObserver(ot))
	})
	b.Run("slog+otel", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()), sdktrace.WithSampler(sdktrace.NeverSample()))
		mp := metric.NewMeterProvider(metric.WithReader(metric.NewManualReader()))
		ot, err := twotel.New(twotel.WithTracerProvider(tp), twotel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		bench(b, llmwrap.WithObserver(observe.NewSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))), llmwrap.WithObserver(ot))
	})
}
