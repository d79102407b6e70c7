package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// metricValue returns the value of the sample of metric name whose labels
// include every one of labels (`name="value"` pairs) in a Prometheus text
// exposition, and whether there is one; more than one such sample fails
// the test.
func metricValue(t *testing.T, exposition, name string, labels ...string) (string, bool) {
	t.Helper()
	var val string
	found := false
	for line := range strings.SplitSeq(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(line, l)
		}
		if !all {
			continue
		}
		if found {
			t.Fatalf("%s%v: more than one sample:\n%s", name, labels, exposition)
		}
		val, found = line[strings.LastIndexByte(line, ' ')+1:], true
	}
	return val, found
}

// TestGatewayMetricsCountPassedCalls: the Responses and embeddings calls
// the gateway polices are in /metrics as its chat calls are — their cost
// (exact, in pico-dollars, by team and answering model), their tokens and
// duration, the Responses cache's lookups and what its hits saved — with
// or without X-Run-Id, and for a team without a budget. (Before, /metrics
// had none of it: a team that called the Responses API spent money its
// dashboards did not show.)
func TestGatewayMetricsCountPassedCalls(t *testing.T) {
	up := newModelUpstream(t)
	up.body["text-embedding-3-small"] = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}`
	t.Setenv(upstreamEnv, upstreamKey)
	pols := fallbackPolicies(`cache: {enabled: true, ttl: 1h}
models:
  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}
`)
	pols["payments.yaml"] = "version: 1\nname: payments\n" // no budget, no cache, no fallback
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

	read := func(r *http.Response) string {
		t.Helper()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", r.StatusCode, b)
		}
		return string(b)
	}
	const ask = `{"model":"gpt-4o","input":"Is the disk full?"}`
	// gpt-4o: 1,000 input tokens at $2.50/M and 100 output at $10/M,
	// $0.0035; gpt-4o-mini: at $0.15/M and $0.60/M, $0.00021.
	read(e.do(t, "POST", "/v1/responses", devopsKey, ask))
	if got := read(e.do(t, "POST", "/v1/responses", devopsKey, ask, "X-Run-Id", "ticket-7")); !strings.Contains(got, "from gpt-4o") {
		t.Fatalf("the cache's hit: %s", got)
	}
	if got := read(e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"Restart it?","stream":true}`)); !strings.Contains(got, "response.completed") {
		t.Fatalf("the stream: %s", got)
	}
	up.setFail("gpt-4o", http.StatusServiceUnavailable)
	if got := read(e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"And the logs?"}`)); !strings.Contains(got, "from gpt-4o-mini") {
		t.Fatalf("the fallback: %s", got)
	}
	up.setFail("gpt-4o", 0)
	read(e.do(t, "POST", "/v1/responses", paymentsKey, ask))
	read(e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"hello"}`))
	if s := e.spend(t); s.SpentUSD != "0.003921" {
		t.Fatalf("devops spent %s, want $0.003921 (0.0035 + 2 × 0.00021 + 0.0000001 rounded up to a micro-dollar)", s.SpentUSD)
	}

	m := read(e.do(t, "GET", "/metrics", "", ""))
	for _, c := range []struct {
		name   string
		labels []string
		want   string
	}{
		// The cost, in pico-dollars: exact, by team and by the model
		// that answered.
		{"tokenwise_cost_total", []string{`gen_ai_response_model="gpt-4o"`, `tokenwise_team="devops"`}, "3.5e+09"},
		{"tokenwise_cost_total", []string{`gen_ai_response_model="gpt-4o-mini"`, `tokenwise_team="devops"`}, "4.2e+08"},
		{"tokenwise_cost_total", []string{`gen_ai_response_model="gpt-4o"`, `tokenwise_team="payments"`}, "3.5e+09"},
		{"tokenwise_cost_total", []string{`gen_ai_response_model="text-embedding-3-small"`, `tokenwise_team="devops"`}, "100000"},
		// The cache: one hit (the second call), which saved gpt-4o's
		// answer; the first call and the fallback's were misses (a
		// stream is looked up too).
		{"tokenwise_cache_lookups_total", []string{`tokenwise_cache_status="hit"`}, "1"},
		{"tokenwise_cache_lookups_total", []string{`tokenwise_cache_status="miss"`}, "3"},
		{"tokenwise_cache_saved_total", []string{`gen_ai_request_model="gpt-4o"`}, "3.5e+09"},
		// Tokens and durations, by operation and model: the cached call
		// spent none.
		{"gen_ai_client_token_usage_sum", []string{`gen_ai_operation_name="chat"`, `gen_ai_request_model="gpt-4o"`, `gen_ai_response_model="gpt-4o"`, `gen_ai_token_type="input"`}, "2000"},
		{"gen_ai_client_token_usage_sum", []string{`gen_ai_operation_name="chat"`, `gen_ai_request_model="gpt-4o"`, `gen_ai_response_model="gpt-4o-mini"`, `gen_ai_token_type="output"`}, "100"},
		{"gen_ai_client_token_usage_sum", []string{`gen_ai_operation_name="embeddings"`, `gen_ai_token_type="input"`}, "5"},
		{"gen_ai_client_operation_duration_seconds_count", []string{`gen_ai_operation_name="chat"`, `gen_ai_request_model="gpt-4o"`, `gen_ai_response_model="gpt-4o"`}, "3"},
		{"gen_ai_client_operation_duration_seconds_count", []string{`gen_ai_operation_name="embeddings"`}, "1"},
		{"tokenwise_fallbacks_total", []string{`tokenwise_from="gpt-4o"`, `tokenwise_to="gpt-4o-mini"`}, "1"},
	} {
		if got, _ := metricValue(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %q, want %s", c.name, c.labels, got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", m)
	}
}
