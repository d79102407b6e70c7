package gateway

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"

	twotel "github.com/tokenwise/tokenwise/adapters/otel"
)

// metrics serves /metrics: the chains' OpenTelemetry metrics (tokens,
// cost, cache, fallbacks, breakers, rate limits: adapters/otel) and the
// gateway's requests by outcome, exported for Prometheus through the OTel
// Prometheus exporter, on a registry of the gateway's own.
type metrics struct {
	observer *twotel.Observer
	handler  http.Handler
	requests metric.Int64Counter
	attrs    map[string][]metric.AddOption // outcome → options, built once per outcome
	provider *sdkmetric.MeterProvider
}

// newMetrics builds the gateway's metrics. Its measurements offer no
// exemplars (exemplar.AlwaysOffFilter): /metrics serves the Prometheus
// text format, which carries none, and the default filter would look for
// a sampled span in every measurement's context.
func newMetrics() (*metrics, error) {
	return newMetricsWith(sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
}

// newMetricsWith is newMetrics with the meter provider's options opts.
func newMetricsWith(opts ...sdkmetric.Option) (*metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(append([]sdkmetric.Option{sdkmetric.WithReader(exp)}, opts...)...)
	obs, err := twotel.New(twotel.WithMeterProvider(mp))
	if err != nil {
		return nil, err
	}
	req, err := mp.Meter("github.com/tokenwise/tokenwise/gateway").Int64Counter("tokenwise.gateway.requests",
		metric.WithUnit("{request}"), metric.WithDescription("Requests the gateway answered, by outcome"))
	if err != nil {
		return nil, err
	}
	m := &metrics{observer: obs, requests: req, provider: mp, attrs: map[string][]metric.AddOption{},
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	for _, o := range []string{"ok", "unauthorized", "too_large", "pass_through", "budget_exceeded", "rate_limit_exceeded", "circuit_open", "context_length_exceeded", "timeout", "upstream_error", "gateway_error",
		"request_timeout", "client_gone", "other"} {
		m.attrs[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))}
	}
	return m, nil
}

// request counts one request by outcome (a fixed set: unknown outcomes
// count as "other", so that the series stay bounded).
func (m *metrics) request(outcome string) {
	opts, ok := m.attrs[outcome]
	if !ok {
		opts = m.attrs["other"]
	}
	m.requests.Add(context.Background(), 1, opts...) // the slice is shared: Add only reads it
}
