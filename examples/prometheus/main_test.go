package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestScrapeMetrics scrapes /metrics with a real HTTP client after the
// example's calls and finds the GenAI token usage histogram and the cost and
// cache counters, with the values the run recorded.
func TestScrapeMetrics(t *testing.T) {
	defer goleak.VerifyNone(t)
	d, err := setup()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	ctx, run := middleware.StartRun(context.Background(), "prom")
	if err := d.calls(ctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(d.handler)
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %v %s", err, resp.Status)
	}
	text := string(body)
	for _, want := range []string{"# TYPE gen_ai_client_token_usage histogram", "# TYPE tokenwise_cost_total counter",
		"# TYPE gen_ai_client_operation_duration_seconds histogram", "# TYPE tokenwise_cache_lookups_total counter"} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	calls := run.Calls()
	if len(calls) != 3 || calls[1].Cache != middleware.CacheHit {
		t.Fatalf("calls: %+v", calls)
	}
	var miniCost, gpt4oCost, miniIn int64
	for _, c := range calls {
		switch c.Model {
		case "gpt-4o-mini":
			miniCost += c.CostPico
			miniIn += c.Usage.InputTokens
		case "gpt-4o":
			gpt4oCost += c.CostPico
		}
	}
	if miniCost == 0 || gpt4oCost == 0 {
		t.Fatalf("no cost recorded: %d %d", miniCost, gpt4oCost)
	}
	check := func(series string, labels []string, want int64) {
		t.Helper()
		if got, ok := value(text, series, labels...); !ok || got != float64(want) {
			t.Errorf("%s%v = %v (found %v), want %d", series, labels, got, ok, want)
		}
	}
	check("tokenwise_cost_total", []string{`gen_ai_response_model="gpt-4o-mini"`, `tokenwise_team="devops"`}, miniCost)
	check("tokenwise_cost_total", []string{`gen_ai_response_model="gpt-4o"`}, gpt4oCost)
	check("gen_ai_client_token_usage_sum", []string{`gen_ai_response_model="gpt-4o-mini"`, `gen_ai_token_type="input"`}, miniIn)
	check("gen_ai_client_token_usage_count", []string{`gen_ai_response_model="gpt-4o-mini"`, `gen_ai_token_type="input"`}, 1)
	check("tokenwise_cache_lookups_total", []string{`tokenwise_cache_status="hit"`}, 1)
	check("tokenwise_cache_saved_total", []string{`gen_ai_request_model="gpt-4o-mini"`}, calls[1].SavedPico)
	check("gen_ai_client_operation_duration_seconds_count", []string{`gen_ai_request_model="gpt-4o-mini"`}, 2)
}

// value returns the sample of the series whose labels include all of labels.
func value(text, series string, labels ...string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestOnce runs the program as `go run ./examples/prometheus -once` does.
func TestOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if err := run(context.Background(), "", true, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gen_ai_client_token_usage_bucket{", "tokenwise_cost_total{", "tokenwise_cache_saved_total{"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "go_goroutines") {
		t.Error("output should hold only gen_ai and tokenwise series")
	}
}
