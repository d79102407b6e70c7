package policies

import (
	"errors"
	"strings"
	"testing"
)

// TestAValueThatFailsToDecodeIsNotReportedMissing: a user who writes a
// limit in the wrong form (a thousands separator, a unit, a suffix, a list
// where a string goes, a misspelt key) gets that value's decoding error,
// and nothing else: the semantic checks that read the field (whose value
// is then zero) beside the one they report on do not add problems that
// tell the user to set what they did set ("period "daily" is set but no
// team limit", "no limit set: give rpm, tpm or max_concurrent", "budget.team
// sets neither max_usd nor max_tokens", "routing.rules[0] has no conditions
// and matches every call").
func TestAValueThatFailsToDecodeIsNotReportedMissing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, src, path string
	}{
		{"team max_usd with a thousands separator",
			"version: 1\nbudget:\n  team: {period: daily, max_usd: \"1,000\"}\n",
			"budget.team.max_usd"},
		{"team max_tokens with a suffix",
			"version: 1\nbudget:\n  team: {period: daily, max_tokens: 1M}\n",
			"budget.team.max_tokens"},
		{"rpm with a unit",
			"version: 1\nrate_limits:\n  models:\n    gpt-4o: {rpm: 500/min}\n",
			"rate_limits.models.gpt-4o.rpm"},
		{"team max_usd in words, read by a budget_below rule",
			"version: 1\nbudget:\n  team: {period: daily, max_usd: 5 dollars}\nrouting:\n  rules:\n    - model: gpt-4o-mini\n      when: {budget_below: {scope: team, fraction: 0.2}}\n",
			"budget.team.max_usd"},
		{"a stage given as a list",
			"version: 1\nrouting:\n  rules:\n    - model: gpt-4o\n      when: {stage: [final_answer]}\n    - model: gpt-4o-mini\n      when: {stage: tool_selection}\n",
			"routing.rules[0].when.stage"},
		{"a misspelt condition key",
			"version: 1\nrouting:\n  rules:\n    - model: gpt-4o\n      when: {stages: final_answer}\n    - model: gpt-4o-mini\n      when: {stage: tool_selection}\n",
			"routing.rules[0].when.stages"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(c.src), "team.yaml")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("LoadBytes = %v, want a *ValidationError", err)
			}
			var lines []string
			for _, p := range ve.Problems {
				lines = append(lines, p.String())
			}
			if len(ve.Problems) != 1 || ve.Problems[0].Path != c.path {
				t.Fatalf("want exactly one problem, at %s; got %d:\n%s", c.path, len(ve.Problems), strings.Join(lines, "\n"))
			}
		})
	}
}

// TestEveryDurationErrorSaysTheForm: every invalid duration gets the hint
// `want e.g. "30s", "5m", "1h30m", "7d"`, a value with a 'd' in it ("10
// seconds", "1 day", "2 days"), which the day-segment scan reads first,
// included.
func TestEveryDurationErrorSaysTheForm(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"1 hour", "5 minutes", "10 seconds", "1 day", "2 days", "30 sec", "1 second"} {
		_, err := ParseDuration(s)
		if err == nil {
			t.Errorf("ParseDuration(%q) = nil error", s)
			continue
		}
		if !strings.Contains(err.Error(), "want e.g.") {
			t.Errorf("ParseDuration(%q) = %v: no hint of the form wanted", s, err)
		}
	}
}

// TestTabIndentationIsNamed: a policy indented with a tab (an editor
// that inserts tabs) fails with a message that says "tab" and that YAML
// indents with spaces, not the parser's "found character '	' that cannot
// start any token", whose quoted raw tab looks empty on a terminal.
func TestTabIndentationIsNamed(t *testing.T) {
	t.Parallel()
	_, err := LoadBytes([]byte("version: 1\nname: t\nbudget:\n\trun: {max_usd: 1}\n"), "team.yaml")
	if err == nil {
		t.Fatal("a tab-indented policy loaded")
	}
	msg := err.Error()
	if strings.Contains(msg, "\t") || !strings.Contains(strings.ToLower(msg), "tab") {
		t.Errorf("the message neither names the tab nor shows it visibly: %q", msg)
	}
}

// TestAStrTaggedScalarIsReportedAsTheStringItIs: "!!str 5" is the string
// "5"; where a number or a boolean goes, the problem says so, not that an
// integer was given where an integer is expected.
func TestAStrTaggedScalarIsReportedAsTheStringItIs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ src, want string }{
		{"version: 1\nlimits: {max_calls: !!str 5}\n", `p.yaml:2:21: limits.max_calls: expected an integer, got string "5" (tagged !!str)`},
		{"version: 1\nbudget: {warn_at: [!!str 0.5]}\n", `budget.warn_at[0]: expected a number, got string "0.5" (tagged !!str)`},
		{"version: 1\ncache: {enabled: !!str true}\n", `cache.enabled: expected true or false, got string "true" (tagged !!str)`},
	} {
		_, err := LoadBytes([]byte(c.src), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.src, err, c.want)
		}
	}
}
