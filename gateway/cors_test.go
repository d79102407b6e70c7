package gateway_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/policies"
)

// TestGatewayAnswersBrowsers: with cors.allowed_origins, a page of an
// allowed origin can call the gateway from a browser — the OpenAI SDKs'
// browser mode sends a preflight (OPTIONS, no key) naming the SDK's own
// headers, then the call with the virtual key — and read its answer and
// the headers the SDKs read (X-Request-Id, the retry headers). An origin
// not listed gets no CORS header on its calls and a 403 to its preflight;
// the upstream's own CORS headers (OpenAI's API sends
// Access-Control-Allow-Origin: *) never reach a browser, with or without
// the section, on a chat completion or a passed-through call. Before, the
// gateway answered no preflight, and passed on the upstream's "*" on
// passed-through calls only.
func TestGatewayAnswersBrowsers(t *testing.T) {
	up := openaitest.NewServer(t)
	up.Default(openaitest.Text("hi"))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "*")
		up.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	t.Setenv(upstreamEnv, upstreamKey)
	const app = "https://app.example.com"
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

	send := func(t *testing.T, url, method, path, origin, key, body string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	t.Run("allowed", func(t *testing.T) {
		g := startFuzzGateway(t, hs.URL+"/v1", defaultPolicies, "cors: {allowed_origins: ['"+app+"'], max_age: 5m}\n")
		before := up.Count()
		pre := send(t, g.url, http.MethodOptions, "/v1/chat/completions", app, "", "",
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type,x-stainless-os")
		if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != app ||
			pre.Header.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-stainless-os" ||
			!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") || pre.Header.Get("Access-Control-Max-Age") != "300" {
			t.Fatalf("preflight of an allowed origin: %d %v", pre.StatusCode, pre.Header)
		}
		if up.Count() != before {
			t.Fatal("a preflight reached the upstream")
		}
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/chat/completions", chat},
			{http.MethodGet, "/v1/files", ""}, // passed through
			{http.MethodGet, "/v1/models", ""},
		} {
			resp := send(t, g.url, c.method, c.path, app, devopsKey, c.body)
			if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != app {
				t.Errorf("%s %s from %s: %d, Access-Control-Allow-Origin %q, want only the origin", c.method, c.path, app, resp.StatusCode, got)
			}
			if exp := resp.Header.Values("Access-Control-Expose-Headers"); len(exp) != 1 || !strings.Contains(exp[0], "X-Request-Id") || !strings.Contains(exp[0], "Retry-After") {
				t.Errorf("%s %s: Access-Control-Expose-Headers %q", c.method, c.path, exp)
			}
		}
		// Any other origin: a 403 to its preflight, no CORS header on a call.
		pre = send(t, g.url, http.MethodOptions, "/v1/chat/completions", "https://evil.example", "", "", "Access-Control-Request-Method", "POST")
		if pre.StatusCode != http.StatusForbidden || pre.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight of another origin: %d %v, want a 403 without CORS headers", pre.StatusCode, pre.Header)
		}
		resp := send(t, g.url, http.MethodPost, "/v1/chat/completions", "https://evil.example", devopsKey, chat)
		if v := resp.Header.Values("Access-Control-Allow-Origin"); len(v) != 0 {
			t.Errorf("a call of another origin got Access-Control-Allow-Origin %q", v)
		}
		// The key is still required on a call.
		if resp := send(t, g.url, http.MethodPost, "/v1/chat/completions", app, "", chat); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a call of an allowed origin without a key: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("none", func(t *testing.T) {
		g := startFuzzGateway(t, hs.URL+"/v1", defaultPolicies, "")
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/chat/completions", chat},
			{http.MethodGet, "/v1/files", ""},
		} {
			resp := send(t, g.url, c.method, c.path, app, devopsKey, c.body)
			if v := resp.Header.Values("Access-Control-Allow-Origin"); len(v) != 0 {
				t.Errorf("%s %s without a cors section: Access-Control-Allow-Origin %q (the upstream's)", c.method, c.path, v)
			}
		}
	})

	t.Run("checked", func(t *testing.T) {
		dir := t.TempDir()
		file := "policies: " + dir + "\nupstreams: [{name: a, base_url: 'https://api.openai.com/v1'}]\n" +
			"cors:\n  allowed_origins: ['https://app.example.com/chat', 'app.example.com', '*', 'https://ok.example:8443']\n  max_age: -1s\n"
		_, err := gateway.ParseConfig([]byte(file), filepath.Join(dir, "gateway.yaml"))
		var ve *policies.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("err = %v, want a ValidationError", err)
		}
		got := map[string]int{}
		for _, p := range ve.Problems {
			got[p.Path] = p.Line
		}
		for path, line := range map[string]int{"cors.allowed_origins[0]": 4, "cors.allowed_origins[1]": 4, "cors.max_age": 5} {
			if got[path] != line {
				t.Errorf("%s: line %d, want %d\n%v", path, got[path], line, err)
			}
		}
		for _, ok := range []string{"cors.allowed_origins[2]", "cors.allowed_origins[3]"} {
			if _, bad := got[ok]; bad {
				t.Errorf("%s flagged: %v", ok, err)
			}
		}
	})
}
