package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const baseYAML = `version: 1
name: default
models:
  my-llama: {provider: local, input_per_1m: 0.05, output_per_1m: 0.10, context_window: 32768}
limits: {max_calls: 10, run_timeout: 5m}
timeouts: {call: 30s, first_token: 10s}
budget:
  request: {max_input_tokens: 10000}
  warn_at: [0.5, 0.8]
cache: {enabled: true, ttl: 1h, max_entries: 100}
routing:
  default: gpt-4o
  rules:
    - name: cheap
      when: {stage: tool_selection}
      model: gpt-4o-mini
    - name: llama
      when: {keywords: [status]}
      model: my-llama
fallback:
  models: [gpt-4o, gpt-4o-mini]
tools:
  per_tool:
    clean_logs: {side_effects: true, timeout: 60s}
    check_disk: {idempotent: true}
`

func TestExtendsMergeRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"default.yaml": baseYAML,
		"devops.yaml": `version: 1
extends: default.yaml
models:
  my-llama: {output_per_1m: 0.20}   # one field of a map entry
limits: {max_calls: 20}             # one field of a section
budget:
  warn_at: [0.9]                    # lists replace
routing:
  rules:                            # lists replace, in the team's order
    - name: all-strong
      model: gpt-4o
cache: null                         # null resets a section
tools:
  per_tool:
    check_disk: {timeout: 5s}       # merged with the base entry
`,
	})
	set, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := set.Teams["devops"]
	if p.Name != "devops" {
		t.Errorf("name = %q, want the file stem devops", p.Name)
	}
	ll := p.Models["my-llama"]
	if ll.InputPer1M != usd(t, "0.05") || ll.OutputPer1M != usd(t, "0.20") || ll.ContextWindow != 32768 || ll.Provider != "local" {
		t.Errorf("models.my-llama = %+v, want base merged with output 0.20", ll)
	}
	if p.Limits.MaxCalls != 20 || p.Limits.RunTimeout.Duration().String() != "5m0s" {
		t.Errorf("limits = %+v, want max_calls 20 and the base's run_timeout", p.Limits)
	}
	if p.Timeouts.Call.Duration().String() != "30s" {
		t.Errorf("timeouts not inherited: %+v", p.Timeouts)
	}
	if len(p.Budget.WarnAt) != 1 || p.Budget.WarnAt[0] != 0.9 {
		t.Errorf("warn_at = %v, want [0.9] (replaced)", p.Budget.WarnAt)
	}
	if p.Budget.Request.MaxInputTokens != 10000 {
		t.Errorf("budget.request not inherited")
	}
	if len(p.Routing.Rules) != 1 || p.Routing.Rules[0].Name != "all-strong" || p.Routing.Default != "gpt-4o" {
		t.Errorf("routing = %+v, want the team's one rule and the base default", p.Routing)
	}
	if p.Cache.Enabled {
		t.Errorf("cache: null should reset the section, got %+v", p.Cache)
	}
	if pt := p.Tools.PerTool; !pt["check_disk"].Idempotent || pt["check_disk"].Timeout.Duration().String() != "5s" || !pt["clean_logs"].SideEffects {
		t.Errorf("per_tool = %+v", pt)
	}
	if len(p.Fallback.Models) != 2 {
		t.Errorf("fallback not inherited")
	}
	// The base is untouched.
	b := set.Teams["default"]
	if b.Limits.MaxCalls != 10 || !b.Cache.Enabled || len(b.Routing.Rules) != 2 || b.Models["my-llama"].OutputPer1M != usd(t, "0.10") {
		t.Errorf("base changed by the merge: %+v", b)
	}
	// Provenance: each value names its file and line.
	origins := map[string]Origin{}
	for _, o := range p.Explain() {
		origins[o.Path] = o
	}
	for path, want := range map[string]string{
		"limits.max_calls":              "devops.yaml:5",
		"limits.run_timeout":            "default.yaml:5",
		"models.my-llama.output_per_1m": "devops.yaml:4",
		"models.my-llama.input_per_1m":  "default.yaml:4",
		"routing.rules[0].model":        "devops.yaml:11",
		"timeouts.call":                 "default.yaml:6",
	} {
		o, ok := origins[path]
		if !ok {
			t.Errorf("explain: no %s", path)
			continue
		}
		if got := filepath.Base(o.File) + ":" + itoa(o.Line); got != want {
			t.Errorf("explain %s = %s, want %s", path, got, want)
		}
	}
	if _, ok := origins["routing.rules[1].model"]; ok {
		t.Errorf("explain lists a base rule the team replaced")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func usd(t *testing.T, s string) USD {
	t.Helper()
	u, err := ParseUSD(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestExtendsValidatesTheMergeAndNamesTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"default.yaml": baseYAML,
		// Relies on my-llama from the base (valid only after the merge) and
		// breaks a field: the problem names the team file and line.
		"devops.yaml": "version: 1\nextends: default.yaml\nrouting:\n  default: my-llama\nbudget:\n  warn_at: [1.5]\n",
	})
	_, err := LoadDir(dir)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "devops.yaml:6:") || !strings.Contains(msg, "budget.warn_at[0]") {
		t.Errorf("error does not name devops.yaml:6 budget.warn_at[0]:\n%s", msg)
	}
	if strings.Contains(msg, "my-llama") {
		t.Errorf("my-llama is defined by the base, yet reported:\n%s", msg)
	}
}

func TestExtendsCycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml":    "version: 1\nextends: b.yaml\n",
		"b.yaml":    "version: 1\nextends: c.yaml\n",
		"c.yaml":    "version: 1\nextends: a.yaml\n",
		"self.yaml": "version: 1\nextends: ./self.yaml\n",
	})
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatal("no error for a cycle")
	}
	msg := err.Error()
	for _, want := range []string{"extends cycle", "a.yaml → b.yaml → c.yaml → a.yaml", "self.yaml → "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if _, err := LoadFileExtends(filepath.Join(dir, "a.yaml")); err == nil || !strings.Contains(err.Error(), "extends cycle") {
		t.Errorf("LoadFileExtends: %v", err)
	}
}

func TestExtendsEscape(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "teams")
	writeFiles(t, root, map[string]string{
		"outside.yaml":       "version: 1\n",
		"teams/up.yaml":      "version: 1\nextends: ../outside.yaml\n",
		"teams/abs.yaml":     "version: 1\nextends: " + filepath.Join(root, "outside.yaml") + "\n",
		"teams/sub/ok.yaml":  "version: 1\nname: base\n",
		"teams/inside.yaml":  "version: 1\nextends: sub/ok.yaml\n",
		"teams/missing.yaml": "version: 1\nextends: nope.yaml\n",
	})
	if err := os.Symlink(filepath.Join(root, "outside.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"vialink.yaml": "version: 1\nextends: link.yaml\n"})
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"up.yaml:2:1: extends: tokenwise/policies: extends path outside the policy directory: \"../outside.yaml\"",
		"abs.yaml:2:1: extends: tokenwise/policies: extends path outside the policy directory",
		"vialink.yaml:2:1: extends:",
		"missing.yaml:2:1: extends:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "inside.yaml") {
		t.Errorf("a base in a subdirectory is allowed:\n%s", msg)
	}
	if _, err := LoadFileExtends(filepath.Join(dir, "up.yaml")); !errors.Is(err, ErrInvalid) {
		t.Errorf("LoadFileExtends(up.yaml) = %v", err)
	}
}

func TestLoadDirDefaultTeam(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"default.yaml": baseYAML, "ml.yaml": "version: 1\nextends: default.yaml\nlimits: {max_calls: 3}\n", "README.md": "not a policy"})
	set, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); strings.Join(got, ",") != "default,ml" {
		t.Errorf("teams = %v", got)
	}
	if set.Policy("ml").Limits.MaxCalls != 3 || set.Policy("nobody").Limits.MaxCalls != 10 || set.Policy("").Name != "default" {
		t.Errorf("Policy lookup wrong")
	}
}

// TestExtendsRaisesAnInheritedTotalWithTheCallTimeout: a team file that
// raises timeouts.call above the timeouts.total it inherits (and writes
// no total of its own) gets the total raised to its call timeout, not a
// load error asking it to know about total: max(inherited total, call).
// A total the file writes itself stays its own, and one shorter than its
// call timeout is still an error; a call below the inherited total keeps
// the total.
func TestExtendsRaisesAnInheritedTotalWithTheCallTimeout(t *testing.T) {
	t.Parallel()
	const base = "version: 1\nname: default\ntimeouts: {call: 30s, total: 60s}\n"
	for _, c := range []struct {
		name, team string
		call, tot  Duration // the merged timeouts; tot 0: a load error naming timeouts.total
	}{
		{"call raised", "timeouts: {call: 90s}\n", Duration(90 * 1e9), Duration(90 * 1e9)},
		{"call lowered", "timeouts: {call: 10s}\n", Duration(10 * 1e9), Duration(60 * 1e9)},
		{"both raised", "timeouts: {call: 90s, total: 3m}\n", Duration(90 * 1e9), Duration(180 * 1e9)},
		{"total written below call", "timeouts: {call: 90s, total: 60s}\n", 0, 0},
		{"no total inherited", "timeouts: {call: 90s, total: null}\n", Duration(90 * 1e9), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"default.yaml": base, "ml.yaml": "version: 1\nextends: default.yaml\n" + c.team})
			set, err := LoadDir(dir)
			if c.call == 0 {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ml.yaml") || !strings.Contains(err.Error(), "timeouts.total") {
					t.Fatalf("err %v, want ml.yaml's timeouts.total refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := set.Policy("ml").Timeouts; got.Call != c.call || got.Total != c.tot {
				t.Errorf("timeouts call %v total %v, want %v and %v", got.Call, got.Total, c.call, c.tot)
			}
		})
	}
}
