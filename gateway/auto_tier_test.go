package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGatewayAnswerOfTierAutoIsChargedAtTheProjectsTier: an answer whose
// service_tier is "auto" — no processing tier (OpenAI's answer names the
// tier it used; "auto" is the request's "the project's tier", echoed by a
// proxy or a compatible server) — is charged at the project's default
// tier (budget.default_service_tier: priority, gpt-4o's $4.25/$17 per 1M),
// as a call that names no tier is reserved, on the chat and the Responses
// path. Before, "auto" was charged at the standard $2.50/$10.
func TestGatewayAnswerOfTierAutoIsChargedAtTheProjectsTier(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/responses") {
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o","service_tier":"auto","output":[],`+
				`"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","service_tier":"auto",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`)
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	// 1,000 input and 100 output tokens of gpt-4o at priority: $0.00425 +
	// $0.0017 (standard: $0.0025 + $0.001).
	const want = "0.005950"
	for _, call := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":100}`},
		{"responses", "/v1/responses", `{"model":"gpt-4o","input":"hi","max_output_tokens":100}`},
	} {
		t.Run(call.name, func(t *testing.T) {
			pols := map[string]string{
				"default.yaml": "version: 1\nname: default\n",
				"devops.yaml":  "version: 1\nname: devops\nbudget:\n  default_service_tier: priority\n  team: {period: monthly, max_usd: 10}\n",
			}
			e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
			resp := e.do(t, "POST", call.path, devopsKey, call.body)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if s := e.spend(t); resp.StatusCode != http.StatusOK || s.SpentUSD != want {
				t.Fatalf("status %d, spent %s USD; want %s, the priority rates of the project's tier", resp.StatusCode, s.SpentUSD, want)
			}
		})
	}
}
