package otel_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/middleware"
)

// Without a tracer provider (the no-op one) the observer starts no spans
// at all: its metrics are those of an observer whose spans are started
// and never sampled (the slow path), event for event, and a call's start
// allocates nothing.
func TestObserverWithoutTracerMatchesUnsampled(t *testing.T) {
	readers := [2]*sdkmetric.ManualReader{sdkmetric.NewManualReader(), sdkmetric.NewManualReader()}
	var obs [2]*twotel.Observer
	for i, r := range readers {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		opts := []twotel.Option{twotel.WithMeterProvider(mp)}
		if i == 1 {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			opts = append(opts, twotel.WithTracerProvider(tp))
		}
		var err error
		if obs[i], err = twotel.New(opts...); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(1_700_000_000, 0)
	boom := &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: 503}
	for n := range 40 {
		ctx := middleware.WithCallInfo(context.Background(), &middleware.CallInfo{})
		model := []string{"gpt-4o", "gpt-4o-mini"}[n%2]
		var err error
		if n%5 == 4 {
			err = boom
		}
		events := []middleware.Event{
			middleware.CallStarted{Run: "r", Seq: n, Team: "devops", Model: model, Time: now},
			middleware.CacheLookup{Status: []middleware.CacheStatus{middleware.CacheMiss, middleware.CacheHit}[n%2], Model: model, SavedPico: int64(n)},
			middleware.RateLimited{Model: model, Action: "admitted", Wait: time.Duration(n) * time.Millisecond},
			middleware.Retrying{Model: model, Attempt: 1, Wait: time.Millisecond, Err: boom},
			middleware.FellBack{From: model, To: "gpt-4o", Err: boom},
			middleware.BudgetWarning{Scope: "team", Unit: "usd", Fraction: 0.8, Limit: 100, Used: 80},
			middleware.BudgetExceeded{Scope: "team", Action: "refuse", Limit: 100, Need: 120},
			middleware.BreakerChanged{Model: model, From: "closed", To: "open"},
			middleware.ProviderLimits{Model: model, RemainingRequests: int64(100 - n), RemainingTokens: -1},
			middleware.RouteDecided{From: model, To: "gpt-4o-mini", Rule: "r"},
			middleware.CallFinished{Facts: middleware.CallFacts{Team: "devops", RequestedModel: model, Model: model, CostPico: int64(n) * 10,
				Attempts: []middleware.Attempt{{Model: model, Latency: time.Millisecond}, {Model: "gpt-4o", Latency: 2 * time.Millisecond, Err: err}}},
				Usage: middleware.Usage{InputTokens: int64(n), OutputTokens: 3}, Latency: time.Duration(n) * time.Millisecond, Err: err},
		}
		for _, o := range obs {
			for _, e := range events {
				o.Observe(ctx, e)
			}
		}
	}
	var got [2]metricdata.ResourceMetrics
	for i, r := range readers {
		if err := r.Collect(context.Background(), &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got[0].ScopeMetrics) != 1 || len(got[0].ScopeMetrics[0].Metrics) < 8 {
		t.Fatalf("no-op tracer: metrics %+v", got[0].ScopeMetrics)
	}
	metricdatatest.AssertEqual(t, got[1].ScopeMetrics[0], got[0].ScopeMetrics[0], metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	ctx := middleware.WithCallInfo(context.Background(), &middleware.CallInfo{})
	var start middleware.Event = middleware.CallStarted{Run: "r", Seq: 1, Team: "devops", Model: "gpt-4o", Time: now}
	if a := testing.AllocsPerRun(100, func() { obs[0].Observe(ctx, start) }); a != 0 {
		t.Fatalf("a call's start without a tracer allocates %v times", a)
	}
}
