package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tokenwise/tokenwise/middleware"
)

// The gateway's metrics offer no exemplars: /metrics serves the same
// bytes as with the SDK's default exemplar filter (the slow path), even
// for measurements made under a sampled span and for a scraper asking
// for OpenMetrics (which could carry exemplars).
func TestMetricsWithoutExemplarsServeTheSame(t *testing.T) {
	fast, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	slow, err := newMetricsWith()
	if err != nil {
		t.Fatal(err)
	}
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
	for n := range 30 {
		ctx := middleware.WithCallInfo(sampled, &middleware.CallInfo{})
		model := []string{"gpt-4o", "gpt-4o-mini"}[n%2]
		events := []middleware.Event{
			middleware.CallStarted{Run: "r", Seq: n, Team: "devops", Model: model, Time: time.Unix(1_700_000_000, 0)},
			middleware.CacheLookup{Status: middleware.CacheMiss, Model: model},
			middleware.RateLimited{Model: model, Action: "admitted", Wait: time.Duration(n) * time.Millisecond},
			middleware.ProviderLimits{Model: model, RemainingRequests: int64(100 - n), RemainingTokens: 1000},
			middleware.CallFinished{Facts: middleware.CallFacts{Team: "devops", RequestedModel: model, Model: model, CostPico: int64(n) * 10},
				Usage: middleware.Usage{InputTokens: int64(n), OutputTokens: 3}, Latency: time.Duration(n) * time.Millisecond},
		}
		for _, m := range []*metrics{fast, slow} {
			for _, e := range events {
				m.observer.Observe(ctx, e)
			}
			m.request([]string{"ok", "budget_exceeded", "upstream_503"}[n%3])
		}
	}
	for _, accept := range []string{"", "text/plain", "application/openmetrics-text; version=1.0.0"} {
		var bodies [2]string
		for i, m := range []*metrics{fast, slow} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			rec := httptest.NewRecorder()
			m.handler.ServeHTTP(rec, req)
			b, _ := io.ReadAll(rec.Body)
			bodies[i] = string(b)
		}
		if bodies[0] != bodies[1] || len(bodies[0]) < 1000 {
			t.Fatalf("Accept %q: without exemplars\n%s\nwith the default filter\n%s", accept, bodies[0], bodies[1])
		}
	}
}
