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

// TestGatewayCheckFlagsAKeyOfATeamWithoutAPolicy: a virtual key whose
// team is a typo of a team that has a policy file ("devps" beside
// devops.yaml) would be served under the default policy, so that the
// devops team's $500 monthly budget silently would not apply to it. README
// promises that gateway check reports "every problem with file:line:col and
// field": the key's team is an error (keys[0].team, "did you mean
// "devops"?"), exit 1. A team that is nobody's typo is a warning that the
// key gets the default policy, exit 0.
func TestGatewayCheckFlagsAKeyOfATeamWithoutAPolicy(t *testing.T) {
	abs, err := filepath.Abs("../../examples/policies")
	if err != nil {
		t.Fatal(err)
	}
	check := func(team string) (int, string, string) {
		dir := t.TempDir()
		cfg := "policies: " + abs + "\n" +
			"upstreams:\n  - name: openai\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n" +
			"keys:\n  - {name: k, team: " + team + ", sha256: e144a4d0b83439586bb88f018503f9a99016eb1ef451299f3d0138f22ab262f0}\n"
		path := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return runCmd("gateway", "check", path)
	}
	code, out, stderr := check("devps")
	all := out + stderr
	if !strings.Contains(all, "keys[0].team") || !strings.Contains(all, `"devops"`) {
		t.Errorf("gateway check (exit %d) says nothing of team \"devps\", which has no policy file (devops has one):\n%s", code, all)
	}
	if code != 1 || !strings.Contains(stderr, "gateway.yaml:7:") {
		t.Errorf("gateway check of a key of team devps: exit %d, want 1 and the problem at its line:\n%s", code, all)
	}
	code, out, stderr = check("research")
	if code != 0 || !strings.Contains(out, "warning: ") || !strings.Contains(out, `team "research" has no policy file`) ||
		!strings.Contains(out, "default policy") || !strings.Contains(out, ": ok") {
		t.Errorf("gateway check of a key of team research: exit %d, want 0 with a warning:\n%s%s", code, out, stderr)
	}
	code, out, stderr = check("devops")
	if code != 0 || strings.Contains(out+stderr, "warning") {
		t.Errorf("gateway check of a key of team devops: exit %d:\n%s%s", code, out, stderr)
	}
}
