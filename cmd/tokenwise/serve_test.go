package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
