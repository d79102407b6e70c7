package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGatewayResponsesRetriesCountAgainstTheRequestLimit: a Responses call
// whose model is retried (fallback.retry) made a request upstream per
// attempt, and the model's requests per minute count them all: after two
// failed attempts of gpt-4o (then gpt-4o-mini's answer), 60 rpm with a
// 2s burst has no room for another gpt-4o call at once, which the
// policy's on_limit reject refuses. The hold counted one request, so that
// the call went to gpt-4o again.
func TestGatewayResponsesRetriesCountAgainstTheRequestLimit(t *testing.T) {
	up := newModelUpstream(t)
	up.setFail("gpt-4o", http.StatusServiceUnavailable)
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", fallbackPolicies(`rate_limits:
  models: {gpt-4o: {rpm: 60, burst: 2s}}
  on_limit: reject
`), ""))
	const body = `{"model":"gpt-4o","input":"Check the disks."}`
	r := e.do(t, "POST", "/v1/responses", devopsKey, body)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o-mini") {
		t.Fatalf("first call: %d %s", r.StatusCode, got)
	}
	if s := up.seen(0, "/responses"); strings.Join(s, ",") != "gpt-4o,gpt-4o,gpt-4o-mini" {
		t.Fatalf("the upstream got %v, want gpt-4o twice (a retry), then gpt-4o-mini", s)
	}
	n := up.count()
	r = e.do(t, "POST", "/v1/responses", devopsKey, body)
	got, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second call: %d %s, want the rate limit's 429 (gpt-4o's two requests fill its burst)", r.StatusCode, got)
	}
	if s := up.seen(n, "/responses"); len(s) != 0 {
		t.Errorf("second call: the upstream got %v, want nothing", s)
	}
}
