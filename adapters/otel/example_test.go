package otel_test

import (
	"context"
	"fmt"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// An observer on the SDK's in-memory span exporter and manual metric
// reader: one call produces a "chat" span and GenAI metric points.
func Example() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	obs, err := twotel.New(twotel.WithTracerProvider(tp), twotel.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}

	p, _ := policies.LoadBytes([]byte("version: 1\n"), "policy.yaml")
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "42% full"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}}, nil
	})
	chain := middleware.Then(provider, llmwrap.MustBuild(p, llmwrap.WithObserver(obs)))
	ctx := middleware.WithTeam(context.Background(), "devops")
	if _, err := chain.Handle(ctx, &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "check disk"}}}); err != nil {
		panic(err)
	}

	for _, s := range spans.GetSpans() {
		attrs := attribute.NewSet(s.Attributes...)
		model, _ := attrs.Value("gen_ai.response.model")
		in, _ := attrs.Value("gen_ai.usage.input_tokens")
		fmt.Printf("span %q model=%s input_tokens=%d\n", s.Name, model.AsString(), in.AsInt64())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				if m.Name == "gen_ai.client.token.usage" {
					for _, dp := range d.DataPoints {
						typ, _ := dp.Attributes.Value("gen_ai.token.type")
						lines = append(lines, fmt.Sprintf("%s{%s} sum=%v", m.Name, typ.AsString(), dp.Sum))
					}
				} else {
					lines = append(lines, fmt.Sprintf("%s count=%d", m.Name, d.DataPoints[0].Count))
				}
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%s = %d", m.Name, dp.Value))
				}
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	_ = tp.Shutdown(context.Background())
	_ = mp.Shutdown(context.Background())
	// Output:
	// span "chat gpt-4o" model=gpt-4o input_tokens=100
	// gen_ai.client.operation.duration count=1
	// gen_ai.client.token.usage{input} sum=100
	// gen_ai.client.token.usage{output} sum=10
	// tokenwise.cost = 350000000
}
