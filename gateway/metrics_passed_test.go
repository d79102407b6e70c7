package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
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
// dashboards did not show; and a team without a budget or rate limits had
// none of its embeddings calls there.) The gateway's requests are counted
// by outcome: "ok" or "upstream_error" for the calls it polices,
// "pass_through" for other endpoints (before, a policed Responses or
// embeddings call was "pass_through" whatever its answer).
func TestGatewayMetricsCountPassedCalls(t *testing.T) {
	up := newModelUpstream(t)
	up.body["text-embedding-3-small"] = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}`
	t.Setenv(upstreamEnv, upstreamKey)
	pols := fallbackPolicies(`cache: {enabled: true, ttl: 1h}
models:
  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}
`)
	// payments: no budget, no rate limits, no cache, no fallback
	pols["payments.yaml"] = "version: 1\nname: payments\nmodels:\n  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}\n"
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
	// A team without a budget or rate limits: its embeddings calls are
	// reported all the same (its answer's usage read), and an upstream's
	// error answer is counted as one.
	read(e.do(t, "POST", "/v1/embeddings", paymentsKey, `{"model":"text-embedding-3-small","input":["hello","world"]}`))
	up.setFail("text-embedding-3-small", http.StatusInternalServerError)
	if r := e.do(t, "POST", "/v1/embeddings", paymentsKey, `{"model":"text-embedding-3-small","input":"hello"}`); r.StatusCode != http.StatusInternalServerError {
		t.Fatalf("the failed embeddings call: %d", r.StatusCode)
	}
	up.setFail("text-embedding-3-small", 0)
	// (A file's retrieval: a list of files is read for the team's own, objects_owner.go.)
	read(e.do(t, "GET", "/v1/files/file-abc", paymentsKey, ""))
	if s := e.spend(t); s.SpentUSD != "0.003921" {
		t.Fatalf("devops spent %s, want $0.003921 (0.0035 + 2 × 0.00021 + 0.0000001 rounded up to a micro-dollar)", s.SpentUSD)
	}

	m := e.finalMetrics(t)
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
		{"tokenwise_cost_total", []string{`gen_ai_response_model="text-embedding-3-small"`, `tokenwise_team="payments"`}, "100000"},
		// Requests by outcome: the calls the gateway polices (chat,
		// Responses, embeddings) are "ok" or "upstream_error"; other
		// endpoints "pass_through".
		{"tokenwise_gateway_requests_total", []string{`outcome="ok"`}, "7"},
		{"tokenwise_gateway_requests_total", []string{`outcome="upstream_error"`}, "1"},
		{"tokenwise_gateway_requests_total", []string{`outcome="pass_through"`}, "1"},
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
		{"gen_ai_client_token_usage_sum", []string{`gen_ai_operation_name="embeddings"`, `gen_ai_token_type="input"`}, "10"},
		{"gen_ai_client_operation_duration_seconds_count", []string{`gen_ai_operation_name="chat"`, `gen_ai_request_model="gpt-4o"`, `gen_ai_response_model="gpt-4o"`}, "3"},
		{"gen_ai_client_operation_duration_seconds_count", []string{`{gen_ai_operation_name="embeddings"`}, "2"},
		{"gen_ai_client_operation_duration_seconds_count", []string{`error_type="_OTHER"`, `gen_ai_operation_name="embeddings"`}, "1"},
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

// TestGatewayResponsesRoutingSaved: what routing saved on a Responses
// call is in the run's report (routing_saved_usd) and in /metrics
// (tokenwise_route_saved, by the model asked for; each decision in
// tokenwise_route_decisions_total), as for a chat call: the answer's
// usage priced at the model the client asked for, less what the call
// cost.
//   - routing.default sends a call for gpt-4o to gpt-4o-mini: it saved
//     gpt-4o's price of gpt-4o-mini's 1,000 + 100 tokens less their cost;
//   - a cascade starts a call for gpt-4.1 at gpt-4o-mini, whose empty
//     answer escalates to gpt-4o: gpt-4.1's price of gpt-4o's tokens,
//     less both answers' cost.
func TestGatewayResponsesRoutingSaved(t *testing.T) {
	const mini, strong = 210_000_000, 3_500_000_000 // 1,000 + 100 tokens (see TestGatewayResponsesCascade)
	const gpt41 = 2_800_000_000                     // at gpt-4.1's $2/M and $8/M
	for _, c := range []struct {
		name, routing, model string
		empty                bool // gpt-4o-mini answers nothing
		saved                int64
		decisions            [][2]string
	}{
		{"default", "default: gpt-4o-mini", "gpt-4o", false, strong - mini, [][2]string{{"gpt-4o", "gpt-4o-mini"}}},
		{"cascade", "cascade: {models: [gpt-4o-mini, gpt-4o]}", "gpt-4.1", true, gpt41 - mini - strong,
			[][2]string{{"gpt-4.1", "gpt-4o-mini"}, {"gpt-4o-mini", "gpt-4o"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newModelUpstream(t)
			if c.empty {
				up.body["gpt-4o-mini"] = cascadeAnswer("gpt-4o-mini", "completed", "")
			}
			e := serveFile(t, writeFiles(t, up.URL+"/v1", routingPolicies(t, c.routing), ""))
			r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"`+c.model+`","input":"Check the disks."}`, "X-Run-Id", "r1")
			if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 {
				t.Fatalf("%d %s", r.StatusCode, b)
			}
			status, rep, _ := e.runReport(t, devopsKey, "r1")
			if status != 200 || rep.RoutingSavedPico != c.saved || rep.RoutingSavedUSD != strings.Replace(middleware.FormatPico(c.saved), "$", "", 1) {
				t.Errorf("run report %d: routing saved %d (%s), want %d", status, rep.RoutingSavedPico, rep.RoutingSavedUSD, c.saved)
			}
			m, _ := io.ReadAll(e.do(t, "GET", "/metrics", "", "").Body)
			if got, _ := metricValue(t, string(m), "tokenwise_route_saved", `gen_ai_request_model="`+c.model+`"`, `tokenwise_team="devops"`); got != strconv.FormatFloat(float64(c.saved), 'g', -1, 64) {
				t.Errorf("tokenwise_route_saved = %q, want %d", got, c.saved)
			}
			for _, d := range c.decisions {
				if got, _ := metricValue(t, string(m), "tokenwise_route_decisions_total", `tokenwise_from="`+d[0]+`"`, `tokenwise_to="`+d[1]+`"`); got != "1" {
					t.Errorf("tokenwise_route_decisions_total from %s to %s = %q, want 1", d[0], d[1], got)
				}
			}
			if t.Failed() {
				t.Logf("metrics:\n%s", m)
			}
		})
	}
}

// TestGatewayPassesOnEmbeddingsAsTheyCome: an embeddings answer is
// passed on as the upstream writes it, once the gateway has seen that it
// is not an error object (its first 64 KiB; peekEmbeddedError) — its
// first bytes reach the client before the upstream has written the rest,
// and the bytes are the upstream's — and the call is charged (a team with
// a budget) and in /metrics at the answer's usage, read from its last
// bytes (a 4 × 3,072-float answer, far longer than what the gateway
// keeps), for a team with a budget as for one without (before, the
// gateway read the whole answer into memory, up to 256 MiB, before
// passing it on; a team without a budget or rate limits had its answers
// passed on unread and was missing from /metrics).
func TestGatewayPassesOnEmbeddingsAsTheyCome(t *testing.T) {
	vec := strings.TrimSuffix(strings.Repeat("-0.0123456789,", 3072), ",")
	var data []string
	for i := range 4 {
		data = append(data, `{"object":"embedding","index":`+strconv.Itoa(i)+`,"embedding":[`+vec+`]}`)
	}
	answer := `{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"text-embedding-3-small","usage":{"prompt_tokens":12345,"total_tokens":12345}}`
	half := len(answer) / 2 // > 64 KiB
	const embeddingModel = "models:\n  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}\n"
	for _, c := range []struct {
		name, policy string
		sized        bool // the upstream sends a Content-Length
	}{
		{"no budget", "", false},
		{"budget", "budget:\n  team: {period: monthly, max_usd: 10}\n", false},
		{"budget, sized answer", "budget:\n  team: {period: monthly, max_usd: 10}\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			held := make(chan bool, 1) // whether the upstream waited in vain for the client to read its first half
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				if c.sized {
					w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
				}
				_, _ = io.WriteString(w, answer[:half])
				w.(http.Flusher).Flush()
				select {
				case <-release:
					held <- false
				case <-time.After(5 * time.Second):
					held <- true
				}
				_, _ = io.WriteString(w, answer[half:])
			}))
			defer up.Close()
			t.Setenv(upstreamEnv, upstreamKey)
			pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
				"payments.yaml": "version: 1\nname: payments\n" + embeddingModel + c.policy}
			e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

			r := e.do(t, "POST", "/v1/embeddings", paymentsKey, `{"model":"text-embedding-3-small","input":["a","b","c"]}`)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			first := make([]byte, 100)
			if _, err := io.ReadFull(r.Body, first); err != nil {
				t.Fatal(err)
			}
			close(release)
			rest, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			if <-held {
				t.Error("the gateway held the answer back until the upstream had written all of it")
			}
			if got := string(first) + string(rest); got != answer {
				t.Fatalf("the client got %d bytes, not the upstream's %d", len(got), len(answer))
			}
			if c.policy != "" {
				// Charged by the time the client has the whole answer:
				// $0.0002469, rounded up to micro-dollars.
				if s := e.spendOf(t, paymentsKey); s.SpentUSD != "0.000247" || s.SpentTokens != 12345 || s.ReservedUSD != "0.000000" {
					t.Errorf("spend %+v, want $0.000247 and 12,345 tokens, nothing reserved", s)
				}
			}
			m, _ := io.ReadAll(e.do(t, "GET", "/metrics", "", "").Body)
			// 12,345 tokens at $0.02/M: $0.0002469.
			if got, _ := metricValue(t, string(m), "tokenwise_cost_total", `gen_ai_response_model="text-embedding-3-small"`, `tokenwise_team="payments"`); got != "2.469e+08" {
				t.Errorf("tokenwise_cost_total = %q, want 2.469e+08", got)
			}
			if got, _ := metricValue(t, string(m), "gen_ai_client_token_usage_sum", `gen_ai_operation_name="embeddings"`, `gen_ai_token_type="input"`); got != "12345" {
				t.Errorf("embeddings input tokens = %q, want 12345", got)
			}
		})
	}
}
