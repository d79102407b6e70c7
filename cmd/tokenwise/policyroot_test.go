package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPolicyCheckOfABaseInASubdirectory: a policy directory whose team
// file extends bases/common.yaml, which extends ../default.yaml, loads
// (policy check DIR, the registry, serve). `policy check
// DIR/bases/common.yaml` — a pre-commit hook over the changed files —
// checks it within its policy directory, the nearest above it that holds
// a default.yaml. Before, it took the base's own directory for the policy
// directory and failed it with "extends path outside the policy
// directory".
func TestPolicyCheckOfABaseInASubdirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bases"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"default.yaml":      "version: 1\nname: default\nlimits: {max_calls: 5}\n",
		"bases/common.yaml": "version: 1\nname: common\nextends: ../default.yaml\ntools: {max_parallel: 2}\n",
		"ops.yaml":          "version: 1\nname: ops\nextends: bases/common.yaml\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, stderr := runCmd("policy", "check", dir); code != 0 {
		t.Fatalf("policy check of the directory: exit %d:\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runCmd("policy", "check", filepath.Join(dir, "bases", "common.yaml")); code != 0 {
		t.Errorf("policy check of a base the directory loads: exit %d:\n%s%s", code, out, stderr)
	}
}
