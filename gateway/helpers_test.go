package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// Virtual keys and the upstream key of the tests. Each is long and
// key-shaped, so that a leak anywhere is found by a plain search.
const (
	devopsKey   = "tw-test-devops-0123456789abcdef0123456789"
	paymentsKey = "tw-test-payments-fedcba9876543210fedcba98"
	upstreamKey = "sk-upstream-secret-00112233445566778899aabbccdd"
	upstreamEnv = "TOKENWISE_GATEWAY_TEST_UPSTREAM_KEY"
)

// env is one gateway under test: its files, the scripted upstream, the
// server and everything it logged.
type env struct {
	dir      string
	cfgPath  string
	upstream *openaitest.Server
	srv      *gateway.Server
	served   *httptest.Server // serveFile's test server of srv
	url      string           // http://127.0.0.1:port
	client   *http.Client     // the client of do (nil: http.DefaultClient)
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// defaultPolicies are the policy files of a test gateway.
var defaultPolicies = map[string]string{
	"default.yaml": "version: 1\nname: default\n",
	"devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 1}
fallback:
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 5ms}
`,
	"payments.yaml": `version: 1
name: payments
budget:
  request: {max_output_tokens: 1000}
  team: {period: monthly, max_usd: 0.001}
`,
}

// writeFiles writes a policy directory and a gateway file (extra is
// appended to it) into a temporary directory and returns the file's path.
func writeFiles(t testing.TB, upstreamURL string, pols map[string]string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	pd := filepath.Join(dir, "policies")
	if err := os.Mkdir(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range pols {
		if err := os.WriteFile(filepath.Join(pd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
policies: policies
upstreams:
  - name: scripted
    base_url: %s
    api_key_env: %s
    models: [gpt-4o-mini, gpt-4o]
keys:
  - {name: devops-key, team: devops, sha256: %s}
  - {name: payments-key, team: payments, sha256: %s}
%s`, upstreamURL, upstreamEnv, gateway.HashKey(devopsKey), gateway.HashKey(paymentsKey), extra)
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveFile builds the gateway of the gateway file at cfgPath (logs
// discarded) and serves it on a test server, both closed at the test's end.
func serveFile(t *testing.T, cfgPath string) *env {
	t.Helper()
	srv := newServer(t, cfgPath)
	gw := httptest.NewServer(srv.Handler())
	t.Cleanup(gw.Close)
	return &env{url: gw.URL, srv: srv, served: gw, cfgPath: cfgPath, dir: filepath.Dir(cfgPath)}
}

// finalMetrics closes the test server of serveFile's gateway — which
// waits for every request it is serving to end, so that what a call
// counts after its answer is passed on is counted — and returns the
// gateway's /metrics, served in process. No request can be sent to the
// gateway after it.
func (e *env) finalMetrics(t *testing.T) string {
	t.Helper()
	e.served.Close()
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// newServer builds the gateway of the gateway file at cfgPath (logs
// discarded), closed at the test's end.
func newServer(t *testing.T, cfgPath string) *gateway.Server {
	t.Helper()
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// start builds and serves a gateway in front of a scripted upstream.
func start(t *testing.T, pols map[string]string, extra string, opts ...gateway.Option) *env {
	t.Helper()
	t.Setenv(upstreamEnv, upstreamKey)
	up := openaitest.NewServer(t)
	if pols == nil {
		pols = defaultPolicies
	}
	e := &env{upstream: up, logs: &syncBuffer{}}
	e.cfgPath = writeFiles(t, up.URL, pols, extra)
	e.dir = filepath.Dir(e.cfgPath)
	cfg, err := gateway.LoadConfig(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := gateway.New(cfg, append([]gateway.Option{gateway.WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.url = srv, "http://"+l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return e
}

// do sends a request to the gateway with the given bearer key.
func (e *env) do(t *testing.T, method, path, key, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := e.client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// twoUpstreams writes a gateway file with two upstreams — a (base URL
// aURL, the test's upstream key, serving gpt-4o) and b (bURL, the key in
// TOKENWISE_GATEWAY_TEST_UPSTREAM_B, serving bModels) — and the devops key
// only, the devops team's policy devops; it returns the file's path.
func twoUpstreams(t *testing.T, aURL, bURL, bModels, devops string) string {
	t.Helper()
	dir := t.TempDir()
	pd := filepath.Join(dir, "policies")
	if err := os.Mkdir(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": devops} {
		if err := os.WriteFile(filepath.Join(pd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\npolicies: policies\nupstreams:\n"+
		"  - {name: a, base_url: %s, api_key_env: %s, models: [gpt-4o]}\n"+
		"  - {name: b, base_url: %s, api_key_env: TOKENWISE_GATEWAY_TEST_UPSTREAM_B, models: [%s]}\n"+
		"keys:\n  - {name: devops-key, team: devops, sha256: %s}\n", aURL, upstreamEnv, bURL, bModels, gateway.HashKey(devopsKey))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// rawDo sends head (a request line and its headers, each ending in
// "\r\n"; the blank line after them is added) and body to the gateway at
// base over a connection of its own, byte for byte: the path is not
// normalised or escaped as a client would. It returns the answer, its
// body read whole.
func rawDo(t *testing.T, base, head, body string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// rawPost is rawDo of a POST of body to path (as it is) with key.
func rawPost(t *testing.T, base, path, key, body string) (*http.Response, string) {
	t.Helper()
	return rawDo(t, base, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n", path, key, len(body)), body)
}
