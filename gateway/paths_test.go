package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// pathRecorder is an upstream that answers every request 200 and keeps
// each one's method, escaped path and Authorization header.
type pathRecorder struct {
	mu   sync.Mutex
	reqs []string
}

func (p *pathRecorder) serve(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization"))
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	return up
}

func (p *pathRecorder) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reqs
	p.reqs = nil
	return r
}

// TestGatewayRefusesDotSegmentPaths: a path the gateway would police as
// one endpoint and its upstream could resolve to another — a '.' or '..'
// segment written %2E (which Go's router does not clean), an encoded
// slash, a backslash, an empty segment — is refused with an OpenAI-shaped
// 400 invalid_path before it reaches the upstream, under /v1 and without
// it. Before, POST /v1/responses/%2E, /v1/x/%2E%2E/responses,
// /v1/chat/completions/%2E, /v1/embeddings/%2E and /v1/x%2F..%2Fcompletions
// reached the upstream as the clean endpoint with the upstream's key and
// none of the team's policies (no budget, no 403 unpoliced_endpoint), and
// %2E%2E segments left the upstream's base path. A plain path is sent
// under the base path as it is, escapes kept: a double-encoded %252E%252E
// is a segment of its own there, never a '..'.
func TestGatewayRefusesDotSegmentPaths(t *testing.T) {
	var rec pathRecorder
	up := rec.serve(t)
	t.Setenv(upstreamEnv, upstreamKey)
	// The upstream's base URL has a path of its own, which no request
	// leaves. payments has a budget of $0.001 and a 1,000-token cap.
	e := serveFile(t, writeFiles(t, up.URL+"/tenant-a/openai/v1", defaultPolicies, ""))
	chat := `{"model":"gpt-4o","max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}`
	responses := `{"model":"gpt-4o","input":"hi","max_output_tokens":100000}`
	for _, c := range []struct{ path, body, problem string }{
		{"/v1/chat/completions/%2E", chat, "'.' segment"},
		{"/v1/responses/%2E", responses, "'.' segment"},
		{"/v1/responses/%2e/", responses, "'.' segment"},
		{"/v1/x/%2E%2E/responses", responses, "'..' segment"},
		{"/v1/embeddings/%2E", `{"model":"text-embedding-3-small","input":"hi"}`, "'.' segment"},
		{"/v1/x%2F..%2Fcompletions", `{"model":"gpt-3.5-turbo-instruct","prompt":"hi"}`, "encoded slash"},
		{"/v1/files%2fx", `{}`, "encoded slash"},
		{"/v1/x%5C..%5Cresponses", responses, "backslash"},
		{"/v1//responses", responses, "empty segment"},
		{"/v1/%2E%2E/%2E%2E/%2E%2E/tenant-b/admin", `{}`, "'..' segment"},
		// Without the /v1 prefix, as the gateway serves the API too.
		{"/responses/%2E", responses, "'.' segment"},
		{"/x/%2E%2E/responses", responses, "'..' segment"},
	} {
		resp, body := rawPost(t, e.url, c.path, paymentsKey, c.body)
		var eb errorBody
		_ = json.Unmarshal([]byte(body), &eb)
		if resp.StatusCode != http.StatusBadRequest || eb.Error.Code == nil || *eb.Error.Code != "invalid_path" ||
			eb.Error.Type != "invalid_request_error" || !strings.Contains(eb.Error.Message, c.problem) {
			t.Errorf("POST %s: %d %s, want 400 invalid_path naming %q", c.path, resp.StatusCode, body, c.problem)
		}
		if got := rec.take(); len(got) != 0 {
			t.Errorf("POST %s: the upstream got %q", c.path, got)
		}
	}
	// Plain paths pass, under the base path, escapes kept.
	for _, c := range []struct{ path, want string }{
		{"/v1/files/file-1", "POST /tenant-a/openai/v1/files/file-1 Bearer " + upstreamKey},
		{"/v1/files/", "POST /tenant-a/openai/v1/files/ Bearer " + upstreamKey},
		{"/v1/files/%252E%252E", "POST /tenant-a/openai/v1/files/%252E%252E Bearer " + upstreamKey},
		{"/files/file-%31", "POST /tenant-a/openai/v1/files/file-%31 Bearer " + upstreamKey},
	} {
		if resp, body := rawPost(t, e.url, c.path, devopsKey, `{}`); resp.StatusCode != http.StatusOK {
			t.Errorf("POST %s: %d %s, want the upstream's 200", c.path, resp.StatusCode, body)
		}
		if got := rec.take(); len(got) != 1 || got[0] != c.want {
			t.Errorf("POST %s: the upstream got %q, want %q", c.path, got, c.want)
		}
	}
}
