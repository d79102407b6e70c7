package policies

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestServiceTiersAndLongContextArePriced prices calls of the embedded
// catalog at OpenAI's processing tiers and on both sides of a long-context
// threshold, against figures computed by hand from the providers' price
// lists: a priority call of gpt-5 costs twice a standard one, a flex call
// half, a dated snapshot has its family's tiers, and a Gemini 2.5 Pro call
// of 200,001 input tokens is billed, all its tokens, at the long-context
// rates.
func TestServiceTiersAndLongContextArePriced(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		model string
		u     TokenCounts
		want  string
	}{
		// 1,000 × $1.25/1M + 100 × $10/1M
		{"gpt-5", TokenCounts{Input: 1000, Output: 100}, "$0.00225"},
		{"gpt-5", TokenCounts{Input: 1000, Output: 100, ServiceTier: "default"}, "$0.00225"},
		{"gpt-5", TokenCounts{Input: 1000, Output: 100, ServiceTier: "scale"}, "$0.00225"},      // a tier without rates here, not a premium one: standard
		{"gpt-5", TokenCounts{Input: 1000, Output: 100, ServiceTier: "ultrafast"}, "$0.005625"}, // a premium tier without rates here: 2.5 times standard
		// 1,000 × $2.50/1M + 100 × $20/1M
		{"gpt-5", TokenCounts{Input: 1000, Output: 100, ServiceTier: "priority"}, "$0.0045"},
		{"gpt-5-2025-08-07", TokenCounts{Input: 1000, Output: 100, ServiceTier: "priority"}, "$0.0045"},
		// 600 × $0.625/1M + 400 cached × $0.0625/1M + 100 × $5/1M
		{"gpt-5", TokenCounts{Input: 1000, CachedInput: 400, Output: 100, ServiceTier: "flex"}, "$0.000900"},
		// 1,000 × $4.25/1M + 100 × $17/1M
		{"gpt-4o", TokenCounts{Input: 1000, Output: 100, ServiceTier: "priority"}, "$0.00595"},
		// 200,000 × $1.25/1M + 1,000 × $10/1M: at the threshold, the standard rates
		{"gemini-2.5-pro", TokenCounts{Input: 200_000, Output: 1000}, "$0.26"},
		// 200,001 × $2.50/1M + 1,000 × $15/1M: above it, all tokens at the long-context rates
		{"gemini-2.5-pro", TokenCounts{Input: 200_001, Output: 1000}, "$0.5150025"},
		// gpt-5.4 at 272,000 input tokens: 272,000 × $2.50/1M + 1,000 × $15/1M
		{"gpt-5.4", TokenCounts{Input: 272_000, Output: 1000}, "$0.695"},
		// above 272K, all tokens at 2× input and 1.5× output: 172,001 × $5/1M
		// + 100,000 cached × $0.50/1M + 1,000 × $22.50/1M
		{"gpt-5.4-2026-03-05", TokenCounts{Input: 272_001, CachedInput: 100_000, Output: 1000}, "$0.932505"},
		// gpt-5.5 above 272K: 272,001 × $10/1M + 1,000 × $45/1M
		{"gpt-5.5", TokenCounts{Input: 272_001, Output: 1000}, "$2.76501"},
		// OpenAI's priority rates: 1,000 × $5/1M + 100 × $30/1M (gpt-5.4),
		// 1,000 × $1.50/1M + 100 × $9/1M (gpt-5.4-mini), 1,000 × $12.50/1M
		// + 100 × $75/1M (gpt-5.5)
		{"gpt-5.4", TokenCounts{Input: 1000, Output: 100, ServiceTier: "priority"}, "$0.008"},
		{"gpt-5.4-mini-2026-03-17", TokenCounts{Input: 1000, Output: 100, ServiceTier: "priority"}, "$0.0024"},
		{"gpt-5.5", TokenCounts{Input: 1000, Output: 100, ServiceTier: "priority"}, "$0.02"},
		// Gemini 3.1 Pro Preview: 200,000 × $2/1M + 1,000 × $12/1M at the
		// threshold; 200,001 × $4/1M + 1,000 × $18/1M above it
		{"gemini-3.1-pro-preview", TokenCounts{Input: 200_000, Output: 1000}, "$0.412"},
		{"gemini-3.1-pro-preview", TokenCounts{Input: 200_001, Output: 1000}, "$0.818004"},
		// Claude Opus 4.6 and Sonnet 4.6 bill their whole 1M context at the
		// standard rates: 300,000 × $5/1M + 1,000 × $25/1M, and 100,000
		// cached × $0.30/1M + 10,000 written × $3.75/1M + 190,000 × $3/1M
		// + 1,000 × $15/1M
		{"claude-opus-4-6", TokenCounts{Input: 300_000, Output: 1000}, "$1.525"},
		{"claude-sonnet-4-6", TokenCounts{Input: 300_000, CachedInput: 100_000, CacheWrite: 10_000, Output: 1000}, "$0.6525"},
		// 300,000: 100,000 cached × $0.60/1M + 10,000 written × $7.50/1M + 190,000 × $6/1M + 1,000 × $22.50/1M
		{"claude-sonnet-4-5", TokenCounts{Input: 300_000, CachedInput: 100_000, CacheWrite: 10_000, Output: 1000}, "$1.2975"},
	} {
		spec, ok := (*Policy)(nil).Model(tt.model)
		if !ok {
			t.Fatalf("%s is not in the catalog", tt.model)
		}
		if got := spec.Cost(tt.u).String(); trimZeros(got) != trimZeros(tt.want) {
			t.Errorf("%s %+v: Cost = %s, want %s", tt.model, tt.u, got, tt.want)
		}
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// TestPolicyOverridesAServiceTier: a policy's models entry replaces the
// catalog's rates of the tiers it names and keeps the others, and adds a
// long-context rule to a model that has none.
func TestPolicyOverridesAServiceTier(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte(`version: 1
models:
  gpt-5:
    service_tiers:
      priority: {input_per_1m: 3.00, output_per_1m: 24.00}
  gpt-4.1:
    long_context: {above_input_tokens: 128000, input_per_1m: 4.00}
`), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := p.Model("gpt-5")
	if got := spec.Rates("priority", 10); got != (Rates{InputPer1M: 3 * Dollar, CachedInputPer1M: 125_000, OutputPer1M: 24 * Dollar}) {
		t.Errorf("priority rates %+v: want the policy's input and output, the standard cached rate (the policy's tier sets none)", got)
	}
	if got := spec.Rates("flex", 10); got.InputPer1M != 625_000 || got.OutputPer1M != 5*Dollar {
		t.Errorf("flex rates %+v: want the catalog's", got)
	}
	spec, _ = p.Model("gpt-4.1")
	if got := spec.Rates("", 128_001); got.InputPer1M != 4*Dollar || got.OutputPer1M != 8*Dollar {
		t.Errorf("long-context rates %+v: want input $4 and the standard output $8", got)
	}
	if got := spec.Rates("priority", 128_001); got.InputPer1M != 4*Dollar || got.OutputPer1M != 14*Dollar {
		t.Errorf("priority long-context rates %+v: want the model's rule over the tier's rates", got)
	}
}

// TestServiceTierMistakesAreListed: every mistake of a tier or a
// long-context rule is one problem with its line and a way to fix it.
func TestServiceTierMistakesAreListed(t *testing.T) {
	t.Parallel()
	_, err := LoadBytes([]byte(`version: 1
models:
  gpt-5:
    long_context: {input_per_1m: 2.50}
    service_tiers:
      default: {input_per_1m: 1.00}
      flex: {}
      priority: {input_per_1m: -1, long_context: {above_input_tokens: 100}}
  local:
    free: true
    service_tiers:
      fast: {input_per_1m: 1}
`), "team.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	for _, want := range []string{
		`team.yaml:4:5: models.gpt-5.long_context.above_input_tokens: long_context sets rates but no threshold`,
		`team.yaml:6:7: models.gpt-5.service_tiers.default: "default" is not a tier to price`,
		`team.yaml:7:7: models.gpt-5.service_tiers.flex: service tier "flex" sets no rate`,
		`team.yaml:8:18: models.gpt-5.service_tiers.priority.input_per_1m: must not be negative`,
		`team.yaml:8:36: models.gpt-5.service_tiers.priority.long_context: long_context sets a threshold but no rate`,
		`team.yaml:10:5: models.local.free: free is set together with prices`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems\n%v\nlack\n%s", err, want)
		}
	}
	if len(ve.Problems) != 6 {
		t.Errorf("%d problems, want 6:\n%v", len(ve.Problems), err)
	}
}

// TestLiteLLMTiersAndLongContextAreImported maps LiteLLM's tier and
// long-context fields onto service_tiers and long_context, exactly, and
// skips, with its reason, a model whose long-context rates have two
// thresholds.
func TestLiteLLMTiersAndLongContextAreImported(t *testing.T) {
	t.Parallel()
	im, err := ImportLiteLLM(strings.NewReader(`{
  "gpt-x": {"litellm_provider": "openai", "mode": "chat",
    "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1.5e-05, "cache_read_input_token_cost": 2.5e-07,
    "input_cost_per_token_priority": 5e-06, "output_cost_per_token_priority": 3e-05, "cache_read_input_token_cost_priority": 5e-07,
    "input_cost_per_token_flex": 1.25e-06, "output_cost_per_token_flex": 7.5e-06,
    "input_cost_per_token_above_272k_tokens": 5e-06, "output_cost_per_token_above_272k_tokens": 2.25e-05,
    "input_cost_per_token_above_272k_tokens_priority": 1e-05,
    "input_cost_per_token_batches": 1.25e-06, "supports_service_tier": true},
  "two-thresholds": {"litellm_provider": "vertex_ai", "mode": "chat",
    "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
    "input_cost_per_token_above_128k_tokens": 2e-06, "input_cost_per_token_above_200k_tokens": 3e-06}
}`))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := im.Models["gpt-x"]
	if !ok {
		t.Fatalf("gpt-x not imported: %+v", im.Skipped)
	}
	if m.LongContext != (LongContextPrices{AboveInputTokens: 272_000, InputPer1M: 5 * Dollar, OutputPer1M: 22_500_000}) {
		t.Errorf("long_context = %+v", m.LongContext)
	}
	if got := m.ServiceTiers["priority"]; got != (ServiceTierPrices{InputPer1M: 5 * Dollar, OutputPer1M: 30 * Dollar, CachedInputPer1M: 500_000,
		LongContext: LongContextPrices{AboveInputTokens: 272_000, InputPer1M: 10 * Dollar}}) {
		t.Errorf("priority = %+v", got)
	}
	if got := m.ServiceTiers["flex"]; got != (ServiceTierPrices{InputPer1M: 1_250_000, OutputPer1M: 7_500_000}) {
		t.Errorf("flex = %+v", got)
	}
	if len(m.ServiceTiers) != 2 {
		t.Errorf("tiers %v: want flex and priority only (batches are not a service tier)", m.ServiceTiers)
	}
	if _, ok := im.Models["two-thresholds"]; ok || len(im.Skipped) != 1 || !strings.Contains(im.Skipped[0].Reason, "more than one threshold") {
		t.Errorf("two-thresholds imported or skipped for another reason: %+v", im.Skipped)
	}
	// The import renders as a policy file that loads with the same rates.
	p, err := LoadBytes(im.YAML("imported"), "imported.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := p.Model("gpt-x"); spec.Rates("priority", 300_000).InputPer1M != 10*Dollar {
		t.Errorf("loaded priority long-context input rate %s, want $10", spec.Rates("priority", 300_000).InputPer1M)
	}
}

// TestRouterPrefixedNamesArePriced: a router's name for a provider's
// model (OpenRouter's "openai/gpt-4o", LiteLLM's "gemini/gemini-2.5-pro")
// is priced as the provider's model when neither the catalog nor the
// policy knows the name itself, dated snapshots and tiers included; a
// name the policy lists with its prefix keeps its own entry.
func TestRouterPrefixedNamesArePriced(t *testing.T) {
	p, err := LoadBytes([]byte("version: 1\nmodels:\n  openrouter/my-model: {input_per_1m: 1, output_per_1m: 2}\n  anthropic/claude-sonnet-4-5: {input_per_1m: 9}\n"), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"openai/gpt-4o":                       "gpt-4o",
		"openrouter/openai/gpt-4o-2024-08-06": "gpt-4o",
		"gemini/gemini-2.5-pro":               "gemini-2.5-pro",
		"openai/gpt-5":                        "gpt-5",
	} {
		got, ok := p.Model(name)
		base, _ := p.Model(want)
		if !ok || !reflect.DeepEqual(got, base) {
			t.Errorf("%s = %+v %v, want %s's %+v", name, got, ok, want, base)
		}
	}
	if got, _ := p.Model("anthropic/claude-sonnet-4-5"); got.InputPer1M != 9*Dollar {
		t.Errorf("a prefixed name the policy lists: input %s, want its own $9", got.InputPer1M)
	}
	if got, ok := p.Model("openrouter/my-model"); !ok || got.OutputPer1M != 2*Dollar {
		t.Errorf("openrouter/my-model = %+v %v", got, ok)
	}
	for _, name := range []string{"openai/", "unknown/model", "/"} {
		if _, ok := p.Model(name); ok {
			t.Errorf("%q is priced, want unknown", name)
		}
	}
	if n := testing.AllocsPerRun(100, func() { p.Model("openai/gpt-4o") }); n != 0 {
		t.Errorf("Model allocates %v times", n)
	}
}

// TestToolCallFees: a policy's tool_calls replace the catalog's fee of
// the same tool and keep the others; a negative fee or a fee without a
// tool's name is a problem with its line and field.
func TestToolCallFees(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte("version: 1\nmodels:\n  gpt-4o-mini: {tool_calls: {web_search: 0.005}}\n"), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := p.Model("gpt-4o-mini")
	cat, _ := (*Policy)(nil).Model("gpt-4o-mini")
	if spec.ToolCalls["web_search"] != 5000 || spec.ToolCalls["file_search"] != 2500 || spec.ToolCalls["web_search_preview"] != 25000 ||
		cat.ToolCalls["web_search"] != 10000 || cat.ToolCalls["code_interpreter"] != 30000 {
		t.Fatalf("fees %v over the catalog's %v", spec.ToolCalls, cat.ToolCalls)
	}
	if g, _ := (*Policy)(nil).Model("gpt-5-2025-08-07"); g.ToolCalls["web_search_preview"] != 10000 {
		t.Fatalf("gpt-5's fees %v: a reasoning model's web search preview is $0.01", g.ToolCalls)
	}
	for file, want := range map[string]string{
		"version: 1\nmodels:\n  gpt-4o:\n    tool_calls: {web_search: -0.01, file_search: 0.0025}\n": `team.yaml:4:18: models.gpt-4o.tool_calls.web_search: must not be negative`,
		"version: 1\nmodels:\n  gpt-4o:\n    tool_calls: {\"\": 1}\n":                                `team.yaml:4:18: models.gpt-4o.tool_calls: keys must be non-empty plain strings`,
	} {
		if _, err := LoadBytes([]byte(file), "team.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems\n%v\nlack\n%s", err, want)
		}
	}
}

// TestRequestFees: a model's request_fee is billed with each request's
// tokens (Cost), a model priced by its fee alone has a price, a policy's
// fee overlays a catalog model and keeps its rates, a negative fee is a
// problem with its line and field, and LiteLLM's input_cost_per_request
// is imported as request_fee and written back.
func TestRequestFees(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte("version: 1\nmodels:\n  sonar: {provider: perplexity, input_per_1m: 1, output_per_1m: 1, request_fee: 0.005}\n"+
		"  gpt-4o-search-preview: {request_fee: 0.025}\n  per-call: {request_fee: 0.01}\n  gpt-4o: {request_fee: 0.025}\n"), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sonar, _ := p.Model("sonar")
	if got := sonar.Cost(TokenCounts{Input: 1000, Output: 100}); got != 6_100_000_000 {
		t.Errorf("sonar, 1,000 + 100 tokens: %s, want $0.0061 (tokens and the fee)", got)
	}
	if got := sonar.Cost(TokenCounts{}); got != 5_000_000_000 {
		t.Errorf("sonar, no tokens: %s, want the fee alone", got)
	}
	if perCall, _ := p.Model("per-call"); !perCall.HasPrice() || perCall.Cost(TokenCounts{Input: 10}) != 10_000_000_000 {
		t.Errorf("a model priced by its fee alone: priced %v, cost %s", perCall.HasPrice(), perCall.Cost(TokenCounts{Input: 10}))
	}
	g, _ := p.Model("gpt-4o")
	cat, _ := (*Policy)(nil).Model("gpt-4o")
	if g.InputPer1M != cat.InputPer1M || g.RequestFee != 25_000 || cat.RequestFee != 0 ||
		g.Cost(TokenCounts{Input: 1000}) != cat.Cost(TokenCounts{Input: 1000})+25_000_000_000 {
		t.Errorf("gpt-4o with a fee: %+v over the catalog's %+v", g, cat)
	}
	for file, want := range map[string]string{
		"version: 1\nmodels:\n  sonar:\n    request_fee: -0.005\n":    `team.yaml:4:5: models.sonar.request_fee: must not be negative`,
		"version: 1\nmodels:\n  m: {free: true, request_fee: 0.01}\n": `models.m.free: free is set together with prices`,
	} {
		if _, err := LoadBytes([]byte(file), "team.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems\n%v\nlack\n%s", err, want)
		}
	}
	im, err := ImportLiteLLM(strings.NewReader(`{"perplexity/sonar": {"litellm_provider": "perplexity", "mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "input_cost_per_request": 0.005},
		"odd": {"mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "input_cost_per_request": 1e-9}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m := im.Models["perplexity/sonar"]; m.RequestFee != 5000 || m.InputPer1M != Dollar {
		t.Errorf("imported %+v", m)
	}
	if len(im.Skipped) != 1 || im.Skipped[0].Model != "odd" || !strings.Contains(im.Skipped[0].Reason, "input_cost_per_request") {
		t.Errorf("skipped %+v, want odd for its fee finer than a micro-dollar", im.Skipped)
	}
	back, err := LoadBytes(im.YAML("imported"), "imported.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := back.Model("perplexity/sonar"); m.RequestFee != 5000 {
		t.Errorf("written back: %+v", m)
	}
}
