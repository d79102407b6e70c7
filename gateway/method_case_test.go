package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGatewayRefusesAMethodInAnotherCase: a request whose method is a
// standard one in another case ("post", "Post") is refused with an
// OpenAI-shaped 400 and never reaches the upstream. Before, "post
// /v1/chat/completions" missed the chat route (POST) and the policing of
// passed-through model calls (which compare the method with "POST"), and
// was passed on, with the upstream's key, to an upstream that serves its
// path whatever the method: a chat completion no budget saw, for a team
// whose budget forbids unpoliced calls.
func TestGatewayRefusesAMethodInAnotherCase(t *testing.T) {
	var calls atomic.Int64
	// An OpenAI-compatible server that, as many do, routes by path only.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"free"},"finish_reason":"stop"}],"usage":{"prompt_tokens":100000,"completion_tokens":100000,"total_tokens":200000}}`)
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", defaultPolicies, ""))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, c := range []struct{ method, path string }{
		{"post", "/v1/chat/completions"}, {"Post", "/v1/chat/completions"}, {"pOST", "/chat/completions"},
		{"post", "/v1/responses"}, {"post", "/v1/embeddings"}, {"post", "/v1/completions"}, {"get", "/v1/models"},
	} {
		head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n",
			c.method, c.path, paymentsKey, len(body))
		resp, got := rawDo(t, e.url, head, body)
		var we struct {
			Error struct{ Message, Type, Code string }
		}
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal([]byte(got), &we) != nil || we.Error.Code != "invalid_method" ||
			!strings.Contains(we.Error.Message, strings.ToUpper(c.method)) {
			t.Errorf("%s %s: %d %s, want an OpenAI-shaped 400 invalid_method naming %s", c.method, c.path, resp.StatusCode, got, strings.ToUpper(c.method))
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the upstream served %d requests of a method in another case", n)
	}
	// The methods as they are written are served as before.
	if resp := e.do(t, "POST", "/v1/chat/completions", paymentsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`); resp.StatusCode == http.StatusBadRequest {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("POST: %d %s", resp.StatusCode, b)
	}
}
