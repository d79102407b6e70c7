package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestGatewayUpstreamBaseURLWithAQuery: an Azure OpenAI deployment's base
// URL carries its api-version as a query
// (https://x.openai.azure.com/openai/deployments/d?api-version=…), which
// every request needs. The chat, Responses, embeddings and passed-through
// calls go to the deployment's path with that query, the client's own
// query after it. (The chat URL was the base with /chat/completions after
// its query; passed-through calls lost it.)
func TestGatewayUpstreamBaseURLWithAQuery(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/chat/completions"):
			io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`)
		case strings.HasSuffix(r.URL.Path, "/responses"):
			io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini","output":[{"type":"message","id":"m","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}`)
		case strings.HasSuffix(r.URL.Path, "/embeddings"):
			io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}`)
		default:
			io.WriteString(w, `{"object":"list","data":[]}`)
		}
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget: {team: {period: monthly, max_usd: 1}}\n"}
	e := serveFile(t, writeFiles(t, up.URL+"/openai/deployments/d?api-version=2024-10-21", pols, ""))
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
			"POST /openai/deployments/d/chat/completions?api-version=2024-10-21"},
		{"POST", "/v1/responses", `{"model":"gpt-4o-mini","max_output_tokens":5,"input":"hi"}`,
			"POST /openai/deployments/d/responses?api-version=2024-10-21"},
		{"POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hi"}`,
			"POST /openai/deployments/d/embeddings?api-version=2024-10-21"},
		{"GET", "/v1/files?purpose=batch", "",
			"GET /openai/deployments/d/files?api-version=2024-10-21&purpose=batch"},
	} {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		resp := e.do(t, c.method, c.path, devopsKey, c.body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b)
			continue
		}
		mu.Lock()
		got := strings.Join(seen[n:], ", ")
		mu.Unlock()
		if got != c.want {
			t.Errorf("%s %s reached the upstream as %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
