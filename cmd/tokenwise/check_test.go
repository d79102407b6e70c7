package main

import (
	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
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

// TestChecksReadTheLearnedWeights: a policy whose routing.learned.weights
// names a file that is missing, or not a weights file, cannot be served:
// `tokenwise serve` (llmwrap.Build) refuses the team. `policy check` and
// `gateway check` said "ok" and exit 0 for it, so that a CI gate passed a
// directory the gateway then refused to start on. Each now reports the
// weights file's problem at the line that names it, exit 1; a directory
// whose weights file is valid still passes.
func TestChecksReadTheLearnedWeights(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol := func(name, weights string) string {
		return "version: 1\nname: " + name + "\nrouting:\n  default: gpt-4o\n  learned: {weights: " + weights + ", weak: gpt-4o-mini}\n"
	}
	m := &learn.Model{Bits: 8, Ngrams: 2, Scale: 0.01, Threshold: 0.5, Target: 0.9, Label: learn.LabelOnlyStrong, W: make([]int8, 1<<8)}
	if err := m.Save(filepath.Join(dir, "good.bin")); err != nil {
		t.Fatal(err)
	}
	write("junk.bin", "not a weights file\n")
	write("good.yaml", pol("good", "good.bin"))
	write("missing.yaml", pol("missing", "router.bin"))
	write("junk.yaml", pol("junk", "junk.bin"))

	code, out, stderr := runCmd("policy", "check", dir)
	if code != 1 {
		t.Errorf("policy check of a directory with unreadable weights: exit %d, want 1:\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"missing.yaml:5:", "junk.yaml:5:"} {
		if !strings.Contains(stderr, want) || !strings.Contains(stderr, "routing.learned.weights") {
			t.Errorf("policy check: no problem at %s routing.learned.weights:\n%s%s", want, out, stderr)
		}
	}
	for _, f := range []string{"missing.yaml", "junk.yaml"} {
		if code, out, stderr := runCmd("policy", "check", filepath.Join(dir, f)); code != 1 || !strings.Contains(stderr, "routing.learned.weights") {
			t.Errorf("policy check %s: exit %d, want 1 and the weights' problem:\n%s%s", f, code, out, stderr)
		}
	}
	if code, out, stderr := runCmd("policy", "check", filepath.Join(dir, "good.yaml")); code != 0 {
		t.Errorf("policy check of a policy with valid weights: exit %d:\n%s%s", code, out, stderr)
	}

	gw := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(gw, []byte("policies: "+dir+"\n"+
		"upstreams:\n  - name: openai\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n"+
		"keys:\n  - {name: k, team: good, sha256: e144a4d0b83439586bb88f018503f9a99016eb1ef451299f3d0138f22ab262f0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCmd("gateway", "check", gw); code != 1 || !strings.Contains(stderr, "missing.yaml:5:") {
		t.Errorf("gateway check of a policy directory with unreadable weights: exit %d, want 1:\n%s%s", code, out, stderr)
	}
	if err := os.Remove(filepath.Join(dir, "missing.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "junk.yaml")); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCmd("policy", "check", dir); code != 0 {
		t.Errorf("policy check with valid weights: exit %d:\n%s%s", code, out, stderr)
	}
}

// TestGatewayCheckWarnsOfABaseURLWithoutAPath: an upstream's base_url
// written without a path (http://localhost:8000 for vLLM, whose API is
// under /v1) passed the check, and every call then got the server's 404.
// The check says so at the line, exit 0 (a server may serve the API at its
// root), and serve logs it; a base_url with its path passes in silence.
func TestGatewayCheckWarnsOfABaseURLWithoutAPath(t *testing.T) {
	abs, err := filepath.Abs("../../examples/policies")
	if err != nil {
		t.Fatal(err)
	}
	check := func(base string) (int, string, string) {
		dir := t.TempDir()
		cfg := "policies: " + abs + "\n" +
			"upstreams:\n  - name: openai\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n" +
			"  - name: vllm\n    base_url: " + base + "\n    models: [llama-3.1-8b]\n"
		path := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return runCmd("gateway", "check", path)
	}
	for _, base := range []string{"http://localhost:8000", "http://localhost:8000/"} {
		code, out, stderr := check(base)
		if code != 0 || !strings.Contains(out, "warning: ") || !strings.Contains(out, "gateway.yaml:7:5: upstreams[1].base_url: http://localhost:8000 has no path") ||
			!strings.Contains(out, "/v1") || !strings.Contains(out, ": ok") {
			t.Errorf("gateway check of base_url %s: exit %d, want 0 with a warning at its line naming /v1:\n%s%s", base, code, out, stderr)
		}
	}
	for _, base := range []string{"http://localhost:8000/v1", "https://openrouter.ai/api/v1"} {
		code, out, stderr := check(base)
		if code != 0 || strings.Contains(out+stderr, "warning") {
			t.Errorf("gateway check of base_url %s: exit %d:\n%s%s", base, code, out, stderr)
		}
	}
}
