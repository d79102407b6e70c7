package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestGatewayAnswersItsOwnEndpointsWrongMethodWith405: the endpoints the
// gateway serves itself (/v1/spend, /v1/runs/{id}, /healthz, /readyz,
// /metrics) answer another method than theirs with an OpenAI-shaped 405
// that names the methods they allow (Allow: GET, HEAD), which openai-go
// raises as its *openai.Error — before, a POST or DELETE of /v1/spend or
// /v1/runs/{id} was passed to the upstream, with the upstream's key, as
// an OpenAI endpoint it has not, and /healthz answered it 404.
func TestGatewayAnswersItsOwnEndpointsWrongMethodWith405(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", defaultPolicies, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	ctx := t.Context()
	for _, c := range []struct{ method, path string }{
		{"POST", "spend"}, {"DELETE", "spend"}, {"POST", "runs/run-1"}, {"DELETE", "runs/run-1"}, {"PUT", "runs/run-1"},
	} {
		err := oc.Execute(ctx, c.method, c.path, map[string]any{}, nil)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusMethodNotAllowed || ae.Code != "method_not_allowed" ||
			ae.Response.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /v1/%s: %v, want the gateway's 405 method_not_allowed with Allow: GET, HEAD", c.method, c.path, err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/spend", "/runs/run-1"} {
		resp := e.do(t, "POST", path, devopsKey, "{}")
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: %d (Allow %q), want 405 with Allow: GET, HEAD", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the upstream got %d requests for the gateway's own endpoints", n)
	}
	// Their own methods are served as before.
	for _, path := range []string{"/v1/spend", "/healthz"} {
		for _, m := range []string{"GET", "HEAD"} {
			if resp := e.do(t, m, path, devopsKey, ""); resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d, want 200", m, path, resp.StatusCode)
			}
		}
	}
}
