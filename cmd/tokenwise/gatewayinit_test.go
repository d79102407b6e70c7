package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayInit: gateway init writes a gateway file and a policy
// directory (the embedded default policy) that gateway check passes, and
// prints a virtual key of its own, which the file keeps only as its
// SHA-256; the gateway of those files serves a chat completion to that
// key through the upstream named by -base-url and -api-key-env, and
// refuses another key. A second init overwrites nothing; serve without a
// gateway file says how to write one.
func TestGatewayInit(t *testing.T) {
	var upstreamAuth string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamAuth = r.Header.Get("Authorization")
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`)
	}))
	defer up.Close()
	dir := t.TempDir()
	code, stdout, stderr := runCmd("gateway", "init", dir, "-base-url", up.URL+"/v1", "-api-key-env", "TW_INIT_TEST_KEY", "-team", "devops")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	key := regexp.MustCompile(`tw-[0-9a-f]{32}`).FindString(stdout)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfgBytes, err := os.ReadFile(cfgPath)
	if err != nil || key == "" {
		t.Fatalf("no key printed (%v):\n%s", err, stdout)
	}
	if strings.Contains(string(cfgBytes), key) || !strings.Contains(string(cfgBytes), gateway.HashKey(key)) {
		t.Fatalf("the file holds the key, or not its hash:\n%s", cfgBytes)
	}
	if pol, err := os.ReadFile(filepath.Join(dir, "policies", "default.yaml")); err != nil || !strings.Contains(string(pol), "name: default") {
		t.Fatalf("policies/default.yaml: %v\n%s", err, pol)
	}
	if code, out, errOut := runCmd("gateway", "check", cfgPath); code != 0 {
		t.Fatalf("gateway check of what init wrote: exit %d\n%s%s", code, out, errOut)
	}

	t.Setenv("TW_INIT_TEST_KEY", "sk-upstream-test")
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()
	call := func(bearer string) (int, string) {
		req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := call(key); st != 200 || !strings.Contains(body, `"Hi!"`) || upstreamAuth != "Bearer sk-upstream-test" {
		t.Fatalf("the printed key: %d %s (upstream saw %q)", st, body, upstreamAuth)
	}
	if st, _ := call("tw-00000000000000000000000000000000"); st != 401 {
		t.Fatalf("another key: %d, want 401", st)
	}

	// Flags that would make a broken file write nothing.
	bad := filepath.Join(t.TempDir(), "gw")
	code, _, stderr = runCmd("gateway", "init", bad, "-listen", "nonsense", "-base-url", "ftp://x")
	if _, err := os.Stat(bad); code != 1 || err == nil || !strings.Contains(stderr, "listen") || !strings.Contains(stderr, "base_url") {
		t.Fatalf("init with a bad listen address and base URL: exit %d, written %v\n%s", code, err == nil, stderr)
	}
	code, _, stderr = runCmd("gateway", "init", dir)
	if after, _ := os.ReadFile(cfgPath); code != 1 || string(after) != string(cfgBytes) || !strings.Contains(stderr, "exists") {
		t.Fatalf("a second init: exit %d, file changed %v\n%s", code, string(after) != string(cfgBytes), stderr)
	}
	code, _, stderr = runCmd("serve", "-config", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(stderr, "tokenwise gateway init") {
		t.Fatalf("serve without a gateway file: exit %d\n%s", code, stderr)
	}
}

// TestGatewayInitIntoAnExistingPolicyDirectory: init into a directory
// whose policies/ exists writes default.yaml there when the directory
// loads (empty, or with team files), and writes nothing, with every
// problem listed and exit 1, when a file there does not load — the
// gateway it would set up could not start. Before, it wrote both files
// and said ok.
func TestGatewayInitIntoAnExistingPolicyDirectory(t *testing.T) {
	for _, c := range []struct {
		name, file, body string
		code             int
	}{
		{"empty", "", "", 0},
		{"a team", "ops.yaml", "version: 1\nname: ops\n", 0},
		{"broken", "ops.yaml", "version: 1\nname: ops\nbudget: {team: {max_usd: -3}}\n", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			pd := filepath.Join(dir, "policies")
			if err := os.Mkdir(pd, 0o755); err != nil {
				t.Fatal(err)
			}
			if c.file != "" {
				if err := os.WriteFile(filepath.Join(pd, c.file), []byte(c.body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runCmd("gateway", "init", dir, "-base-url", "https://api.openai.com/v1", "-team", "devops")
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			_, errCfg := os.Stat(filepath.Join(dir, "gateway.yaml"))
			_, errDef := os.Stat(filepath.Join(pd, "default.yaml"))
			if c.code == 0 && (errCfg != nil || errDef != nil) {
				t.Fatalf("files not written: %v %v", errCfg, errDef)
			}
			if c.code != 0 && (errCfg == nil || errDef == nil || !strings.Contains(stderr, "ops.yaml") || !strings.Contains(stderr, "max_usd")) {
				t.Fatalf("a broken directory: gateway.yaml %v, default.yaml %v, stderr:\n%s", errCfg, errDef, stderr)
			}
		})
	}
}

// TestGatewayInitPrintsACallableURL: the curl command gateway init prints
// reaches the gateway whatever -listen says. `-listen :8787` (every
// interface) once printed `curl -s http://:8787/v1/chat/completions`, a
// URL without a host that curl refuses (exit 3); an address of every
// interface is called on the loopback, as serve's clients on the machine
// call it, and an explicit host is kept.
func TestGatewayInitPrintsACallableURL(t *testing.T) {
	for listen, want := range map[string]string{
		":8787":          "http://127.0.0.1:8787/v1/chat/completions",
		"0.0.0.0:8787":   "http://127.0.0.1:8787/v1/chat/completions",
		"[::]:8787":      "http://[::1]:8787/v1/chat/completions",
		"127.0.0.1:9000": "http://127.0.0.1:9000/v1/chat/completions",
		"localhost:8787": "http://localhost:8787/v1/chat/completions",
		"10.1.2.3:8787":  "http://10.1.2.3:8787/v1/chat/completions",
	} {
		dir := t.TempDir()
		code, stdout, stderr := runCmd("gateway", "init", dir, "-listen", listen)
		if code != 0 {
			t.Fatalf("-listen %s: exit %d\n%s%s", listen, code, stdout, stderr)
		}
		got := regexp.MustCompile(`curl -s (\S+)`).FindStringSubmatch(stdout)
		if got == nil || got[1] != want {
			t.Errorf("-listen %s: printed %v, want curl -s %s", listen, got, want)
		}
	}
}

// TestGatewayInitPrintsACallOfItsUpstreamsModel: for an upstream that is
// not OpenAI's (-base-url of Ollama, vLLM), -model names the model the
// printed call asks for, and that call, sent as printed, is answered.
// Before, the printed call always asked for gpt-4o-mini, which such a
// server does not serve (Ollama answers 404 "model not found").
func TestGatewayInitPrintsACallOfItsUpstreamsModel(t *testing.T) {
	up := openaitest.NewServer(t)
	up.On(openaitest.Model("llama3.2")).Reply(openaitest.Text("Hi!"))
	up.Default(openaitest.Reply{Status: http.StatusNotFound, Error: &openaitest.APIError{Message: "model not found", Type: "api_error"}})
	dir := t.TempDir()
	code, stdout, stderr := runCmd("gateway", "init", dir, "-base-url", up.URL, "-api-key-env", "TW_INIT_MODEL_KEY", "-model", "llama3.2")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	key := regexp.MustCompile(`tw-[0-9a-f]{32}`).FindString(stdout)
	body := regexp.MustCompile(`-d '([^']+)'`).FindStringSubmatch(stdout)
	if key == "" || body == nil {
		t.Fatalf("no key or call printed:\n%s", stdout)
	}
	t.Setenv("TW_INIT_MODEL_KEY", "unused")
	cfg, err := gateway.LoadConfig(filepath.Join(dir, "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()
	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(body[1]))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"Hi!"`) {
		t.Fatalf("the printed call: %d %s", resp.StatusCode, b)
	}
	// Without -model the call is OpenAI's gpt-4o-mini, as before.
	_, stdout, _ = runCmd("gateway", "init", t.TempDir())
	if !strings.Contains(stdout, `{"model":"gpt-4o-mini",`) {
		t.Errorf("init without -model prints:\n%s", stdout)
	}
}

// TestGatewayInitRefusesAKeyAsTheVariablesName: -api-key-env takes the
// name of the variable that holds the key; given the key itself (a user
// who pasted it) or a name no shell can export, init says so and writes
// nothing, where it wrote the key into the gateway file and printed
// `export sk-...=...`.
func TestGatewayInitRefusesAKeyAsTheVariablesName(t *testing.T) {
	for _, env := range []string{"sk-proj-abcdef1234567890", "MY KEY", "1KEY", "KEY=x"} {
		dir := filepath.Join(t.TempDir(), "gw")
		code, stdout, stderr := runCmd("gateway", "init", "-api-key-env", env, dir)
		if code != 2 {
			t.Errorf("-api-key-env %q: exit %d, want 2\n%s%s", env, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "-api-key-env") || !strings.Contains(stderr, "name of the environment variable") {
			t.Errorf("-api-key-env %q: the message does not say what the flag takes:\n%s", env, stderr)
		}
		if strings.Contains(stdout+stderr, "sk-proj-abcdef1234567890") {
			t.Errorf("-api-key-env %q: the key is echoed:\n%s%s", env, stdout, stderr)
		}
		if _, err := os.Lstat(dir); err == nil {
			t.Errorf("-api-key-env %q: %s was written", env, dir)
		}
	}
}

// TestGatewayInitWithoutAKeyForALocalServer: -api-key-env "" makes a
// gateway of an upstream that takes no key (Ollama, a local vLLM): the
// file names no variable, the printed commands export none (where they
// printed `export =...`, which no shell runs), and the gateway serves the
// printed call without sending the upstream a key.
func TestGatewayInitWithoutAKeyForALocalServer(t *testing.T) {
	var upstreamAuth []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamAuth = append(upstreamAuth, r.Header.Get("Authorization"))
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"llama3.2","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`)
	}))
	defer up.Close()
	dir := t.TempDir()
	code, stdout, stderr := runCmd("gateway", "init", "-base-url", up.URL+"/v1", "-api-key-env", "", "-model", "llama3.2", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "export") {
		t.Errorf("init without a key prints an export:\n%s", stdout)
	}
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfgBytes, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^\s*api_key_env:`).Match(cfgBytes) {
		t.Errorf("the file names a variable:\n%s", cfgBytes)
	}
	if code, out, errOut := runCmd("gateway", "check", cfgPath); code != 0 {
		t.Fatalf("gateway check of what init wrote: exit %d\n%s%s", code, out, errOut)
	}
	key := regexp.MustCompile(`tw-[0-9a-f]{32}`).FindString(stdout)
	body := regexp.MustCompile(`-d '([^']+)'`).FindStringSubmatch(stdout)
	if key == "" || body == nil {
		t.Fatalf("no key or call printed:\n%s", stdout)
	}
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()
	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(body[1]))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"Hi!"`) {
		t.Fatalf("the printed call: %d %s", resp.StatusCode, b)
	}
	if len(upstreamAuth) != 1 || upstreamAuth[0] != "" {
		t.Errorf("the upstream got Authorization %q, want one call without a key", upstreamAuth)
	}
}
