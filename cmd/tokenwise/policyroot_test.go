package main

import (
	"os"
	"path/filepath"
	"strings"
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

// TestExplainOfAFileNamesItsOriginsAsGiven: `policy explain FILE` and
// `policy check FILE` name the files a value comes from as the user named
// the file — relative to the working directory when it was given so —,
// as `policy explain DIR` does, the base it extends and a base found in a
// directory above included. Before, every origin of a file was printed as
// an absolute path (/home/…/examples/policies/payments.yaml:5).
func TestExplainOfAFileNamesItsOriginsAsGiven(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pol", "bases"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"pol/default.yaml":      "version: 1\nname: default\nlimits: {max_calls: 5}\n",
		"pol/bases/common.yaml": "version: 1\nname: common\nextends: ../default.yaml\ntools: {max_parallel: 2}\n",
		"pol/ops.yaml":          "version: 1\nname: ops\nextends: default.yaml\ntools: {max_parallel: 3}\n",
		"pol/bad.yaml":          "version: 1\nname: bad\nextends: default.yaml\ncache: {enabeld: true}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		arg  string
		want []string // origins the output must hold
	}{
		{"pol/ops.yaml", []string{"# pol/ops.yaml:4", "# pol/default.yaml:3"}},
		{"./pol/ops.yaml", []string{"# pol/ops.yaml:4", "# pol/default.yaml:3"}},
		{"pol/bases/common.yaml", []string{"# pol/bases/common.yaml:4", "# pol/default.yaml:3"}},
	} {
		code, out, stderr := runCmd("policy", "explain", tc.arg)
		if code != 0 {
			t.Fatalf("policy explain %s: exit %d\n%s%s", tc.arg, code, out, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("policy explain %s: no %q in\n%s", tc.arg, w, out)
			}
		}
		if strings.Contains(out, dir) {
			t.Errorf("policy explain %s names an absolute path:\n%s", tc.arg, out)
		}
	}
	t.Chdir(filepath.Join(dir, "pol", "bases"))
	// (The policy directory is the one above: its files are named from it.)
	code, out, _ := runCmd("policy", "explain", "common.yaml")
	if code != 0 || !strings.Contains(out, "# ../bases/common.yaml:4") || !strings.Contains(out, "# ../default.yaml:3") || strings.Contains(out, dir) {
		t.Errorf("policy explain common.yaml from its directory: exit %d\n%s", code, out)
	}
	t.Chdir(dir)
	code, out, stderr := runCmd("policy", "check", "pol/bad.yaml")
	if code == 0 || !strings.Contains(out+stderr, "pol/bad.yaml:4") || strings.Contains(out+stderr, dir) {
		t.Errorf("policy check pol/bad.yaml: exit %d, want its problem at pol/bad.yaml:4 without an absolute path:\n%s%s", code, out, stderr)
	}
}
