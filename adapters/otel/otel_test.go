package otel_test

import (
	"context"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

type harness struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	obs    *twotel.Observer
}

func newHarness(t *testing.T) *harness {
	h := &harness{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	var err error
	if h.obs, err = twotel.New(twotel.WithTracerProvider(tp), twotel.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) metrics(t *testing.T) map[string]metricdata.Aggregation {
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func attr(attrs []attribute.KeyValue, k string) string {
	for _, a := range attrs {
		if string(a.Key) == k {
			return a.Value.String()
		}
	}
	return ""
}

func sumOf(t *testing.T, a metricdata.Aggregation, match func(attribute.Set) bool) int64 {
	t.Helper()
	s, ok := a.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("not an int64 sum: %T", a)
	}
	var n int64
	for _, dp := range s.DataPoints {
		if match == nil || match(dp.Attributes) {
			n += dp.Value
		}
	}
	return n
}

func histCount(t *testing.T, a metricdata.Aggregation, match func(attribute.Set) bool) (count uint64, sum float64) {
	t.Helper()
	hd, ok := a.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("not a float64 histogram: %T", a)
	}
	for _, dp := range hd.DataPoints {
		if match == nil || match(dp.Attributes) {
			count += dp.Count
			sum += dp.Sum
		}
	}
	return count, sum
}

func is(k, v string) func(attribute.Set) bool {
	return func(s attribute.Set) bool { x, ok := s.Value(attribute.Key(k)); return ok && x.String() == v }
}

// A cached call through the real go-openai client: the first call is a
// miss billed at gpt-4o-mini's price, the second a hit; spans, token
// usage, duration, cost and cache counters say so.
func TestCachedCall(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := newHarness(t)
	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text("The disk is 42% full."))
	p, err := policies.LoadBytes([]byte("version: 1\ncache: {enabled: true, ttl: 1h, deterministic_only: false}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(h.obs)), twopenai.WithBaseTransport(srv.Transport()))
	c := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "r1")
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check disk"}}}
	for range 2 {
		if _, err := c.CreateChatCompletion(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Count() != 1 {
		t.Fatalf("provider saw %d calls, want 1", srv.Count())
	}
	calls := run.Calls()
	spans := h.spans.Ended()
	var chat []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "chat gpt-4o-mini" {
			chat = append(chat, s)
		}
	}
	if len(chat) != 2 {
		t.Fatalf("want 2 chat spans, got %d", len(spans))
	}
	if got := attr(chat[0].Attributes(), "tokenwise.cache"); got != "miss" {
		t.Errorf("first span cache = %q", got)
	}
	if got := attr(chat[1].Attributes(), "tokenwise.cache"); got != "hit" {
		t.Errorf("second span cache = %q", got)
	}
	if got := attr(chat[0].Attributes(), "gen_ai.usage.input_tokens"); got != itoa(calls[0].Usage.InputTokens) {
		t.Errorf("input tokens attr = %s, want %d", got, calls[0].Usage.InputTokens)
	}
	if attr(chat[0].Attributes(), "tokenwise.team") != "devops" || attr(chat[0].Attributes(), "gen_ai.operation.name") != "chat" {
		t.Errorf("attributes: %v", chat[0].Attributes())
	}
	m := h.metrics(t)
	if n, _ := histCount(t, m["gen_ai.client.operation.duration"], nil); n != 2 {
		t.Errorf("duration points = %d, want 2", n)
	}
	// Only the miss spent tokens.
	if n, sum := histCount(t, m["gen_ai.client.token.usage"], is("gen_ai.token.type", "input")); n != 1 || int64(sum) != calls[0].Usage.InputTokens {
		t.Errorf("input token usage: %d points, sum %v; want 1, %d", n, sum, calls[0].Usage.InputTokens)
	}
	if got := sumOf(t, m["tokenwise.cost"], nil); got != calls[0].CostPico || got == 0 {
		t.Errorf("cost = %d, want %d", got, calls[0].CostPico)
	}
	if hits := sumOf(t, m["tokenwise.cache.lookups"], is("tokenwise.cache.status", "hit")); hits != 1 {
		t.Errorf("cache hits = %d", hits)
	}
	if misses := sumOf(t, m["tokenwise.cache.lookups"], is("tokenwise.cache.status", "miss")); misses != 1 {
		t.Errorf("cache misses = %d", misses)
	}
	if saved := sumOf(t, m["tokenwise.cache.saved"], nil); saved != calls[1].SavedPico || saved == 0 {
		t.Errorf("saved = %d, want %d", saved, calls[1].SavedPico)
	}
}

func itoa(n int64) string { return attribute.Int64Value(n).String() }

// A fallback and a budget warning. The fallback, budget and meter layers
// emit these core events and facts; here a stand-in layer under Instrument
// plays them (gpt-4o fails unavailable after 2s, gpt-4o-mini answers in
// 1s, spend crosses 80% of the run budget), so the test pins the
// observer's output.
func TestFallbackAndBudgetWarning(t *testing.T) {
	h := newHarness(t)
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	standIn := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			unavailable := &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: 503}
			used := middleware.Usage{InputTokens: 100, OutputTokens: 10}
			cost, _ := llmwrap.Pricer(p).Cost("gpt-4o-mini", used)
			middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
				f.Attempts = append(f.Attempts, middleware.Attempt{Model: "gpt-4o", Latency: 2 * time.Second, Err: unavailable},
					middleware.Attempt{Model: "gpt-4o-mini", Latency: time.Second, Usage: used, CostPico: cost})
				f.Model = "gpt-4o-mini"
			})
			middleware.Emit(ctx, middleware.FellBack{From: "gpt-4o", To: "gpt-4o-mini", Err: unavailable})
			middleware.Emit(ctx, middleware.BudgetWarning{Scope: "run", Unit: "usd_micros", Fraction: 0.8, Limit: 1000, Used: 850})
			return next.Handle(ctx, req)
		})
	}
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: "gpt-4o-mini", Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}}, nil
	})
	hd := middleware.Then(provider, instrument.New(llmwrap.Pricer(p), h.obs), standIn)
	if _, err := hd.Handle(context.Background(), &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "fix it"}}}); err != nil {
		t.Fatal(err)
	}
	var chat sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		switch s.Name() {
		case "chat gpt-4o":
			chat = s
		case "attempt gpt-4o", "attempt gpt-4o-mini":
			attempts = append(attempts, s)
		}
	}
	if chat == nil || len(attempts) != 2 {
		t.Fatalf("spans: chat %v, %d attempts", chat != nil, len(attempts))
	}
	if attr(chat.Attributes(), "gen_ai.response.model") != "gpt-4o-mini" {
		t.Errorf("response model = %q", attr(chat.Attributes(), "gen_ai.response.model"))
	}
	for _, a := range attempts {
		if a.Parent().SpanID() != chat.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the call span", a.Name())
		}
	}
	if a := attempts[0]; a.Name() != "attempt gpt-4o" || a.Status().Code != codes.Error || attr(a.Attributes(), "error.type") != "unavailable" ||
		a.EndTime().Sub(a.StartTime()) != 2*time.Second {
		t.Errorf("first attempt: %s %v %v", a.Name(), a.Status(), a.EndTime().Sub(a.StartTime()))
	}
	if a := attempts[1]; !a.StartTime().Equal(attempts[0].EndTime()) || a.Status().Code == codes.Error {
		t.Errorf("second attempt starts %v, first ended %v", a.StartTime(), attempts[0].EndTime())
	}
	events := map[string]bool{}
	for _, ev := range chat.Events() {
		events[ev.Name] = true
	}
	if !events["tokenwise.fallback"] || !events["tokenwise.budget.warning"] {
		t.Errorf("span events = %v", events)
	}
	m := h.metrics(t)
	if n := sumOf(t, m["tokenwise.fallbacks"], is("tokenwise.to", "gpt-4o-mini")); n != 1 {
		t.Errorf("fallbacks = %d", n)
	}
	if n := sumOf(t, m["tokenwise.budget.warnings"], is("tokenwise.budget.scope", "run")); n != 1 {
		t.Errorf("budget warnings = %d", n)
	}
	if n, _ := histCount(t, m["gen_ai.client.token.usage"], is("gen_ai.response.model", "gpt-4o-mini")); n != 2 {
		t.Errorf("token usage points for gpt-4o-mini = %d, want 2", n)
	}
	if got := sumOf(t, m["tokenwise.cost"], is("gen_ai.response.model", "gpt-4o-mini")); got == 0 {
		t.Errorf("no cost recorded for the fallback model")
	}
}

// TestEstimatedUsageIsMarked: an attempt whose usage is an estimate (the
// provider reported none: here one that timed out) has
// tokenwise.usage.estimated true, and so has its call's span; an attempt
// billed the provider's usage has no such attribute.
func TestEstimatedUsageIsMarked(t *testing.T) {
	h := newHarness(t)
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	standIn := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			estimate := middleware.Usage{InputTokens: 100}
			cost, _ := llmwrap.Pricer(p).Cost("gpt-4o", estimate)
			middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
				f.Attempts = append(f.Attempts, middleware.Attempt{Model: "gpt-4o", Latency: time.Second, Err: middleware.ErrTimeout,
					Usage: estimate, CostPico: cost, Estimated: true},
					middleware.Attempt{Model: "gpt-4o-mini", Latency: time.Second, Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}})
			})
			return next.Handle(ctx, req)
		})
	}
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: "gpt-4o-mini", Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}}, nil
	})
	hd := middleware.Then(provider, instrument.New(llmwrap.Pricer(p), h.obs), standIn)
	if _, err := hd.Handle(context.Background(), &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "fix it"}}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range h.spans.Ended() {
		got[s.Name()] = attr(s.Attributes(), "tokenwise.usage.estimated")
	}
	want := map[string]string{"chat gpt-4o": "true", "attempt gpt-4o": "true", "attempt gpt-4o-mini": ""}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("span %q: tokenwise.usage.estimated %q (span found: %v), want %q", name, g, ok, v)
		}
	}
}
