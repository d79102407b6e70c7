package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPolicyCheckBrokenDirectory(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"default.yaml": "version: 1\nlimits: {max_calls: 10}\n",
		"devops.yaml":  "version: 1\nextends: default.yaml\nbudget:\n  warn_at: [0.5, 2]\n",
		"ml.yaml":      "version: 1\nextends: default.yaml\ncache:\n  enabeld: true\n",
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := runCmd("policy", "check", dir)
	if code == 0 {
		t.Fatal("exit 0 for a broken directory")
	}
	for _, want := range []string{
		filepath.Join(dir, "devops.yaml") + ":4:", "budget.warn_at[1]",
		filepath.Join(dir, "ml.yaml") + ":4:3: cache.enabeld: unknown field \"enabeld\"",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// The good file alone passes.
	if code, out, stderr := runCmd("policy", "check", filepath.Join(dir, "default.yaml")); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check default.yaml: %d %s %s", code, out, stderr)
	}
}

func TestPolicyExplainShowsOrigins(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\nlimits: {max_calls: 10, run_timeout: 5m}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "devops.yaml"), []byte("version: 1\nextends: default.yaml\nlimits: {max_calls: 3}\n"), 0o644)
	code, out, stderr := runCmd("policy", "explain", dir, "--team", "devops")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"limits.max_calls:", "3", "devops.yaml:3", "limits.run_timeout:", "5m", "default.yaml:2"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
}

// testdata/devops.jsonl was recorded by `go run ./examples/devops-agent
// -trace` (its costs since converted to exact pico-dollars): langchaingo-agent
// routed $0.00121545, go-openai-loop routed $0.00107315. Replaying it through
// the same policy reproduces them exactly.
func TestReplayDevOpsTrace(t *testing.T) {
	code, out, stderr := runCmd("replay", "--policy", "../../policies/default.yaml", "--progress", "always", "testdata/devops.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"$0.00121545", "$0.00107315", "cost under policy: $0.0022886", "recorded cost:   $0.0022886"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}
	// The per-model breakdown: the default policy picks tools with
	// gpt-4o-mini and reads results with gpt-4o.
	for _, want := range []string{"model  ", "gpt-4o-mini  ", "gpt-4o  "} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks the per-model line %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "100% 6/6") {
		t.Errorf("no progress bar: %q", stderr)
	}
}

// A team file overrides one model's rate limit of the shared default;
// explain shows each value with the file it comes from, and check rejects
// an unknown model under rate_limits with its line.
func TestPolicyExplainRateLimits(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\nrate_limits:\n  models:\n    gpt-4o: {rpm: 500, tpm: 30000}\n  on_limit: wait\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "devops.yaml"), []byte("version: 1\nextends: default.yaml\nrate_limits:\n  models:\n    gpt-4o: {rpm: 100}\n  teams:\n    devops: {weight: 1}\n"), 0o644)
	code, out, stderr := runCmd("policy", "explain", dir, "--team", "devops")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"rate_limits.models.gpt-4o.rpm:", "100", "devops.yaml:5", "rate_limits.models.gpt-4o.tpm:", "30000",
		"default.yaml:4", "rate_limits.on_limit:", "rate_limits.teams.devops.weight:"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nrate_limits:\n  models:\n    gpt-40: {rpm: 5}\n"), 0o644)
	if code, out, stderr := runCmd("policy", "check", bad); code == 0 || !strings.Contains(out+stderr, "bad.yaml:4") ||
		!strings.Contains(out+stderr, `unknown model "gpt-40"`) {
		t.Errorf("check of an unknown rate-limited model: exit %d\n%s%s", code, out, stderr)
	}
}

// A team without a policy file is an error of explain (and replay), not a
// silent fallback to the default policy: a typo exits non-zero and names
// the teams that exist.
func TestExplainUnknownTeamFails(t *testing.T) {
	for _, args := range [][]string{
		{"policy", "explain", "../../examples/policies", "--team", "paymnts"},
		{"policy", "explain", "../../examples/policies/default.yaml", "--team", "paymnts"},
		{"replay", "--policy", "../../examples/policies", "--team", "paymnts", "../../examples/traces/devops.jsonl"},
	} {
		code, out, stderr := runCmd(args...)
		if code == 0 || !strings.Contains(stderr, `unknown team "paymnts"`) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
	if code, _, stderr := runCmd("policy", "explain", "../../examples/policies", "--team", "payments"); code != 0 {
		t.Errorf("known team: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd("policy", "explain", "../../examples/policies"); code != 0 {
		t.Errorf("no team: exit %d: %s", code, stderr)
	}
}

// policies/testdata/full.yaml, the policy using every section, passes its
// own check (it extends the testdata default.yaml).
func TestFullPolicyChecks(t *testing.T) {
	if code, out, stderr := runCmd("policy", "check", "../../policies/testdata/full.yaml", "../../policies/testdata/default.yaml"); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
}

// TestCatalogImportCommand imports a LiteLLM price file into a policy
// file that a team policy extends: its prices then override the catalog,
// and every skipped entry is reported.
func TestCatalogImportCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "prices.yaml")
	code, stdout, stderr := runCmd("catalog", "import", "-o", out, "../../policies/testdata/litellm_prices.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "" || !strings.Contains(stderr, "imported 6 models, skipped 3") || !strings.Contains(stderr, "skipped dall-e-3: mode image_generation") {
		t.Errorf("stdout %q, stderr:\n%s", stdout, stderr)
	}
	team := filepath.Join(dir, "devops.yaml")
	os.WriteFile(team, []byte("version: 1\nextends: prices.yaml\nbudget: {run: {max_usd: 1}}\nrouting: {default: gpt-5-pro-2030-01-01}\n"), 0o644)
	p, err := policies.LoadFileExtends(team)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := p.Model("gpt-5-pro-2030-01-01"); !ok || m.OutputPer1M != 120*policies.Dollar {
		t.Errorf("imported model in the extending policy: %+v %v", m, ok)
	}
	if m, ok := p.Model("text-embedding-3-small"); !ok || !m.Embeddings || m.InputPer1M != 20_000 {
		t.Errorf("imported embeddings model in the extending policy: %+v %v", m, ok)
	}
	if code, out, stderr := runCmd("policy", "check", team); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check: %d %s %s", code, out, stderr)
	}
	if code, _, _ := runCmd("catalog", "import", filepath.Join(dir, "missing.json")); code != 1 {
		t.Errorf("a missing file exits %d", code)
	}
	if strings.Contains(stderr, "policy directory") {
		t.Errorf("an import beside no default.yaml says it is in a policy directory:\n%s", stderr)
	}
	// Written beside a default.yaml, the file is a team's policy to the
	// registry: the import says so, and where to put it instead.
	os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\n"), 0o644)
	code, _, stderr = runCmd("catalog", "import", "-o", out, "../../policies/testdata/litellm_prices.json")
	if code != 0 || !strings.Contains(stderr, `the policy of a team "prices"`) || !strings.Contains(stderr, "extends: bases/prices.yaml") {
		t.Errorf("an import into a policy directory: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCatalogImportOfManyModelsLoads: LiteLLM's real file prices well over
// 1,000 chat models, more than one policy file may hold under models:.
// With -o the import writes a chain of files that each pass the loader's
// limits, checks them, and a team that extends the first prices with
// every model; to stdout it refuses (exit 1) rather than print a file
// that does not load.
func TestCatalogImportOfManyModelsLoads(t *testing.T) {
	dir := t.TempDir()
	const n = 2500
	var js strings.Builder
	js.WriteString("{")
	for i := range n {
		if i > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, `"model-%d": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000, "max_output_tokens": 4096, "cache_read_input_token_cost": 5e-07}`, i)
	}
	js.WriteString("}")
	in := filepath.Join(dir, "prices.json")
	if err := os.WriteFile(in, []byte(js.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "prices.yaml")
	if code, _, stderr := runCmd("catalog", "import", "-o", out, in); code != 0 {
		t.Fatalf("import exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCmd("policy", "check", out); code != 0 {
		t.Fatalf("policy check of the import's output: exit %d: %s %s", code, stdout, stderr)
	}
	team := filepath.Join(dir, "devops.yaml")
	if err := os.WriteFile(team, []byte("version: 1\nextends: prices.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadFileExtends(team)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model-0", "model-1234", fmt.Sprintf("model-%d", n-1)} {
		if m, ok := p.Model(name); !ok || m.InputPer1M != policies.Dollar || m.CachedInputPer1M != policies.Dollar/2 {
			t.Errorf("%s in the extending policy: %+v %v", name, m, ok)
		}
	}
	if code, stdout, stderr := runCmd("catalog", "import", in); code != 1 || stdout != "" || !strings.Contains(stderr, "-o FILE") {
		t.Errorf("import to stdout: exit %d, stdout %d bytes, stderr %.200s", code, len(stdout), stderr)
	}
}

// TestReplayDifferenceIsTheDifference: replay printed
//
//	difference:      -$0.01020695 (38.2% of the recorded cost)
//
// for a policy that cost 38.2 % of the recorded cost, i.e. that saved
// 61.8 % of it; and "(100.0% of the recorded cost)" for a difference of
// $0.00000375 on $0.0165. The percentage on the difference line is now the
// difference's share of the recorded cost, signed as the difference is.
func TestReplayDifferenceIsTheDifference(t *testing.T) {
	code, out, stderr := runCmd("replay", "--policy", "../../examples/policies/devops.yaml", "../../examples/traces/devops.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// recorded $0.016519, under the policy $0.00631205.
	for _, want := range []string{"recorded cost:   $0.016519\n", "cost under policy: $0.00631205\n", "difference:      -$0.01020695 (-61.8% of the recorded cost)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}
}

// TestExplainNamesTheEmbeddedDefault: in a policy directory without a
// default.yaml, a team without a file (and `explain DIR` without --team)
// gets the embedded default policy. explain gave its values the origin
// "# default.yaml:10", a file the directory does not hold, so that a
// platform engineer looked for the file that set them. The header now says
// the policy is the embedded default, and each origin says "embedded".
func TestExplainNamesTheEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ops.yaml"), []byte("version: 1\nname: ops\nlimits: {max_calls: 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"", "default"} {
		code, out, stderr := runCmd("policy", "explain", dir, "--team", team)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(out, "the embedded default policy") || !strings.Contains(out, "# embedded default.yaml:10") {
			t.Errorf("explain --team %q of a directory without default.yaml does not say the policy is the embedded default:\n%s", team, out)
		}
	}
	// A directory's own default.yaml is named as the file it is.
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\nname: default\nlimits: {max_calls: 4}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("policy", "explain", dir)
	if code != 0 || strings.Contains(out, "embedded") || !strings.Contains(out, filepath.Join(dir, "default.yaml")+":3") {
		t.Errorf("explain of a directory's own default.yaml (exit %d):\n%s%s", code, out, stderr)
	}
}

// TestReplayForecastsAMonth: replay --runs-per-day projects the mean
// replayed run over a day and 30 days, beside the recorded cost, and says
// what share of the team budget a period takes. Under the DevOps policy
// the two example runs cost $0.00631205 (TestReplayDifferenceIsTheDifference),
// so 2,000 runs a day cost $6.31 and 30 days $189.36, 37.9 % of the
// team's $500 a month. Without a rate, a trace of seconds is not projected,
// and the output says how to give one.
func TestReplayForecastsAMonth(t *testing.T) {
	code, out, stderr := runCmd("replay", "--policy", "../../examples/policies/devops.yaml", "--runs-per-day", "2000", "../../examples/traces/devops.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"forecast at 2,000 runs a day", "  a day    $6.31 ", "  30 days  $189.36 ",
		"team budget (monthly, taken as 30 days, $500.00): a period's traffic takes 37.9% of it; it lasts the period\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = runCmd("replay", "--policy", "../../examples/policies/devops.yaml", "--calls-per-day", "1000000", "../../examples/traces/devops.jsonl")
	if code != 0 || !strings.Contains(out, "it runs out 19 hours into each period (on_exceed: downgrade: later calls are downgraded to gpt-4o-mini)") {
		t.Errorf("a million calls a day: exit %d, %s\n%s", code, out, stderr)
	}
	code, out, _ = runCmd("replay", "--policy", "../../examples/policies/devops.yaml", "../../examples/traces/devops.jsonl")
	if code != 0 || !strings.Contains(out, "forecast: the trace spans 1s, less than an hour; pass --runs-per-day N or --calls-per-day N") {
		t.Errorf("no rate: exit %d, %s", code, out)
	}
	for _, args := range [][]string{{"--runs-per-day", "-3"}, {"--runs-per-day", "1", "--calls-per-day", "1"},
		{"--runs-per-day", "NaN"}, {"--calls-per-day", "+Inf"}} {
		args = append(append([]string{"replay", "--policy", "../../examples/policies/devops.yaml"}, args...), "../../examples/traces/devops.jsonl")
		if code, _, stderr := runCmd(args...); code != 2 || !strings.Contains(stderr, "not both") {
			t.Errorf("%v: exit %d, %s: want a usage error", args, code, stderr)
		}
	}
}

func TestFormatDollars(t *testing.T) {
	for v, want := range map[float64]string{0: "$0.00", 0.5: "$0.50", 0.003156: "$0.003156", 0.00001: "$0.00001", 1.2e-9: "$0.0000000012",
		1: "$1.00", 6.31205: "$6.31", 49557: "$49,557.00", 1234567.891: "$1,234,567.89", 0.999999: "$1.00"} {
		if got := formatDollars(v); got != want {
			t.Errorf("formatDollars(%g) = %q, want %q", v, got, want)
		}
	}
}

// TestReplayForecastOfTrafficFarAboveTheBudget: ten billion calls a day
// run the DevOps team's $500 a month out within seconds of the month's
// start; the forecast says so (it said "it lasts the period": the time,
// rounded to zero minutes, read as none).
func TestReplayForecastOfTrafficFarAboveTheBudget(t *testing.T) {
	code, out, stderr := runCmd("replay", "--policy", "../../examples/policies/devops.yaml", "--calls-per-day", "10000000000", "../../examples/traces/devops.jsonl")
	if code != 0 || strings.Contains(out, "it lasts the period") || !strings.Contains(out, "it runs out under a minute into each period (on_exceed: downgrade") {
		t.Errorf("ten billion calls a day: exit %d, %s\n%s", code, out, stderr)
	}
	for days, want := range map[float64]string{1.0 / 1440: "1 minute", 1.4 / 1440: "1 minute", 30.0 / 1440: "30 minutes", 0.2 / 1440: "under a minute", 3: "3 days"} {
		if got := formatDays(days); got != want {
			t.Errorf("formatDays(%g) = %q, want %q", days, got, want)
		}
	}
}

// TestReplayOfAPolicyDirectoryTakesTheTracesTeam: replay --policy DIR of a
// trace whose calls are the devops team's replays them under devops.yaml
// (its routing and its $500 team budget, which the forecast weighs), as
// --team's help says ("when the trace has no team") — not under the
// directory's default policy, which has no team budget. A trace of two
// teams needs --team.
func TestReplayOfAPolicyDirectoryTakesTheTracesTeam(t *testing.T) {
	src, err := os.ReadFile("../../examples/traces/devops.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(t.TempDir(), "devops.jsonl")
	if err := os.WriteFile(trace, bytes.ReplaceAll(src, []byte(`{"v":1,`), []byte(`{"v":1,"team":"devops",`)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, want, _ := runCmd("replay", "--policy", "../../examples/policies/devops.yaml", "--runs-per-day", "2000", "../../examples/traces/devops.jsonl")
	code, out, stderr := runCmd("replay", "--policy", "../../examples/policies", "--runs-per-day", "2000", trace)
	if code != 0 || !strings.Contains(out, `under policy "devops"`) || !strings.Contains(out, "team budget (monthly, taken as 30 days, $500.00)") {
		t.Errorf("a devops trace replayed under the directory: exit %d\n%s%s", code, out, stderr)
	}
	if _, rest, ok := strings.Cut(out, "\n"); !ok || !strings.HasSuffix(want, rest) {
		t.Errorf("the directory's replay differs from devops.yaml's:\n%s\nwant\n%s", out, want)
	}
	mixed := filepath.Join(t.TempDir(), "mixed.jsonl")
	two := bytes.Replace(bytes.ReplaceAll(src, []byte(`{"v":1,`), []byte(`{"v":1,"team":"devops",`)), []byte(`"team":"devops"`), []byte(`"team":"payments"`), 1)
	if err := os.WriteFile(mixed, two, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd("replay", "--policy", "../../examples/policies", mixed); code == 0 || !strings.Contains(stderr, "--team") {
		t.Errorf("a trace of two teams without --team: exit %d, %s: want an error asking for --team", code, stderr)
	}
	if code, out, stderr := runCmd("replay", "--policy", "../../examples/policies", "--team", "payments", mixed); code != 0 || !strings.Contains(out, `under policy "payments"`) {
		t.Errorf("with --team payments: exit %d\n%s%s", code, out, stderr)
	}
}

// TestExplainPadsNoLineToItsLongestValue: policy explain aligns its
// origins on the short values, not on the longest: the default policy's
// reasoning-model match list (≈200 characters) padded every line of
// `policy explain examples/policies --team payments` to ≈240 columns,
// "timeouts.call: 30s" followed by 200 spaces before its origin. A value
// longer than explainValueWidth is written whole with its origin after
// it, out of the column; every line of a short value fits 120 columns,
// and every line still names its origin.
func TestExplainPadsNoLineToItsLongestValue(t *testing.T) {
	code, out, stderr := runCmd("policy", "explain", "../../examples/policies", "--team", "payments")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	long := 0
	for _, l := range lines[1:] {
		i, j := strings.Index(l, ":"), strings.LastIndex(l, " # ")
		if i < 0 || j < i {
			t.Fatalf("a line without its origin: %q", l)
		}
		if v := strings.TrimSpace(l[i+1 : j]); len(v) > explainValueWidth {
			long++
			if before := strings.TrimRight(l[:j], " "); !strings.HasSuffix(before, v) || len(l[:j])-len(before) > 1 {
				t.Errorf("a long value not written whole before its origin: %q", l)
			}
			continue
		}
		if len(l) > 120 {
			t.Errorf("a line of a short value is %d columns wide: %q", len(l), l)
		}
	}
	if long == 0 {
		t.Fatalf("no value longer than %d: the test shows nothing:\n%s", explainValueWidth, out)
	}
}
