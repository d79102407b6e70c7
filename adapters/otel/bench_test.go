package otel_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/middleware"
)

// BenchmarkObserveCall feeds one call's start and finish events to the
// observer, as Instrument does: the observer's own share of the chain
// overhead. "no-tracer" has no tracer provider (the gateway's: no spans
// started), "unsampled" uses a NeverSample tracer (metrics only), "sampled"
// records the span too.
func BenchmarkObserveCall(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"no-tracer", nil}, {"unsampled", sdktrace.NeverSample()}, {"sampled", sdktrace.AlwaysSample()}} {
		b.Run(tc.name, func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			opts := []twotel.Option{twotel.WithMeterProvider(mp)}
			if tc.sampler != nil {
				opts = append(opts, twotel.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler))))
			}
			obs, err := twotel.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			ci := &middleware.CallInfo{}
			ctx := middleware.WithCallInfo(context.Background(), ci)
			start := middleware.CallStarted{Run: "r1", Seq: 1, Team: "devops", Stage: middleware.StageUnknown, Model: "gpt-4o", Time: time.Now()}
			fin := middleware.CallFinished{Facts: middleware.CallFacts{Team: "devops", RequestedModel: "gpt-4o", Model: "gpt-4o", CostPico: 350,
				Attempts: []middleware.Attempt{{Model: "gpt-4o", Latency: time.Millisecond}}},
				Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}, Latency: time.Millisecond}
			var se, fe middleware.Event = start, fin
			b.ReportAllocs()
			for b.Loop() {
				obs.Observe(ctx, se)
				obs.Observe(ctx, fe)
			}
		})
	}
}
