package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/policies"
)

// A gateway file with a mistake in every field is refused with every
// problem at once, each at its line with its field path, and a key
// written inline is never echoed.
func TestConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pols"), 0o755); err != nil {
		t.Fatal(err)
	}
	const inline = "sk-inline-secret-0123456789abcdef0123"
	file := `listen: localhost
policie: pols
upstreams:
  - name: a
    base_url: ftp://example.com
    api_key: ` + inline + `
  - name: a
    base_url: https://example.com/v1
    api_key_env: X
    api_key_file: missing.txt
    organization: "org-a\nOpenAI-Project: proj_x"
keys:
  - {name: k, team: devops, sha256: abc}
  - {name: k, sha256: ` + gateway.HashKey("x") + `}
limits: {idle_timeout: 5, max_body: 1MB, read_timeout: -1s, write_timeout: -2s}
`
	_, err := gateway.ParseConfig([]byte(file), filepath.Join(dir, "gateway.yaml"))
	if !errors.Is(err, gateway.ErrInvalidConfig) || !errors.Is(err, policies.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	var ve *policies.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("not a ValidationError: %T", err)
	}
	want := map[string]int{ // field → line
		"listen": 1, "policie": 2, "policies": 1, "upstreams[0].base_url": 5, "upstreams[0].api_key": 6,
		"upstreams[1].name": 7, "upstreams[1].api_key_file": 10, "upstreams[1].organization": 11, "keys[0].sha256": 13, "keys[1].name": 14,
		"keys[1].team": 14, "limits.idle_timeout": 15, "limits.read_timeout": 15, "limits.write_timeout": 15,
	}
	got := map[string]int{}
	for _, p := range ve.Problems {
		got[p.Path] = p.Line
		if !strings.HasSuffix(p.File, "gateway.yaml") {
			t.Errorf("problem without its file: %v", p)
		}
	}
	for path, line := range want {
		if l, ok := got[path]; !ok || l != line {
			t.Errorf("%s: line %d (found %v), want line %d\n%v", path, l, ok, line, err)
		}
	}
	if strings.Contains(err.Error(), inline) {
		t.Errorf("the message echoes the inline key:\n%v", err)
	}
	// The example of the README passes.
	if _, err := gateway.LoadConfig(filepath.Join("testdata", "gateway.yaml")); err != nil {
		t.Fatalf("testdata/gateway.yaml: %v", err)
	}
}

// FuzzParseConfig: whatever the bytes, ParseConfig returns, without
// panicking, either a gateway file or a *policies.ValidationError
// (matching ErrInvalidConfig) whose every problem names the file and a
// position, and never echoes an inline key whole.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "gateway.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("listen: 127.0.0.1:0\npolicies: pols\nupstreams:\n  - {name: a, base_url: http://x, api_key: sk-inline-0123456789abcdef}\nkeys: [{name: k, team: t, sha256: " + gateway.HashKey("x") + "}]\n"))
	f.Add([]byte("limits: {max_body: 1MB, idle_timeout: 5, run_idle: -1h, max_runs: -3}\nredis: {addr: ':'}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const name = "/fuzz/gateway.yaml"
		c, err := gateway.ParseConfig(b, name)
		if err == nil {
			if c == nil {
				t.Fatal("nil config and nil error")
			}
			return
		}
		var ve *policies.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, gateway.ErrInvalidConfig) || len(ve.Problems) == 0 {
			t.Fatalf("err = %T %v, want a *policies.ValidationError with problems", err, err)
		}
		for _, pr := range ve.Problems {
			if pr.File != name || pr.Line < 1 || pr.Column < 1 {
				t.Fatalf("problem %q without its file and position", pr)
			}
		}
		if strings.Contains(err.Error(), "sk-inline-0123456789abcdef") {
			t.Fatalf("the error echoes an inline key: %v", err)
		}
	})
}

// TestConfigChecksTheListenPort: `listen: 127.0.0.1:80x` (or a port past
// 65535) is a host:port to net.SplitHostPort, so `gateway check` said ok;
// `tokenwise serve` then failed at its listen ("unknown port"). The port is
// now checked as net.Listen reads it, at the line of listen; a port by
// number or service name, and 0 or none (any free port), still load.
func TestConfigChecksTheListenPort(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pols"), 0o755); err != nil {
		t.Fatal(err)
	}
	load := func(listen string) error {
		_, err := gateway.ParseConfig([]byte("listen: \""+listen+"\"\npolicies: pols\n"+
			"upstreams:\n  - {name: a, base_url: \"http://127.0.0.1:9/v1\", api_key_env: HOME}\n"), filepath.Join(dir, "gateway.yaml"))
		return err
	}
	for _, bad := range []string{"127.0.0.1:80x", "127.0.0.1:70000", "127.0.0.1:-1"} {
		err := load(bad)
		var ve *policies.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Path != "listen" || ve.Problems[0].Line != 1 {
			t.Errorf("listen %q: err = %v, want one problem at listen, line 1", bad, err)
		}
	}
	for _, good := range []string{"127.0.0.1:0", "127.0.0.1:", "127.0.0.1:8787", ":8787", "[::1]:65535", "localhost:http"} {
		if err := load(good); err != nil {
			t.Errorf("listen %q: %v", good, err)
		}
	}
}

// TestConfigRefusesOpenAIsBaseURLWithoutV1: an upstream of OpenAI's API
// written without its /v1 (https://api.openai.com, as a browser shows the
// host) sent every call to https://api.openai.com/chat/completions, which
// OpenAI answers 404: each call failed only once served. The file is
// refused at its line, saying what to write; OpenAI's /v1, and other
// servers' paths, load.
func TestConfigRefusesOpenAIsBaseURLWithoutV1(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pols"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		base string
		ok   bool
	}{
		{"https://api.openai.com", false},
		{"https://api.openai.com/", false},
		{"https://API.OpenAI.com:443/chat", false},
		{"https://api.openai.com/v1", true},
		{"https://api.openai.com/v1/", true},
		{"http://localhost:11434/v1", true},
		{"https://api.groq.com/openai/v1", true},
	} {
		file := "policies: pols\nupstreams:\n  - name: a\n    base_url: " + tc.base + "\n"
		_, err := gateway.ParseConfig([]byte(file), filepath.Join(dir, "gateway.yaml"))
		if tc.ok {
			if err != nil {
				t.Errorf("base_url %s: %v", tc.base, err)
			}
			continue
		}
		var ve *policies.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Path != "upstreams[0].base_url" || ve.Problems[0].Line != 4 ||
			!strings.Contains(err.Error(), "https://api.openai.com/v1") {
			t.Errorf("base_url %s: err %v, want a problem of upstreams[0].base_url at line 4 naming https://api.openai.com/v1", tc.base, err)
		}
	}
}

// TestServeWarnsOfAnUnreachableRedis: a gateway whose redis does not
// answer when it starts says so at once, at WARN with the address, and
// serves (its /readyz answers 503 until Redis does). Before, it logged
// "serving" with shared_state true and nothing else: the first sign was
// calls failing or not shared.
func TestServeWarnsOfAnUnreachableRedis(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pols"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pols", "default.yaml"), []byte("version: 1\nname: default\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on: a connection is refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	cfg, err := gateway.ParseConfig([]byte("policies: pols\nredis: {addr: \""+dead+"\"}\nupstreams:\n  - {name: a, base_url: http://127.0.0.1:9/v1}\n"), filepath.Join(dir, "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	logs := lockedBuffer{wrote: make(chan struct{}, 1)}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with Redis down, want 503", resp.StatusCode)
	}
	// The warning is logged beside serving (a silent Redis must not delay
	// it): wait for it (a gateway that never warns hangs the test until
	// go test's -timeout, which names this test).
	warned := func() bool {
		for line := range strings.Lines(logs.String()) {
			var rec struct{ Level, Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && strings.Contains(rec.Msg, "redis") && rec.Addr == dead {
				return true
			}
		}
		return false
	}
	for !warned() {
		<-logs.wrote
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
}

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
// Each write is signalled on wrote (dropped when a signal waits).
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConfigRefusesAKeyAsApiKeyEnv: api_key_env names a variable; a key
// written in its place (a user who pasted it: `api_key_env: sk-proj-...`)
// is the key inline, refused at its line like api_key, and never quoted
// back. Before, gateway check passed such a file and serve printed the
// key in "environment variable sk-proj-... is not set".
func TestConfigRefusesAKeyAsApiKeyEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pols"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env string
		ok  bool
	}{
		{"OPENAI_API_KEY", true},
		{"_groq_key2", true},
		{"sk-proj-abcdef1234567890", false},
		{"MY KEY", false},
		{"1KEY", false},
		{"KEY=sk-abcdef", false},
	} {
		file := "policies: pols\nupstreams:\n  - name: a\n    base_url: https://api.openai.com/v1\n    api_key_env: \"" + tc.env + "\"\n"
		_, err := gateway.ParseConfig([]byte(file), filepath.Join(dir, "gateway.yaml"))
		if tc.ok {
			if err != nil {
				t.Errorf("api_key_env %q: %v", tc.env, err)
			}
			continue
		}
		var ve *policies.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Path != "upstreams[0].api_key_env" || ve.Problems[0].Line != 5 ||
			!strings.Contains(err.Error(), "name of an environment variable") {
			t.Errorf("api_key_env %q: err %v, want a problem of upstreams[0].api_key_env at line 5 saying it takes a variable's name", tc.env, err)
		}
		if err != nil && strings.Contains(err.Error(), "abcdef") {
			t.Errorf("api_key_env %q: the message quotes the key: %v", tc.env, err)
		}
	}
}
