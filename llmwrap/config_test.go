package llmwrap

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// everySection is a policy file that sets every field a layer reads.
const everySection = `
version: 1
name: devops
limits: {max_calls: 12, run_timeout: 10m}
timeouts: {call: 40s, total: 100s, first_token: 9s, idle: 14s, tool: 25s}
budget:
  request: {max_input_tokens: 10000, max_output_tokens: 2000}
  run: {max_tokens: 100000, max_usd: 1.50, max_calls: 8, max_wall_time: 20m}
  team: {period: rolling, window: 24h, max_usd: 100, max_tokens: 5000000}
  on_exceed: downgrade
  downgrade_to: gpt-4o-mini
  warn_at: [0.5, 0.8]
  min_output_tokens: 300
  store: {kind: memory, key_prefix: tw-test, reservation_ttl: 3m, on_unavailable: local, local_fraction: 0.2}
cache:
  enabled: true
  ttl: 1h
  max_entries: 500
  max_bytes: 1MiB
  scope: global
  deterministic_only: true
  fail_closed: true
  streams: false
routing:
  default: gpt-4o
  larger_window: [gpt-4.1]
  regenerate_final: {enabled: true, model: gpt-4.1}
  cascade: {models: [gpt-4o-mini, gpt-4o], checks: [non_empty, finish_reason]}
  rules:
    - name: cheap-tools
      when: {stage: tool_selection, keywords: [check, status], keywords_in: conversation,
             regex: "(?i)analy[sz]e", min_input_tokens: 10, max_input_tokens: 9000,
             has_tools: true, team: sre, budget_below: {scope: team, fraction: 0.2}}
      model: gpt-4o-mini
fallback:
  models: [gpt-4o-mini]
  on: [rate_limited, timeout]
  retry: {max_attempts: 4, base_delay: 100ms, max_delay: 5s, max_total_wait: 20s}
  breaker: {consecutive_failures: 5, failure_ratio: 0.5, min_requests: 20, open_for: 45s, half_open_probes: 2, window: 90s}
  hedge: {enabled: true, delay: 2s, percentile: 95}
rate_limits:
  models:
    gpt-4o: {rpm: 600, tpm: 90000, max_concurrent: 8, burst: 2s}
  teams:
    sre: {weight: 2, rpm: 100, tpm: 1000, max_concurrent: 3}
    "*": {weight: 1}
  on_limit: fallback
  max_wait: 12s
  reserve_output: 512
  learn_from_provider: false
  store: {kind: memory, key_prefix: rl-test, lease_ttl: 4m, on_unavailable: local, local_fraction: 0.3}
tools:
  max_parallel: 4
  on_error: fail
  cache_ttl: 10m
  artifacts: {threshold_bytes: 8192, threshold_tokens: 100, head_lines: 20, tail_lines: 5}
  per_tool:
    clean_logs: {side_effects: true, idempotent: false, timeout: 60s}
context:
  window_fraction: 0.8
  strategies: [offload, drop]
  keep_last_turns: 4
  offload_over_bytes: 2048
  block_size: 10
`

// TestLearnedWeightsPathIsResolved: the learned router's weights path in
// the route config is the policy file's directory joined with the
// relative path the file gives.
func TestLearnedWeightsPathIsResolved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "team.yaml")
	yaml := "version: 1\nrouting:\n  default: gpt-4o\n  learned: {weights: w.bin, weak: gpt-4o-mini, threshold: 0.4}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := route.Learned{Weights: filepath.Join(dir, "w.bin"), Threshold: 0.4, Weak: "gpt-4o-mini"}
	if got := routeConfig(p).Learned; got != want {
		t.Fatalf("learned: %+v, want %+v", got, want)
	}
}

// TestPolicyToLayerConfigs: a policy with every section set yields the
// layer configs it says, field by field. This is the one link from a
// policy file to the layers, which never read a policy themselves.
func TestPolicyToLayerConfigs(t *testing.T) {
	t.Parallel()
	p, err := policies.LoadBytes([]byte(everySection), "every.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"timeout", timeoutConfig(p), timeout.Config{Call: 40 * time.Second, FirstToken: 9 * time.Second, Idle: 14 * time.Second, Total: 100 * time.Second}},
		// The smaller of limits and budget.run wins.
		{"guard", guardConfig(p), guard.Config{MaxCalls: 8, RunTimeout: 10 * time.Minute}},
		{"retry", retryConfig(p), retry.Config{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second, MaxTotalWait: 20 * time.Second}},
		{"breaker", breakerConfig(p), breaker.Config{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, OpenFor: 45 * time.Second, HalfOpenProbes: 2, Window: 90 * time.Second}},
		{"cache", cacheConfig(p, &options{}), cache.Config{TTL: time.Hour, Global: true, DeterministicOnly: true, FailClosed: true, NoStreams: true, Variant: answerVariant(p, "")}},
		{"compact", compactConfig(p), compact.Config{WindowFraction: 0.8, Strategies: []compact.Strategy{compact.Offload, compact.Drop},
			KeepLastTurns: 4, OffloadOverBytes: 2048, BlockSize: 10, SummaryModel: "gpt-4o"}},
		{"ratelimit", rateLimitConfig(p), ratelimit.Config{
			Models:  map[string]ratelimit.ModelLimit{"gpt-4o": {RPM: 600, TPM: 90000, MaxConcurrent: 8, Burst: 2 * time.Second}},
			Teams:   map[string]ratelimit.TeamShare{"sre": {Weight: 2, RPM: 100, TPM: 1000, MaxConcurrent: 3}, "*": {Weight: 1}},
			OnLimit: ratelimit.OnLimitFallback, MaxWait: 12 * time.Second, ReserveOutput: 512, NoLearning: true,
			KeyPrefix: "rl-test", LeaseTTL: 4 * time.Minute, OnUnavailable: ratelimit.Local, LocalFraction: 0.3}},
		{"budget", budgetConfig(p), budget.Config{
			Name:     "devops",
			Request:  budget.RequestLimit{MaxInputTokens: 10000, MaxOutputTokens: 2000},
			Run:      budget.Amount{USDMicros: 1_500_000, Tokens: 100000},
			Team:     budget.TeamLimit{Limit: budget.Amount{USDMicros: 100_000_000, Tokens: 5_000_000}, Period: budget.PeriodRolling, Window: 24 * time.Hour},
			OnExceed: budget.OnExceedDowngrade, DowngradeTo: "gpt-4o-mini", WarnAt: []float64{0.5, 0.8}, MinOutputTokens: 300,
			KeyPrefix: "tw-test", ReservationTTL: 3 * time.Minute, OnUnavailable: budget.Local, LocalFraction: 0.2}},
		// tools.timeout unset: timeouts.tool; the run's deadline as the guard's.
		{"tools", toolsConfig(p), toolwrap.Config{MaxParallel: 4, Timeout: 25 * time.Second, FailOnError: true, CacheTTL: 10 * time.Minute,
			Meta: map[string]toolwrap.Meta{"clean_logs": {SideEffects: true, Timeout: time.Minute}}, RunTimeout: 10 * time.Minute}},
		{"route", routeConfig(p), route.Config{
			Default: "gpt-4o",
			Rules: []route.Rule{{Name: "cheap-tools", Model: "gpt-4o-mini", When: route.Condition{
				Stage: middleware.StageToolSelection, Keywords: []string{"check", "status"}, KeywordsIn: route.KeywordsInConversation,
				Regex: "(?i)analy[sz]e", MinInputTokens: 10, MaxInputTokens: 9000, HasTools: &yes, Team: "sre",
				BudgetBelow: &route.BudgetBelow{Scope: route.BudgetScopeTeam, Fraction: 0.2}}}},
			RegenerateFinal: route.Regenerate{Enabled: true, Model: "gpt-4.1"},
			Cascade:         route.Cascade{Models: []string{"gpt-4o-mini", "gpt-4o"}, Checks: []route.CheckName{route.CheckNonEmpty, route.CheckFinishReason}},
			LargerWindow:    []string{"gpt-4.1"},
			RunLimit:        route.RunLimit{USDMicros: 1_500_000, Tokens: 100000}}},
		{"artifacts", artifactConfig(p), toolwrap.ArtifactConfig{ThresholdBytes: 8192, ThresholdTokens: 100, HeadLines: 20, TailLines: 5}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, tc.got, tc.want)
		}
	}

	f := fallbackConfig(p)
	want := fallback.Config{Models: []string{"gpt-4o-mini"}, LargerWindow: []string{"gpt-4.1"},
		On:    []error{breaker.ErrOpen, ratelimit.ErrMoveOn, middleware.ErrRateLimited, middleware.ErrQuotaExceeded, middleware.ErrTimeout},
		Stop:  []error{ratelimit.ErrRejected},
		Hedge: fallback.Hedge{Delay: 2 * time.Second, Percentile: 95}}
	if w := windows(p)("gpt-4.1"); w != 1_047_576 {
		t.Errorf("window of gpt-4.1 = %d; want the catalog's", w)
	}
	if w := windows(p)("no-such-model"); w != 0 {
		t.Errorf("an unknown model has a window of %d", w)
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("fallback:\n got %+v\nwant %+v", f, want)
	}

	// Every config builds its layer.
	for name, build := range map[string]func() error{
		"timeout":   func() error { _, err := timeout.New(timeoutConfig(p)); return err },
		"guard":     func() error { _, err := guard.New(guardConfig(p)); return err },
		"retry":     func() error { _, err := retry.New(retryConfig(p)); return err },
		"breaker":   func() error { _, err := breaker.New(breakerConfig(p)); return err },
		"cache":     func() error { _, err := cache.New(cacheConfig(p, &options{})); return err },
		"compact":   func() error { _, err := compact.New(compactConfig(p)); return err },
		"ratelimit": func() error { _, err := ratelimit.New(rateLimitConfig(p)); return err },
		"budget":    func() error { _, err := budget.New(budgetConfig(p), budget.WithCatalog(Catalog(p))); return err },
		"fallback":  func() error { _, err := fallback.New(fallbackConfig(p)); return err },
		"tools":     func() error { _, err := toolwrap.New(nil, toolsConfig(p)); return err },
		"route":     func() error { _, err := route.New(routeConfig(p)); return err },
	} {
		if err := build(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The zero policy maps to zero configs (where a policy adds no default of
// its own): every layer is off.
func TestDefaultPolicyAddsNoLayer(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1}
	for name, mw := range map[string]middleware.Middleware{
		"timeout": must(timeout.New(timeoutConfig(p))).Middleware(),
		"guard":   must(guard.New(guardConfig(p))).Middleware(),
		"retry":   must(retry.New(retryConfig(p))).Middleware(),
		"breaker": must(breaker.New(breakerConfig(p))).Middleware(),
		"limits":  must(ratelimit.New(rateLimitConfig(p))).Middleware(),
		"budget":  must(budget.New(budgetConfig(p))).Middleware(),
		"compact": must(compact.New(compactConfig(p))).Middleware(),
		"route":   must(route.New(routeConfig(p))).Middleware(),
	} {
		if mw != nil {
			t.Errorf("%s: a layer for the zero policy", name)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(errors.Join(errors.New("must"), err))
	}
	return v
}

// TestAnswerVariantFollowsTheRouteSections: the cache's variant changes
// with each section below the cache that decides the answer, and with no
// other (a budget or a timeout changes no answer it keeps).
func TestAnswerVariantFollowsTheRouteSections(t *testing.T) {
	load := func(extra string) *policies.Policy {
		t.Helper()
		p, err := policies.LoadBytes([]byte("version: 1\ncache: {enabled: true}\n"+extra), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := answerVariant(load(""), "")
	if answerVariant(load(""), "") != base {
		t.Fatal("equal policies, different variants")
	}
	for _, s := range []string{"routing: {default: gpt-4.1}\n", "fallback: {models: [gpt-4.1]}\n",
		"context: {max_input_tokens: 1000}\n", "models: {my-model: {input_per_1m: 1, output_per_1m: 2}}\n"} {
		if answerVariant(load(s), "") == base {
			t.Errorf("%q: the variant did not change", s)
		}
	}
	if answerVariant(load(""), "c0ffee") == base {
		t.Error("other learned weights, the same variant")
	}
	for _, s := range []string{"budget: {run: {max_usd: 1}}\n", "timeouts: {call: 5s}\n", "limits: {max_calls: 3}\n"} {
		if answerVariant(load(s), "") != base {
			t.Errorf("%q: the variant changed", s)
		}
	}
}

// fallback.never_dearer: a call moves only to a model whose input and
// output prices are at most the asked model's; a model without a price
// cannot be compared and moves nowhere; a free model only to free ones.
func TestNeverDearerComparesPrices(t *testing.T) {
	p, err := policies.LoadBytes([]byte(`version: 1
fallback:
  models: [gpt-4o-mini, local-free]
  never_dearer: true
models:
  local-free: {free: true}
  pricey-out: {input_per_1m: 0.01, output_per_1m: 100}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	allow := fallbackConfig(p).Allow
	if allow == nil {
		t.Fatal("never_dearer set no Allow")
	}
	for _, c := range []struct {
		requested, candidate string
		want                 bool
	}{
		{"gpt-4o", "gpt-4o-mini", true},
		{"gpt-4o-mini", "gpt-4o-mini", true},
		{"gpt-4.1-nano", "gpt-4o-mini", false},
		{"unknown-local", "gpt-4o-mini", false},
		{"local-free", "gpt-4o-mini", false},
		{"gpt-4o-mini", "local-free", true},
		{"pricey-out", "gpt-4o-mini", false}, // gpt-4o-mini's input is dearer
	} {
		if got := allow(c.requested, c.candidate); got != c.want {
			t.Errorf("from %s to %s: %v, want %v", c.requested, c.candidate, got, c.want)
		}
	}
	p.Fallback.NeverDearer = false
	if fallbackConfig(p).Allow != nil {
		t.Error("Allow set without never_dearer")
	}
}
