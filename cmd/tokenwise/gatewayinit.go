package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/policies"
)

// gatewayInit writes a gateway to start from in a directory (the current
// one by default): gateway.yaml — the listen address (loopback), one
// upstream whose key is read from an environment variable, and one
// virtual key of a team, stored as its SHA-256 — and policies/default.yaml,
// the embedded default policy. It prints the virtual key, which is shown
// only then, and the commands that serve and call the gateway (the call
// asks for -model). It overwrites nothing.
func gatewayInit(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("gateway init", flag.ContinueOnError)
	fset.SetOutput(stderr)
	baseURL := fset.String("base-url", "https://api.openai.com/v1", "the upstream's OpenAI-compatible base URL (Ollama: http://127.0.0.1:11434/v1)")
	keyEnv := fset.String("api-key-env", "OPENAI_API_KEY", "the name of the environment variable that holds the upstream's API key (\"\": an upstream that takes no key, Ollama's)")
	team := fset.String("team", "default", "the team of the virtual key (its policy: policies/<team>.yaml, else default.yaml)")
	listen := fset.String("listen", "127.0.0.1:8787", "the address the gateway listens on")
	model := fset.String("model", "gpt-4o-mini", "the model the printed call asks for (one the upstream serves: Ollama's llama3.2)")
	pos, err := parse(fset, args)
	if err != nil || len(pos) > 1 {
		fmt.Fprint(stderr, usage)
		return usageStatus(err)
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	// The model as a JSON string inside the printed call's single quotes.
	mj, _ := json.Marshal(*model)
	modelJSON := string(mj)
	if *model == "" || strings.ContainsRune(modelJSON, '\'') {
		fmt.Fprintf(stderr, "tokenwise gateway init: -model %q: name a model (without a single quote)\n", *model)
		return 2
	}
	// The name of a variable a shell exports, never the key itself (a
	// user who pasted the key would have it written into the file and
	// printed back); "" is an upstream that takes no key.
	if *keyEnv != "" && !envName.MatchString(*keyEnv) {
		fmt.Fprintln(stderr, "tokenwise gateway init: -api-key-env takes the name of the environment variable that holds the upstream's key (letters, digits and _, e.g. OPENAI_API_KEY), not the key; \"\" for an upstream that takes none")
		return 2
	}
	keyLine := "    api_key_env: " + strconv.Quote(*keyEnv) + " # or api_key_file: /run/secrets/key; never inline\n"
	if *keyEnv == "" {
		keyLine = "    # no key: a local server's (else api_key_env: OPENAI_API_KEY or api_key_file: /run/secrets/key; never inline)\n"
	}
	cfgPath := filepath.Join(dir, "gateway.yaml")
	polPath := filepath.Join(dir, "policies", "default.yaml")
	for _, p := range []string{cfgPath, polPath} {
		if _, err := os.Lstat(p); err == nil {
			fmt.Fprintf(stderr, "tokenwise gateway init: %s exists: nothing written (init overwrites nothing)\n", p)
			return 1
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(stderr, "tokenwise gateway init:", err)
			return 1
		}
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Fprintln(stderr, "tokenwise gateway init:", err)
		return 1
	}
	key := "tw-" + hex.EncodeToString(b[:])
	cfg := "# The gateway file of tokenwise serve; check it with: tokenwise gateway check gateway.yaml\n" +
		"# (its JSON Schema: tokenwise gateway schema).\n" +
		"listen: " + strconv.Quote(*listen) + " # loopback: only this machine can call it\n" +
		"policies: policies              # one file per team (default.yaml for the others), hot reloaded\n" +
		"upstreams:\n" +
		"  - name: upstream\n" +
		"    base_url: " + strconv.Quote(*baseURL) + "\n" +
		keyLine +
		"keys:                           # virtual keys: the SHA-256 of the bearer token (printf %s \"$KEY\" | sha256sum) -> team\n" +
		"  - name: " + strconv.Quote(*team+"-key") + "\n" +
		"    team: " + strconv.Quote(*team) + "\n" +
		"    sha256: " + gateway.HashKey(key) + "\n" +
		"# redis: {addr: 127.0.0.1:6379}   # share budgets, cache, rate limits and breakers between replicas\n" +
		"limits: {max_body: 4MiB, read_header_timeout: 10s, idle_timeout: 2m, shutdown_grace: 30s}\n"
	// The policy directory first (the file's check wants it), then the
	// file checked as gateway check would, before anything is written in
	// it: flags that make a broken file (a listen address that is none, a
	// base URL that is not http(s)) leave nothing behind.
	made, err := mkdirs(filepath.Dir(polPath))
	if err != nil {
		fmt.Fprintln(stderr, "tokenwise gateway init:", err)
		return 1
	}
	if _, err := gateway.ParseConfig([]byte(cfg), cfgPath); err != nil {
		for i := len(made) - 1; i >= 0; i-- {
			_ = os.Remove(made[i])
		}
		printErr(stderr, err)
		return 1
	}
	if len(made) == 0 {
		// An existing policy directory: it must load as the gateway will
		// load it, before anything is written in it.
		if _, err := policies.LoadDir(filepath.Dir(polPath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "tokenwise gateway init: the policy directory %s does not load; nothing written:\n", filepath.Dir(polPath))
			printErr(stderr, err)
			return 1
		}
	}
	if err := writeNew(polPath, policies.DefaultYAML(), 0o644); err != nil {
		fmt.Fprintln(stderr, "tokenwise gateway init:", err)
		return 1
	}
	// The file holds a key's hash, not a key: readable by its owner only
	// all the same, as a credential file.
	if err := writeNew(cfgPath, []byte(cfg), 0o600); err != nil {
		_ = os.Remove(polPath)
		fmt.Fprintln(stderr, "tokenwise gateway init:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", cfgPath, polPath)
	fmt.Fprintf(stdout, "virtual key of team %s (shown once; the file keeps only its SHA-256):\n  %s\n", *team, key)
	fmt.Fprintln(stdout, "serve it and call it:")
	if *keyEnv != "" {
		fmt.Fprintf(stdout, "  export %s=...\n", *keyEnv)
	}
	fmt.Fprintf(stdout, "  tokenwise serve -config %s\n", cfgPath)
	fmt.Fprintf(stdout, "  curl -s http://%s/v1/chat/completions -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"model\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}'\n", callAddr(*listen), key, modelJSON)
	return 0
}

// envName is the name of an environment variable a shell exports.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// callAddr is the host:port a client on this machine calls a gateway
// listening on listen at: an address of every interface (":8787",
// "0.0.0.0:8787", "[::]:8787") is called on the loopback of its family,
// since a URL needs a host; any other is called as it is written.
func callAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

// mkdirs makes dir and its missing parents, and returns those it made,
// outermost first.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	for _, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	return missing, nil
}
