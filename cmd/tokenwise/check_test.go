package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCheckOfADirectoryWithoutPoliciesFails: `policy check`
// pointed at a directory that holds no policy file — the parent of the
// policy directory (`policy check examples/`), an empty directory, a typo'd
// mount — exits 1 and says so, rather than "0 policies ok ()" and 0, which
// would let a CI gate that runs it pass while it checked nothing.
func TestPolicyCheckOfADirectoryWithoutPoliciesFails(t *testing.T) {
	empty := t.TempDir()
	noYAML := t.TempDir()
	if err := os.WriteFile(filepath.Join(noYAML, "README.txt"), []byte("policies live in ./policies\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{empty, noYAML, "../../examples"} {
		code, out, stderr := runCmd("policy", "check", dir)
		if code == 0 {
			t.Errorf("policy check %s: exit 0 with no policy file checked:\n%s%s", dir, out, stderr)
		}
		if want := "no policy file (*.yaml, *.yml, *.json) in " + dir; !strings.Contains(stderr, want) {
			t.Errorf("policy check %s: stderr lacks %q:\n%s", dir, want, stderr)
		}
	}
}
