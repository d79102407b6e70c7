package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/gateway"
)

// gateway check lists every problem of a gateway file with its line and
// field, and of the policy directory it names; the README's example passes.
func TestGatewayCheck(t *testing.T) {
	code, stdout, stderr := runCmd("gateway", "check", filepath.Join("..", "..", "gateway", "testdata", "gateway.yaml"))
	if code != 0 || !strings.Contains(stdout, "ok") {
		t.Fatalf("example gateway file: exit %d\n%s%s", code, stdout, stderr)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(bad, []byte("listen: 127.0.0.1:8787\npolicies: nowhere\nupstreams:\n  - {name: a, base_url: https://x/v1, api_key: sk-inline-0123456789abcdef012345}\nkeys:\n  - {name: k, team: t, sha256: nothex}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd("gateway", "check", bad)
	if code != 1 {
		t.Fatalf("exit %d for a broken gateway file", code)
	}
	for _, want := range []string{bad + ":2:", "policies: ", bad + ":4:", "upstreams[0].api_key: a key is never written", bad + ":6:", "keys[0].sha256"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "sk-inline-0123456789abcdef012345") {
		t.Errorf("the inline key is echoed:\n%s", stderr)
	}
	// A valid file whose policy directory is broken: the policy problems.
	pd := filepath.Join(dir, "pols")
	if err := os.Mkdir(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pd, "devops.yaml"), []byte("version: 1\ncache: {enabeld: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("policies: pols\nupstreams:\n  - {name: a, base_url: https://x/v1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd("gateway", "check", good)
	if code != 1 || !strings.Contains(stderr, "devops.yaml:2:") || !strings.Contains(stderr, "cache.enabeld") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if code, _, _ := runCmd("serve", "-config", bad); code != 1 {
		t.Errorf("serve with a broken file: exit %d, want 1", code)
	}
}

// lineWriter sends every line written to it on a channel (dropping
// lines when its buffer is full).
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default: // nobody waits for more: never block the writer
		}
		w.buf = w.buf[i+1:]
	}
}

// waitLine returns the first line containing want, failing the test if
// none comes (the timeout guards against a hang; it is no timing assertion).
func waitLine(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, want) {
				return l
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no line with %q", want)
		}
	}
}

// tokenwise serve reloads the gateway file and the policies on SIGHUP and
// shuts down gracefully on SIGTERM (exit 0, the port closed).
func TestServeSignals(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "default.yaml"), []byte("version: 1\nname: default\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npolicies: policies\nupstreams:\n  - {name: a, base_url: http://127.0.0.1:9/v1}\nkeys:\n  - {name: k, team: ops, sha256: "+gateway.HashKey("sk-tw-serve-test-key")+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout := &lineWriter{lines: make(chan string, 16)}
	stderr := &lineWriter{lines: make(chan string, 256)}
	code := make(chan int, 1)
	go func() { code <- serve([]string{"-config", cfg}, stdout, stderr) }()
	line := waitLine(t, stdout.lines, "listening on ")
	url := strings.TrimSpace(line[strings.Index(line, "http://"):])
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, stderr.lines, "tokenwise/gateway: reloaded")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0", c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	http.DefaultClient.CloseIdleConnections()
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("the gateway still answers after SIGTERM: %d", resp.StatusCode)
	}
}

// TestServeRefusesAPositionalArgument: `tokenwise serve prod.yaml` (the
// file named as `gateway check` takes it, without -config) served the
// gateway.yaml of the working directory, another gateway with other keys
// and upstreams, and ignored prod.yaml without a word. An argument serve
// does not take is a usage error (exit 2) that says how to name the file;
// nothing is served.
func TestServeRefusesAPositionalArgument(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// A gateway file in the working directory that serve would start on.
	if err := os.WriteFile("gateway.yaml", []byte("listen: 127.0.0.1:0\npolicies: .\n"+
		"upstreams:\n  - {name: a, base_url: http://127.0.0.1:9/v1, api_key_env: TOKENWISE_TEST_UNSET_KEY}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd("serve", "prod.yaml")
	if code != 2 || !strings.Contains(stderr, `"prod.yaml"`) || !strings.Contains(stderr, "-config") {
		t.Errorf("serve prod.yaml: exit %d, want 2 and a message naming the argument and -config:\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "TOKENWISE_TEST_UNSET_KEY") {
		t.Errorf("serve prod.yaml started on ./gateway.yaml:\n%s", stderr)
	}
}

// TestServePrintsAnAddressToCall: `tokenwise serve -listen :PORT` (every
// interface) prints a URL a client on this machine can call — the
// loopback, as `gateway init` prints its call — and says it listens on
// every interface. Before, it printed http://[::]:PORT, the listener's
// own address, which is no host to call.
func TestServePrintsAnAddressToCall(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "default.yaml"), []byte("version: 1\nname: default\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npolicies: policies\nupstreams:\n  - {name: a, base_url: http://127.0.0.1:9/v1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, listen := range []string{":0", "0.0.0.0:0"} {
		stdout := &lineWriter{lines: make(chan string, 16)}
		stderr := &lineWriter{lines: make(chan string, 256)}
		code := make(chan int, 1)
		go func() { code <- serve([]string{"-config", cfg, "-listen", listen}, stdout, stderr) }()
		line := waitLine(t, stdout.lines, "listening on ")
		url := strings.TrimSpace(line[strings.Index(line, "http://"):])
		if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
			t.Errorf("-listen %s: printed %q, want http://127.0.0.1:PORT", listen, line)
		}
		if !strings.Contains(line, "every interface") {
			t.Errorf("-listen %s: %q does not say it listens on every interface", listen, line)
		}
		if resp, err := http.Get(url + "/healthz"); err != nil {
			t.Errorf("-listen %s: GET %s/healthz: %v", listen, url, err)
		} else {
			resp.Body.Close()
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-code:
			if c != 0 {
				t.Fatalf("-listen %s: exit %d after SIGTERM", listen, c)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop on SIGTERM")
		}
		http.DefaultClient.CloseIdleConnections()
	}
}
