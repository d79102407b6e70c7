package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGatewayResponsesRetriesAreAdmittedWhenSent: each retry of a
// Responses call (fallback.retry) is admitted by its model's requests per
// minute when it is sent, as the call's first request is: 6 concurrent
// calls whose first two requests each get a 503 never send the upstream
// more than the limit admits over the whole run (⌊(elapsed + burst) /
// interval⌋, a count). The retries were charged only as the calls ended,
// and 60 rpm with a burst of 3 sent 9 requests at once.
func TestGatewayResponsesRetriesAreAdmittedWhenSent(t *testing.T) {
	var calls atomic.Int64
	up := failingTwiceUpstream(t, &calls)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nfallback:\n  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}\n" +
			"rate_limits:\n  on_limit: reject\n  models:\n    gpt-4o: {rpm: 60, burst: 3s}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"call `+strconv.Itoa(i)+`","max_output_tokens":16}`)
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != 200 && r.StatusCode != 503 && r.StatusCode != 429 {
				t.Errorf("call %d: %d", i, r.StatusCode)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if allowed := int((elapsed + 3*time.Second) / time.Second); calls.Load() > int64(allowed) {
		t.Errorf("the upstream saw %d requests in %v, %d allowed at 60 rpm with a burst of 3s", calls.Load(), elapsed, allowed)
	}
	if calls.Load() == 0 {
		t.Error("no request reached the upstream")
	}
}

// TestGatewayResponsesRetriedInputCountsAgainstTheTokenLimit: each
// request of a Responses call counts its input against its model's tokens
// per minute: a call of ~150 input tokens whose first two requests got
// 503s, answered at 6 tokens, leaves 1,000 tokens a minute no room for a
// call of 900 more. Only the answer's 6 tokens were counted, and the
// second call went through.
func TestGatewayResponsesRetriedInputCountsAgainstTheTokenLimit(t *testing.T) {
	var calls atomic.Int64
	up := failingTwiceUpstream(t, &calls)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nfallback:\n  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}\n" +
			"rate_limits:\n  on_limit: reject\n  models:\n    gpt-4o: {tpm: 1000, burst: 1m}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	call := func(input string, maxOut int) (int, string) {
		r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"`+input+`","max_output_tokens":`+strconv.Itoa(maxOut)+`}`)
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return r.StatusCode, string(b)
	}
	if st, body := call(strings.Repeat("hello ", 150), 16); st != 200 {
		t.Fatalf("first call: %d %s", st, body)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("the upstream saw %d requests, want 3", n)
	}
	if st, body := call("second", 900); st != 429 || !strings.Contains(body, "rate_limit_exceeded") {
		t.Fatalf("a call of 900 tokens after one that sent ~150 input tokens three times: %d %s, want 429 rate_limit_exceeded", st, body)
	}
}

// failingTwiceUpstream answers each distinct Responses request body with
// a 503 twice, then a response of 6 tokens.
func failingTwiceUpstream(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(b)]++
		n := seen[string(b)]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","code":null}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o","output":[],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}`)
	}))
	t.Cleanup(up.Close)
	return up
}
