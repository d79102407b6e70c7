package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestGatewayResponsesCacheDoesNotKeepAFallbacksAnswer: a Responses call
// whose routed model fails once and whose fallback model answers is not
// kept: the next identical call goes to the routed model (healthy again),
// whose answer is then kept.
func TestGatewayResponsesCacheDoesNotKeepAFallbacksAnswer(t *testing.T) {
	var calls, failed atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		if req.Model == "gpt-4o" && failed.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`)
			return
		}
		fmt.Fprintf(w, `{"id":"resp_%d","object":"response","created_at":1,"status":"completed","model":%q,`+
			`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"I am %s.","annotations":[]}]}],`+
			`"usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12}}`, calls.Load(), req.Model, req.Model)
	}))
	t.Cleanup(up.Close)
	pols := map[string]string{
		"default.yaml":  "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\nfallback: {models: [gpt-4.1]}\n",
		"payments.yaml": "version: 1\nname: payments\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	ask := func() string {
		t.Helper()
		resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"which model are you?"}`)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var o struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(b, &o)
		return o.Model
	}
	if got := ask(); got != "gpt-4.1" {
		t.Fatalf("the first call (gpt-4o failing) was answered by %q, want the fallback gpt-4.1", got)
	}
	if got := ask(); got != "gpt-4o" {
		t.Fatalf("the same call, gpt-4o healthy again, was answered by %q (from the cache?)", got)
	}
	n := calls.Load()
	if got := ask(); got != "gpt-4o" || calls.Load() != n {
		t.Fatalf("the routed model's answer was not kept: %q, %d upstream calls after %d", got, calls.Load(), n)
	}
}
