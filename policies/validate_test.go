package policies

import (
	"errors"
	"strings"
	"testing"
)

// TestValidate runs one semantic mistake per case through LoadBytes and
// checks its path, line and message.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string // appended to "version: 1\n"
		path string
		line int
		msg  string // substring
	}{
		{"negative max_calls", "limits: {max_calls: -1}\n", "limits.max_calls", 2, "must not be negative, got -1"},
		{"negative timeout", "timeouts:\n  call: -5s\n", "timeouts.call", 3, "must not be negative, got -5s"},
		{"negative price", "models:\n  x: {input_per_1m: -1, output_per_1m: 1}\n", "models.x.input_per_1m", 3, "must not be negative, got -$1.00"},
		{"bad encoding", "models:\n  x: {input_per_1m: 1, encoding: o200k}\n", "models.x.encoding", 3, `invalid value "o200k": want o200k_base, cl100k_base, p50k_base or r50k_base (did you mean "o200k_base"?)`},
		{"free with price", "models:\n  x: {free: true, input_per_1m: 1}\n", "models.x.free", 3, "free is set together with prices"},
		{"max output over window", "models:\n  x: {free: true, context_window: 100, max_output_tokens: 200}\n", "models.x.max_output_tokens", 3, "exceeds context_window"},
		{"team limit without period", "budget:\n  team:\n    max_usd: 10\n", "budget.team.period", 3, "required when a team limit is set"},
		{"period without limit", "budget:\n  team:\n    period: daily\n", "budget.team.period", 4, "no team limit"},
		{"bad period", "budget:\n  team: {period: weekly, max_tokens: 5}\n", "budget.team.period", 3, `invalid value "weekly": want daily, monthly or rolling`},
		{"rolling without window", "budget:\n  team:\n    period: rolling\n    max_usd: 10\n", "budget.team.window", 3, "required for period rolling"},
		{"window with daily", "budget:\n  team:\n    period: daily\n    window: 1h\n    max_usd: 10\n", "budget.team.window", 5, "window only applies to period rolling"},
		{"bad on_exceed", "budget: {on_exceed: rejekt}\n", "budget.on_exceed", 2, `invalid value "rejekt": want reject, downgrade or warn (did you mean "reject"?)`},
		{"downgrade without model", "budget: {on_exceed: downgrade}\n", "budget.downgrade_to", 2, "required when on_exceed is downgrade"},
		{"downgrade_to without downgrade", "budget:\n  downgrade_to: gpt-4o-mini\n", "budget.downgrade_to", 3, `is set but on_exceed is "reject"`},
		{"downgrade to unknown", "budget:\n  on_exceed: downgrade\n  downgrade_to: gpt-5o\n", "budget.downgrade_to", 4, `unknown model "gpt-5o"`},
		{"warn_at zero", "budget:\n  warn_at: [0.5, 0]\n", "budget.warn_at[1]", 3, "must be a fraction in (0,1], got 0"},
		{"warn_at over one", "budget:\n  warn_at:\n    - 1.5\n", "budget.warn_at[0]", 4, "must be a fraction in (0,1], got 1.5"},
		{"warn_at duplicate", "budget: {warn_at: [0.5, 0.5]}\n", "budget.warn_at[1]", 2, "listed twice"},
		{"bad store kind", "budget: {store: {kind: dir}}\n", "budget.store.kind", 2, `invalid value "dir": want memory or redis`},
		{"negative total", "timeouts: {total: -1m}\n", "timeouts.total", 2, "must not be negative, got -1m"},
		{"total shorter than the call", "timeouts:\n  call: 30s\n  total: 20s\n", "timeouts.total", 4, "20s is shorter than timeouts.call (30s): the total bounds a call with all its attempts"},
		{"reservation shorter than the call", "timeouts: {call: 2m}\nbudget:\n  store: {reservation_ttl: 30s}\n", "budget.store.reservation_ttl", 4, "30s is shorter than timeouts.call (2m)"},
		{"local fraction without local", "budget: {store: {local_fraction: 0.5}}\n", "budget.store.local_fraction", 2, "only applies with on_unavailable: local"},
		{"bad cache scope", "cache: {scope: teams}\n", "cache.scope", 2, `(did you mean "team"?)`},
		{"negative cache size", "cache: {max_bytes: -1}\n", "cache.max_bytes", 2, "must not be negative"},
		{"unknown default", "routing:\n  default: gpt-4-omni\n", "routing.default", 3, `unknown model "gpt-4-omni"`},
		{"rule without model", "routing:\n  rules:\n    - when: {stage: final_answer}\n", "routing.rules[0].model", 4, "required"},
		{"bad stage", "routing:\n  rules:\n    - when: {stage: tool_select}\n      model: gpt-4o\n", "routing.rules[0].when.stage", 4, `(did you mean "tool_selection"?)`},
		{"bad regex", "routing:\n  rules:\n    - model: gpt-4o\n      when:\n        regex: \"a(b\"\n", "routing.rules[0].when.regex", 6, "invalid regex: missing closing ): `a(b`"},
		{"impossible threshold", "routing:\n  rules:\n    - model: gpt-4o\n      when:\n        min_input_tokens: 5000\n        max_input_tokens: 1000\n", "routing.rules[0].when.min_input_tokens", 6, "can never match"},
		{"empty keyword", "routing:\n  rules:\n    - model: gpt-4o\n      when: {keywords: [\"\"]}\n", "routing.rules[0].when.keywords[0]", 5, "empty keyword"},
		{"keywords_in alone", "routing:\n  rules:\n    - model: gpt-4o\n      when: {keywords_in: conversation}\n", "routing.rules[0].when.keywords_in", 5, "neither keywords nor regex"},
		{"budget_below fraction", "budget: {run: {max_tokens: 10}}\nrouting:\n  rules:\n    - model: gpt-4o\n      when: {budget_below: {fraction: 2}}\n", "routing.rules[0].when.budget_below.fraction", 6, "must be a fraction in (0,1], got 2"},
		{"budget_below without budget", "routing:\n  rules:\n    - model: gpt-4o\n      when: {budget_below: {scope: team, fraction: 0.5}}\n", "routing.rules[0].when.budget_below", 5, "budget.team sets neither"},
		{"unreachable rule", "routing:\n  rules:\n    - model: gpt-4o\n    - model: gpt-4o-mini\n      when: {stage: final_answer}\n", "routing.rules[1]", 5, "unreachable: routing.rules[0] has no conditions"},
		{"duplicate rule name", "routing:\n  rules:\n    - {name: a, model: gpt-4o, when: {stage: final_answer}}\n    - {name: a, model: gpt-4o, when: {stage: tool_selection}}\n", "routing.rules[1].name", 5, `rule name "a" is already used by routing.rules[0]`},
		{"regenerate without model", "routing:\n  regenerate_final: {enabled: true}\n", "routing.regenerate_final.model", 3, "required when enabled"},
		{"cascade of one", "routing:\n  cascade: {models: [gpt-4o]}\n", "routing.cascade.models", 3, "at least two models"},
		{"cascade bad check", "routing:\n  cascade:\n    models: [gpt-4o-mini, gpt-4o]\n    checks: [valid_json]\n", "routing.cascade.checks[0]", 5, `invalid value "valid_json"`},
		{"larger window unknown", "routing:\n  larger_window: [gpt-9]\n", "routing.larger_window[0]", 3, `unknown model "gpt-9"`},
		{"fallback cycle", "fallback:\n  models:\n    - gpt-4o\n    - gpt-4o-mini\n    - gpt-4o\n", "fallback.models[2]", 6, `model "gpt-4o" is already listed at fallback.models[0]: each model is visited once (a repeat would be a cycle)`},
		{"fallback unknown", "fallback:\n  models: [gpt-4o, claude-5]\n", "fallback.models[1]", 3, `unknown model "claude-5"`},
		{"fallback to an embeddings model", "fallback:\n  models: [gpt-4o, text-embedding-3-small]\n", "fallback.models[1]", 3, `model "text-embedding-3-small" is an embeddings model: it cannot answer a chat call`},
		{"route to a policy's embeddings model", "models:\n  my-embedder: {provider: local, free: true, embeddings: true}\nrouting:\n  default: my-embedder\n", "routing.default", 5, `model "my-embedder" is an embeddings model`},
		{"fallback bad class", "fallback:\n  on: [rate_limit]\n", "fallback.on[0]", 3, `(did you mean "rate_limited"?)`},
		{"retry delays", "fallback:\n  retry: {max_attempts: 3, base_delay: 20s, max_delay: 10s}\n", "fallback.retry.base_delay", 3, "greater than max_delay"},
		{"breaker ratio", "fallback:\n  breaker: {failure_ratio: 50}\n", "fallback.breaker.failure_ratio", 3, "must be a fraction in (0,1], got 50"},
		{"hedge percentile", "fallback:\n  models: [gpt-4o]\n  hedge: {enabled: true, percentile: 100}\n", "fallback.hedge.percentile", 4, "must be in (0,100)"},
		{"hedge without delay", "fallback:\n  models: [gpt-4o]\n  hedge: {enabled: true}\n", "fallback.hedge", 4, "without delay or percentile"},
		{"bad on_error", "tools: {on_error: ignore}\n", "tools.on_error", 2, `invalid value "ignore": want observe or fail`},
		{"dir store without dir", "tools:\n  artifacts: {store: dir}\n", "tools.artifacts.dir", 3, "required for store dir"},
		{"negative tool timeout", "tools:\n  per_tool:\n    clean_logs: {timeout: -1s}\n", "tools.per_tool.clean_logs.timeout", 4, "must not be negative"},
		{"window fraction", "context: {window_fraction: 1.2}\n", "context.window_fraction", 2, "must be a fraction in (0,1], got 1.2"},
		{"bad strategy", "context: {strategies: [summarize]}\n", "context.strategies[0]", 2, `(did you mean "summarise"?)`},
		{"summarise without model", "context: {strategies: [summarise]}\n", "context.strategies[0]", 2, "summarise needs context.summary_model or routing.default"},
		{"unknown summary model", "context: {summary_model: gpt-4o-mni}\n", "context.summary_model", 2, `unknown model "gpt-4o-mni": not in the price catalog nor in models (did you mean "gpt-4o-mini"?)`},
		{"bad log level", "observability: {log_level: verbose}\n", "observability.log_level", 2, "want debug, info, warn or error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte("version: 1\n"+tt.src), "p.yaml")
			if err == nil {
				t.Fatalf("LoadBytes succeeded, want %s: %s", tt.path, tt.msg)
			}
			for _, pr := range problemsOf(t, err) {
				if pr.Path == tt.path && pr.Line == tt.line && strings.Contains(pr.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("no problem %s (line %d) containing %q; got:\n%v", tt.path, tt.line, tt.msg, err)
		})
	}
}

func TestValidateVersion(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, msg string }{
		{"name: x\n", "version: version is required: add version: 1"},
		{"version: 2\n", "version: unsupported version 2: this build reads version 1"},
	}
	for _, tt := range tests {
		_, err := LoadBytes([]byte(tt.src), "p.yaml")
		if got := problemsOf(t, err); len(got) != 1 || !strings.HasSuffix(got[0].String(), tt.msg) {
			t.Errorf("%q: got %v, want %q", tt.src, err, tt.msg)
		}
	}
}

// TestValidateInCode validates a policy built in Go: there is no file, so
// problems read "path: message", and several are reported together.
func TestValidateInCode(t *testing.T) {
	t.Parallel()
	if err := (&Policy{Version: 1}).Validate(); err != nil {
		t.Errorf("zero policy with version: %v", err)
	}
	p := &Policy{
		Routing: Routing{Default: "gpt-4o", Rules: []Rule{{Model: "nope", When: Condition{Regex: "("}}}},
		Budget:  Budget{WarnAt: []float64{2}},
	}
	err := p.Validate()
	want := "version: version is required: add version: 1\n" +
		"budget.warn_at[0]: must be a fraction in (0,1], got 2\n" +
		"routing.rules[0].model: unknown model \"nope\": not in the price catalog nor in models (declare it under models: with its input_per_1m and output_per_1m, or free: true for a local model)\n" +
		"routing.rules[0].when.regex: invalid regex: missing closing ): `(`"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Problems[0].File != "" || ve.Problems[0].Line != 0 {
		t.Errorf("want problems without positions, got %#v", ve)
	}
}

// TestValidateAfterLoadKeepsPositions edits a loaded policy and validates
// again: problems still point into the file.
func TestValidateAfterLoadKeepsPositions(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte("version: 1\nrouting:\n  default: gpt-4o\n"), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.Routing.Default = "unknown-model"
	got := p.Validate()
	want := `team.yaml:3:3: routing.default: unknown model "unknown-model": not in the price catalog nor in models (declare it under models: with its input_per_1m and output_per_1m, or free: true for a local model)`
	if got == nil || got.Error() != want {
		t.Errorf("Validate() = %v, want %s", got, want)
	}
}

func TestUSDBudgetWithUnpricedModelFails(t *testing.T) {
	t.Parallel()
	const src = `version: 1
models:
  my-llama: {provider: local, context_window: 8192}
routing:
  default: gpt-4o
  rules:
    - when: {stage: tool_selection}
      model: my-llama
budget:
  team: {period: daily, max_usd: 100}
`
	_, err := LoadBytes([]byte(src), "team.yaml")
	got := problemsOf(t, err)
	want := Problem{
		Path: "models.my-llama", File: "team.yaml", Line: 3, Column: 3,
		Msg: `budget.team.max_usd is set but model "my-llama" has no price: add models.my-llama.input_per_1m/output_per_1m (or free: true)`,
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("problems = %#v\nwant %#v", got, want)
	}

	// A price, or free: true, fixes it; so does dropping the USD budget.
	for _, fix := range []string{
		strings.Replace(src, "context_window: 8192", "input_per_1m: 0.05, output_per_1m: 0.10", 1),
		strings.Replace(src, "context_window: 8192", "free: true", 1),
		strings.Replace(src, "max_usd: 100", "max_tokens: 1000000", 1),
	} {
		if _, err := LoadBytes([]byte(fix), "team.yaml"); err != nil {
			t.Errorf("fixed policy fails: %v", err)
		}
	}

	// A run budget on a code-built policy reports the same, without position.
	p := &Policy{Version: 1, Models: map[string]ModelSpec{"my-llama": {}}, Budget: Budget{Run: RunBudget{MaxUSD: Dollar}}}
	err = p.Validate()
	if err == nil || !strings.Contains(err.Error(), `models.my-llama: budget.run.max_usd is set but model "my-llama" has no price`) {
		t.Errorf("Validate() = %v", err)
	}
}
