package otel_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Rate limits are visible in metrics: admissions and refusals with the
// limit that refused, the time calls waited, and what the provider
// reported left of its limits.
func TestRateLimitMetrics(t *testing.T) {
	h := newHarness(t)
	p, err := policies.LoadBytes([]byte("version: 1\nrate_limits:\n  models: {gpt-4o: {rpm: 60}}\n  on_limit: reject\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Reply{Content: "ok", Header: http.Header{
		"X-Ratelimit-Limit-Requests": {"5000"}, "X-Ratelimit-Remaining-Requests": {"4321"},
		"X-Ratelimit-Limit-Tokens": {"800000"}, "X-Ratelimit-Remaining-Tokens": {"799000"},
	}})
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(h.obs)), twopenai.WithBaseTransport(srv.Transport()))
	c := goopenai.NewClientWithConfig(cfg)
	var refused int
	for range 2 {
		_, err := c.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "uptime"}}})
		if errors.Is(err, middleware.ErrRateLimited) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused != 1 {
		t.Fatalf("%d refused, want 1 (60 rpm: one call a second)", refused)
	}
	m := h.metrics(t)
	dec := m["tokenwise.ratelimit.decisions"]
	if n := sumOf(t, dec, is("tokenwise.ratelimit.action", "admitted")); n != 1 {
		t.Errorf("admitted = %d, want 1", n)
	}
	if n := sumOf(t, dec, is("tokenwise.ratelimit.limit", "rpm")); n != 1 {
		t.Errorf("refused by rpm = %d, want 1", n)
	}
	if n, _ := histCount(t, m["tokenwise.ratelimit.wait"], is("gen_ai.request.model", "gpt-4o")); n != 1 {
		t.Errorf("wait histogram has %d points, want 1", n)
	}
	g, ok := m["tokenwise.ratelimit.remaining"].(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("remaining is %T", m["tokenwise.ratelimit.remaining"])
	}
	got := map[string]int64{}
	for _, dp := range g.DataPoints {
		u, _ := dp.Attributes.Value("tokenwise.ratelimit.unit")
		got[u.String()] = dp.Value
	}
	if got["requests"] != 4321 || got["tokens"] != 799000 {
		t.Errorf("remaining = %v, want requests 4321 and tokens 799000", got)
	}
}
