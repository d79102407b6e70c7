package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// stripSource returns a copy of p without its source positions, for
// comparing policies by value.
func stripSource(p *Policy) Policy {
	c := *p
	c.src = nil
	return c
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	return ve.Problems
}

func TestDefault(t *testing.T) {
	t.Parallel()
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"version", p.Version, 1},
		{"routing.default", p.Routing.Default, ""}, // calls no rule matches stay on the caller's model
		{"rule stage", p.Routing.Rules[0].When.Stage, StageToolSelection},
		{"rule model", p.Routing.Rules[0].Model, "gpt-4o-mini"},
		{"limits.max_calls", p.Limits.MaxCalls, 10},
		{"limits.run_timeout", p.Limits.RunTimeout.Duration(), 15 * time.Minute},
		{"timeouts.call", p.Timeouts.Call.Duration(), 30 * time.Second},
		{"budget.request.max_input_tokens", p.Budget.Request.MaxInputTokens, int64(10000)},
		{"cache.enabled", p.Cache.Enabled, true},
		{"cache.ttl", p.Cache.TTL.Duration(), time.Hour},
		{"fallback.models", p.Fallback.Models, []string{"gpt-4o-mini"}}, // to the cheaper model only
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Each call returns a fresh copy.
	p.Routing.Rules[0].Model = "changed"
	if Default().Routing.Rules[0].Model != "gpt-4o-mini" {
		t.Error("Default() shares state between calls")
	}
}

func TestLoadFullExample(t *testing.T) {
	t.Parallel()
	p, err := LoadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", p.Name, "devops"},
		{"extends", p.Extends, "default.yaml"},
		{"cache streams", p.Cache.CachesStreams(), false},
		{"models.gpt-4o.input_per_1m", p.Models["gpt-4o"].InputPer1M, MicroUSD(2_400_000)},
		{"models.my-llama.input_per_1m", p.Models["my-llama"].InputPer1M, MicroUSD(50_000)},
		{"models.my-llama.output_per_1m", p.Models["my-llama"].OutputPer1M, MicroUSD(100_000)},
		{"models.my-llama.context_window", p.Models["my-llama"].ContextWindow, int64(32768)},
		{"timeouts.first_token", p.Timeouts.FirstToken.Duration(), 10 * time.Second},
		{"timeouts.idle", p.Timeouts.Idle.Duration(), 15 * time.Second},
		{"budget.request.max_output_tokens", p.Budget.Request.MaxOutputTokens, int64(2000)},
		{"budget.run.max_usd", p.Budget.Run.MaxUSD, Dollar},
		{"budget.run.max_calls", p.Budget.Run.MaxCalls, 20},
		{"budget.team.period", p.Budget.Team.Period, PeriodRolling},
		{"budget.team.window", p.Budget.Team.Window.Duration(), 24 * time.Hour},
		{"budget.team.max_usd", p.Budget.Team.MaxUSD, 100 * Dollar},
		{"budget.on_exceed", p.Budget.OnExceed, OnExceedDowngrade},
		{"budget.warn_at", p.Budget.WarnAt, []float64{0.5, 0.8, 1.0}},
		{"budget.store.kind", p.Budget.Store.Kind, StoreRedis},
		{"budget.store.reservation_ttl", p.Budget.Store.ReservationTTL.Duration(), 2 * time.Minute},
		{"budget.store.on_unavailable", p.Budget.Store.OnUnavailable, UnavailableLocal},
		{"budget.store.local_fraction", p.Budget.Store.LocalFraction, 0.1},
		{"cache.max_bytes", p.Cache.MaxBytes, 64 * MiB},
		{"cache.deterministic_only", p.Cache.DeterministicOnly, true},
		{"cache.scope", p.Cache.Scope, CacheScopeTeam},
		{"rules", len(p.Routing.Rules), 3},
		{"rules[0].keywords", p.Routing.Rules[0].When.Keywords, []string{"check", "status"}},
		{"rules[0].keywords_in", p.Routing.Rules[0].When.KeywordsIn, KeywordsInLastUser},
		{"rules[1].regex", p.Routing.Rules[1].When.Regex, "(?i)analy[sz]e"},
		{"rules[1].max_input_tokens", p.Routing.Rules[1].When.MaxInputTokens, int64(50000)},
		{"rules[1].has_tools", *p.Routing.Rules[1].When.HasTools, false},
		{"rules[1].team", p.Routing.Rules[1].When.Team, "devops"},
		{"rules[2].budget_below", *p.Routing.Rules[2].When.BudgetBelow, BudgetBelow{Scope: BudgetScopeRun, Fraction: 0.2}},
		{"regenerate_final", p.Routing.RegenerateFinal, RegenerateFinal{Enabled: true, Model: "gpt-4o"}},
		{"cascade.checks", p.Routing.Cascade.Checks, []CascadeCheck{CheckValidToolJSON, CheckNonEmpty, CheckFinishReason}},
		{"larger_window", p.Routing.LargerWindow, []string{"gpt-4.1"}},
		{"fallback.on", len(p.Fallback.On), 6},
		{"fallback.retry", p.Fallback.Retry, Retry{MaxAttempts: 3, BaseDelay: Duration(200 * time.Millisecond), MaxDelay: Duration(10 * time.Second), MaxTotalWait: Duration(30 * time.Second)}},
		{"fallback.breaker.window", p.Fallback.Breaker.Window.Duration(), time.Minute},
		{"fallback.hedge.percentile", p.Fallback.Hedge.Percentile, 95.0},
		{"tools.artifacts.max_bytes", p.Tools.Artifacts.MaxBytes, GiB},
		{"tools.artifacts.threshold_bytes", p.Tools.Artifacts.ThresholdBytes, ByteSize(8192)},
		{"tools.per_tool.clean_logs", p.Tools.PerTool["clean_logs"], ToolSpec{SideEffects: true, Timeout: Duration(time.Minute)}},
		{"tools.cache_ttl", p.Tools.CacheTTL.Duration(), 10 * time.Minute},
		{"context.strategies", p.Context.Strategies, []ContextStrategy{StrategyOffload, StrategyDrop, StrategySummarise}},
		{"context.offload_over_bytes", p.Context.OffloadOverBytes, 2 * KiB},
		{"context.window_fraction", p.Context.WindowFraction, 0.8},
		{"observability.log_level", p.Observability.LogLevel, LogInfo},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// Writing the policy back as YAML or JSON and loading it again yields
	// the same policy.
	for _, enc := range []struct {
		name    string
		marshal func(any) ([]byte, error)
	}{
		{"yaml", yaml.Marshal},
		{"json", func(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }},
	} {
		t.Run("roundtrip-"+enc.name, func(t *testing.T) {
			b, err := enc.marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			q, err := LoadBytes(b, "roundtrip."+enc.name)
			if err != nil {
				t.Fatalf("reload: %v\n%s", err, b)
			}
			if got, want := stripSource(q), stripSource(p); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the policy:\n got %+v\nwant %+v\n%s", got, want, b)
			}
		})
	}
}

// TestLoadReportsEveryProblemWithLine is the acceptance test: three
// different mistakes come back in one error, each with its line.
func TestLoadReportsEveryProblemWithLine(t *testing.T) {
	t.Parallel()
	const src = `version: 1
name: devops
routing:
  default: gpt-4o
  rulez: []
  rules:
    - name: analyse
      when:
        regex: "(?i)analy[sz"
      model: gpt-4o
    - name: local
      when: {stage: final_answer}
      model: my-llama
`
	p, err := LoadBytes([]byte(src), "devops.yaml")
	if err == nil {
		t.Fatalf("LoadBytes succeeded: %+v", p)
	}
	if p != nil {
		t.Errorf("LoadBytes returned a policy with an error")
	}
	want := []Problem{
		{Path: "routing.rulez", File: "devops.yaml", Line: 5, Column: 3, Msg: `unknown field "rulez" (did you mean "rules"?)`},
		{Path: "routing.rules[0].when.regex", File: "devops.yaml", Line: 9, Column: 9, Msg: "invalid regex: missing closing ]: `[sz`"},
		{Path: "routing.rules[1].model", File: "devops.yaml", Line: 13, Column: 7, Msg: `unknown model "my-llama": not in the price catalog nor in models (declare it under models: with its input_per_1m and output_per_1m, or free: true for a local model)`},
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %#v\nwant %#v", got, want)
	}
	wantText := "devops.yaml:5:3: routing.rulez: unknown field \"rulez\" (did you mean \"rules\"?)\n" +
		"devops.yaml:9:9: routing.rules[0].when.regex: invalid regex: missing closing ]: `[sz`\n" +
		"devops.yaml:13:7: routing.rules[1].model: unknown model \"my-llama\": not in the price catalog nor in models (declare it under models: with its input_per_1m and output_per_1m, or free: true for a local model)"
	if err.Error() != wantText {
		t.Errorf("Error() =\n%s\nwant\n%s", err, wantText)
	}
}

func TestLoadJSONProblemHasLine(t *testing.T) {
	t.Parallel()
	const src = `{
  "version": 1,
  "limits": {"max_calls": "ten"},
  "routing": {
    "default": "gpt-4o",
    "fallbak": []
  }
}`
	_, err := Load(strings.NewReader(src), "team.json")
	got := problemsOf(t, err)
	want := []Problem{
		{Path: "limits.max_calls", File: "team.json", Line: 3, Column: 27, Msg: `expected an integer, got string "ten"`},
		{Path: "routing.fallbak", File: "team.json", Line: 6, Column: 5, Msg: `unknown field "fallbak"`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %#v\nwant %#v", got, want)
	}
}

func TestLoadSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := LoadBytes([]byte("version: 1\nlimits: [1\n"), "bad.yaml")
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Line != 2 || !strings.HasPrefix(got[0].Msg, "syntax error:") || got[0].File != "bad.yaml" {
		t.Errorf("problems = %#v, want one syntax error on line 2", got)
	}
}

// TestLoadByteOrderMark: a file that starts with a UTF-8 byte order mark
// (Windows editors write one) loads as without it, from bytes and from a
// file, its problems on the same lines.
func TestLoadByteOrderMark(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte("\ufeffversion: 1\nname: x\n"), "bom.yaml")
	if err != nil || p.Name != "x" {
		t.Fatalf("a valid policy with a BOM: %v, %v", p, err)
	}
	path := filepath.Join(t.TempDir(), "bom.yaml")
	if err := os.WriteFile(path, []byte("\ufeffversion: 1\nname: x\ntimeouts: {call: 30}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(path)
	if got := problemsOf(t, err); len(got) != 1 || got[0].Line != 3 || got[0].Path != "timeouts.call" {
		t.Errorf("problems = %v, want one at line 3 on timeouts.call", got)
	}
}

// TestLoadInvalidUTF8: a byte that is not UTF-8 is refused at its line
// and column (in characters), never read as U+FFFD, and never quoted.
func TestLoadInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, src string
		line, col int
	}{
		{"in a quoted value", "version: 1\nname: \"a\xffb\"\n", 2, 9},
		{"after multibyte text", "version: 1\n# ünïcode\nname: \"é\xc3\"\n", 3, 9},
		{"after CR line breaks", "version: 1\r\n\rname: x\xfe\n", 3, 8},
		{"in a key", "\xef\xbb\xbfversion: 1\n\x80: 1\n", 2, 1},
	} {
		p, err := LoadBytes([]byte(tt.src), "u.yaml")
		if err == nil {
			t.Errorf("%s: accepted, name = %q", tt.name, p.Name)
			continue
		}
		got := problemsOf(t, err)
		if len(got) != 1 || got[0].Line != tt.line || got[0].Column != tt.col || !strings.Contains(got[0].Msg, "invalid UTF-8") {
			t.Errorf("%s: problems = %v, want one invalid UTF-8 at %d:%d", tt.name, got, tt.line, tt.col)
		}
	}
}

func TestLoadFileMissing(t *testing.T) {
	t.Parallel()
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want os.ErrNotExist", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	t.Parallel()
	_, err := Load(bytes.NewReader(make([]byte, MaxFileSize+1)), "big.yaml")
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load: err = %v, want ErrTooLarge", err)
	}
	_, err = LoadBytes(make([]byte, MaxFileSize+1), "big.yaml")
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("LoadBytes: err = %v, want ErrTooLarge", err)
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(path)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("LoadFile: err = %v, want ErrTooLarge", err)
	}
}

// TestLoadDecodeProblems covers strict decoding: unknown keys and wrong
// types anywhere, each reported at its path and line.
func TestLoadDecodeProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		path      string
		line      int
		msg       string
	}{
		{"unknown top-level key", "version: 1\nbudgett: {}\n", "budgett", 2, `unknown field "budgett" (did you mean "budget"?)`},
		{"unknown key no suggestion", "version: 1\ncache: {zzz: 1}\n", "cache.zzz", 2, `unknown field "zzz"`},
		{"unknown key in model", "version: 1\nmodels:\n  gpt-4.1:\n    input_per_1M: 2\n", `models["gpt-4.1"].input_per_1M`, 4, `unknown field "input_per_1M" (did you mean "input_per_1m"?)`},
		{"unknown key in list item", "version: 1\nrouting:\n  rules:\n    - model: gpt-4o\n      whn: {}\n", "routing.rules[0].whn", 5, `unknown field "whn" (did you mean "when"?)`},
		{"string for int", "version: 1\nlimits:\n  max_calls: ten\n", "limits.max_calls", 3, `expected an integer, got string "ten"`},
		{"float for int", "version: 1\nlimits:\n  max_calls: 1.5\n", "limits.max_calls", 3, "expected an integer, got number 1.5"},
		{"int for string", "version: 1\nname: 42\n", "name", 2, `expected a string, got integer 42 (quote it: "42")`},
		{"bool for string list", "version: 1\nfallback: {models: [true]}\n", "fallback.models[0]", 2, `expected a string, got true (quote it: "true")`},
		{"string for bool", "version: 1\ncache: {enabled: \"yes\"}\n", "cache.enabled", 2, `expected true or false, got string "yes"`},
		{"scalar for section", "version: 1\nbudget: 5\n", "budget", 2, "expected a mapping, got integer 5"},
		{"scalar for list", "version: 1\nfallback: {models: gpt-4o}\n", "fallback.models", 2, `expected a list, got string "gpt-4o"`},
		{"bad duration", "version: 1\ntimeouts: {call: 30}\n", "timeouts.call", 2, `invalid duration "30": missing unit: write "30ms", "30s" or "30m"`},
		{"bad usd", "version: 1\nbudget: {run: {max_usd: 1.0000001}}\n", "budget.run.max_usd", 2, `invalid dollar amount "1.0000001": more than 6 decimals (the unit is a micro-dollar)`},
		{"bad size", "version: 1\ncache: {max_bytes: 64XB}\n", "cache.max_bytes", 2, `invalid size "64XB": unknown unit "XB" (use B, KB, MB, GB, KiB, MiB, GiB)`},
		{"list for usd", "version: 1\nbudget: {run: {max_usd: [1]}}\n", "budget.run.max_usd", 2, "expected a dollar amount like 1.50, got a list"},
		{"int overflow", "version: 99999999999999999999\n", "version", 1, "integer 99999999999999999999 is too large"},
		{"nan fraction", "version: 1\nbudget: {warn_at: [.nan]}\n", "budget.warn_at[0]", 2, "expected a number, got .nan"},
		{"second document", "version: 1\n---\nversion: 1\n", "", 3, "a policy file holds one YAML document; found another"},
		{"unknown alias", "version: 1\nname: *nope\n", "name", 2, "unknown alias *nope"},
		{"top level list", "- 1\n", "", 1, "the top level is a list, not a mapping of policy fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(tt.src), "p.yaml")
			for _, pr := range problemsOf(t, err) {
				if pr.Path == tt.path && pr.Line == tt.line && pr.Msg == tt.msg {
					return
				}
			}
			t.Errorf("no problem %s (line %d): %s\ngot:\n%v", tt.path, tt.line, tt.msg, err)
		})
	}
}

// TestLoadShadowedProblems checks that a value that failed to decode is not
// reported a second time by validation.
func TestLoadShadowedProblems(t *testing.T) {
	t.Parallel()
	_, err := LoadBytes([]byte("version: 1\nbudget: {warn_at: [0.5, x]}\n"), "p.yaml")
	if got := problemsOf(t, err); len(got) != 1 {
		t.Errorf("got %d problems, want 1:\n%v", len(got), err)
	}
}

func TestLoadAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	const src = `version: 1
x-common: &common
  max_attempts: 3
  base_delay: 100ms
fallback:
  models: [gpt-4o]
  retry:
    <<: *common
    base_delay: 300ms
`
	_, err := LoadBytes([]byte(src), "p.yaml")
	// x-common is not a policy field: strict loading rejects it even though
	// it only holds an anchor.
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Path != "x-common" {
		t.Fatalf("problems = %v", err)
	}

	const ok = `version: 1
fallback:
  models: [gpt-4o]
  retry: &r
    max_attempts: 3
    base_delay: 100ms
  breaker:
    consecutive_failures: 5
routing:
  cascade:
    models: [gpt-4o-mini, gpt-4o]
    checks: &checks [non_empty]
`
	p, err := LoadBytes([]byte(ok), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Fallback.Retry.MaxAttempts != 3 || p.Routing.Cascade.Checks[0] != CheckNonEmpty {
		t.Errorf("got %+v", p.Fallback)
	}

	const merge = `version: 1
models:
  base: &base {provider: local, input_per_1m: 0.10, output_per_1m: 0.20}
  llama-big:
    <<: *base
    output_per_1m: 0.40
`
	p, err = LoadBytes([]byte(merge), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := ModelSpec{Provider: "local", InputPer1M: 100_000, OutputPer1M: 400_000}
	if got := p.Models["llama-big"]; !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %+v, want %+v", got, want)
	}
}

func TestLoadEmpty(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "# nothing\n", "{}"} {
		_, err := LoadBytes([]byte(src), "empty.yaml")
		got := problemsOf(t, err)
		if len(got) != 1 || got[0].Path != "version" || !strings.Contains(got[0].Msg, "version is required") {
			t.Errorf("%q: problems = %v", src, err)
		}
	}
}
