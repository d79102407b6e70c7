package policies

import (
	"reflect"
	"testing"
)

func TestCatalog(t *testing.T) {
	t.Parallel()
	c := defaultCatalog()
	if c.date != CatalogDate {
		t.Errorf("catalog.yaml date %q, CatalogDate %q", c.date, CatalogDate)
	}
	tests := []struct {
		name                string
		in, out, cached, wr USD
		window, maxOut      int64
		encoding            string
	}{
		{"gpt-4o", 2_500_000, 10_000_000, 1_250_000, 0, 128_000, 16_384, "o200k_base"},
		{"gpt-4o-mini", 150_000, 600_000, 75_000, 0, 128_000, 16_384, "o200k_base"},
		{"gpt-4.1", 2_000_000, 8_000_000, 500_000, 0, 1_047_576, 32_768, "o200k_base"},
		{"gpt-4.1-mini", 400_000, 1_600_000, 100_000, 0, 1_047_576, 32_768, "o200k_base"},
		{"gpt-4.1-nano", 100_000, 400_000, 25_000, 0, 1_047_576, 32_768, "o200k_base"},
		{"o3", 2_000_000, 8_000_000, 500_000, 0, 200_000, 100_000, "o200k_base"},
		{"o4-mini", 1_100_000, 4_400_000, 275_000, 0, 200_000, 100_000, "o200k_base"},
		{"gpt-4-turbo", 10_000_000, 30_000_000, 0, 0, 128_000, 4096, "cl100k_base"},
		{"gpt-3.5-turbo", 500_000, 1_500_000, 0, 0, 16_385, 4096, "cl100k_base"},
		{"claude-sonnet-4", 3_000_000, 15_000_000, 300_000, 3_750_000, 200_000, 64_000, ""},
		{"claude-3-7-sonnet", 3_000_000, 15_000_000, 300_000, 3_750_000, 200_000, 64_000, ""},
		{"claude-3-5-haiku", 800_000, 4_000_000, 80_000, 1_000_000, 200_000, 8192, ""},
		{"claude-haiku-4-5", 1_000_000, 5_000_000, 100_000, 1_250_000, 200_000, 64_000, ""},
		{"claude-opus-4", 15_000_000, 75_000_000, 1_500_000, 18_750_000, 200_000, 32_000, ""},
		{"gemini-2.5-flash", 300_000, 2_500_000, 75_000, 0, 1_048_576, 65_536, ""},
		{"gemini-2.5-pro", 1_250_000, 10_000_000, 310_000, 0, 1_048_576, 65_536, ""},
		{"gemini-2.0-flash", 100_000, 400_000, 25_000, 0, 1_048_576, 8192, ""},
		{"gpt-5.1", 1_250_000, 10_000_000, 125_000, 0, 400_000, 128_000, "o200k_base"},
		{"gpt-5.2", 1_750_000, 14_000_000, 175_000, 0, 400_000, 128_000, "o200k_base"},
		{"claude-opus-4-5", 5_000_000, 25_000_000, 500_000, 6_250_000, 200_000, 64_000, ""},
		{"gemini-3-pro-preview", 2_000_000, 12_000_000, 200_000, 0, 1_048_576, 65_536, ""},
		// OpenAI's 2026 models (developers.openai.com/api/docs/models).
		{"gpt-5.5", 5_000_000, 30_000_000, 500_000, 0, 1_050_000, 128_000, "o200k_base"},
		{"gpt-5.4", 2_500_000, 15_000_000, 250_000, 0, 1_050_000, 128_000, "o200k_base"},
		{"gpt-5.4-mini", 750_000, 4_500_000, 75_000, 0, 400_000, 128_000, "o200k_base"},
		{"gpt-5.4-nano", 200_000, 1_250_000, 20_000, 0, 400_000, 128_000, "o200k_base"},
		{"gpt-5.3-codex", 1_750_000, 14_000_000, 175_000, 0, 400_000, 128_000, "o200k_base"},
		// Anthropic's 2026 models (platform.claude.com pricing and model pages).
		{"claude-opus-4-6", 5_000_000, 25_000_000, 500_000, 6_250_000, 1_000_000, 128_000, ""},
		{"claude-sonnet-4-6", 3_000_000, 15_000_000, 300_000, 3_750_000, 1_000_000, 128_000, ""},
		{"claude-opus-4-7", 5_000_000, 25_000_000, 500_000, 6_250_000, 1_000_000, 128_000, ""},
		{"claude-opus-4-8", 5_000_000, 25_000_000, 500_000, 6_250_000, 1_000_000, 128_000, ""},
		{"claude-opus-5", 5_000_000, 25_000_000, 500_000, 6_250_000, 1_000_000, 128_000, ""},
		// Google's Gemini 3 models (ai.google.dev/gemini-api/docs/pricing).
		{"gemini-3-flash-preview", 500_000, 3_000_000, 50_000, 0, 1_048_576, 65_536, ""},
		{"gemini-3.1-pro-preview", 2_000_000, 12_000_000, 200_000, 0, 1_048_576, 65_536, ""},
		{"gemini-3.1-flash-lite", 250_000, 1_500_000, 25_000, 0, 1_048_576, 65_536, ""},
	}
	for _, tt := range tests {
		m, ok := c.models[tt.name]
		if !ok {
			t.Errorf("%s missing from the catalog", tt.name)
			continue
		}
		got := [7]any{m.InputPer1M, m.OutputPer1M, m.CachedInputPer1M, m.CacheWritePer1M, m.ContextWindow, m.MaxOutputTokens, m.Encoding}
		want := [7]any{tt.in, tt.out, tt.cached, tt.wr, tt.window, tt.maxOut, tt.encoding}
		if got != want {
			t.Errorf("%s = %v, want %v", tt.name, got, want)
		}
	}
	for name, m := range c.models {
		if !m.HasPrice() || m.Provider == "" || m.ContextWindow == 0 || m.MaxOutputTokens == 0 && !m.Embeddings {
			t.Errorf("catalog entry %s incomplete: %+v", name, m)
		}
		if m.Embeddings && (m.OutputPer1M != 0 || m.MaxOutputTokens != 0 || m.Encoding != "cl100k_base") {
			t.Errorf("embeddings model %s with an output or another encoding: %+v", name, m)
		}
	}
	// OpenAI's embeddings models, priced by their input (the gateway
	// charges embeddings calls at these prices).
	for name, in := range map[string]USD{"text-embedding-3-small": 20_000, "text-embedding-3-large": 130_000, "text-embedding-ada-002": 100_000} {
		if m := c.models[name]; !m.Embeddings || m.InputPer1M != in || m.ContextWindow != 8191 {
			t.Errorf("%s = %+v, want an embeddings model at %s per 1M input tokens, 8,191 tokens an input", name, m, in)
		}
	}
	// DefaultCatalog is a copy.
	cp := DefaultCatalog()
	delete(cp, "gpt-4o")
	if _, ok := (*Policy)(nil).Model("gpt-4o"); !ok {
		t.Error("DefaultCatalog shares its map")
	}
}

func TestModelLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // catalog entry expected, "" = unknown
	}{
		{"gpt-4o", "gpt-4o"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"gpt-4.1-2025-04-14", "gpt-4.1"},
		{"gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"},
		{"gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"},
		{"gpt-4-turbo-2024-04-09", "gpt-4-turbo"},
		{"gpt-4-turbo-preview", "gpt-4-turbo"},
		{"gpt-4-0613", "gpt-4"},
		{"gpt-3.5-turbo-0125", "gpt-3.5-turbo"},
		{"o3-2025-04-16", "o3"},
		{"gpt-5.1", "gpt-5.1"},
		{"gpt-5.1-2025-11-13", "gpt-5.1"},
		{"gpt-5.2-2025-12-11", "gpt-5.2"},
		{"gpt-5.1-codex", ""},
		{"gpt-5.4-2026-03-05", "gpt-5.4"},
		{"gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"}, // gpt-5.4-mini's, not gpt-5.4's
		{"gpt-5.4-nano-2026-03-17", "gpt-5.4-nano"},
		{"gpt-5.5-2026-04-23", "gpt-5.5"},
		{"gpt-5.3-codex", "gpt-5.3-codex"},
		{"gpt-5.4-pro", ""},         // a different model at its own price, not gpt-5.4
		{"gpt-5.3-codex-spark", ""}, // ditto
		// Claude 4.6 and later are models of their own, not snapshots of
		// claude-opus-4 ($15 / $75) or claude-sonnet-4 (premium above 200K).
		{"claude-opus-4-6", "claude-opus-4-6"},
		{"claude-sonnet-4-6", "claude-sonnet-4-6"},
		{"claude-opus-4-7", "claude-opus-4-7"},
		{"claude-opus-4-8", "claude-opus-4-8"},
		{"claude-opus-5", "claude-opus-5"},
		{"anthropic/claude-opus-4-6", "claude-opus-4-6"},
		// A minor version the catalog does not list is a model of its own
		// at its own price, not a snapshot of its major version: Claude
		// Opus 5.5 is $4 / $20, not claude-opus-5's $5 / $25.
		{"claude-opus-5-5", ""},
		{"claude-sonnet-4-7", ""},
		{"claude-opus-4-6-20260205", "claude-opus-4-6"}, // a dated snapshot still is
		{"claude-opus-4-5-20251101", "claude-opus-4-5"},
		{"o3-mini-2025-01-31", "o3-mini"},
		{"o4-mini-2025-04-16", "o4-mini"},
		{"claude-sonnet-4-20250514", "claude-sonnet-4"},
		{"claude-sonnet-4@20250514", "claude-sonnet-4"},
		{"claude-3-7-sonnet-latest", "claude-3-7-sonnet"},
		{"claude-3-5-haiku-20241022", "claude-3-5-haiku"},
		{"claude-haiku-4-5-20251001", "claude-haiku-4-5"},
		{"claude-opus-4-1-20250805", "claude-opus-4-1"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"gpt-5-2025-08-07", "gpt-5"},
		{"gpt-5-mini-2025-08-07", "gpt-5-mini"},
		{"gpt-4o-2024-05-13", "gpt-4o-2024-05-13"}, // its own, higher price
		{"o3-pro-2025-06-10", "o3-pro"},
		{"gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"},
		{"gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"},
		{"gemini-2.0-flash-001", "gemini-2.0-flash"},
		{"gemini-3-flash-preview", "gemini-3-flash-preview"},
		{"gemini-3.1-pro-preview", "gemini-3.1-pro-preview"},
		{"gemini-3.1-flash-lite-preview", "gemini-3.1-flash-lite"}, // the preview, at the same price
		{"gemini-3.1-pro-preview-customtools", ""},                 // an endpoint not priced here
		{"o3-deep-research", ""},                                   // a different model, not an o3 snapshot
		{"gpt-4o-realtime-preview", ""},                            // ditto
		{"gpt-4omni", ""},
		{"gpt-4o-", ""},
		{"", ""},
		{"llama-3", ""},
	}
	cat := defaultCatalog().models
	for _, tt := range tests {
		got, ok := (*Policy)(nil).Model(tt.name)
		if tt.want == "" {
			if ok {
				t.Errorf("Model(%q) = %+v, want unknown", tt.name, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, cat[tt.want]) {
			t.Errorf("Model(%q) = %+v, %v; want %s", tt.name, got, ok, tt.want)
		}
	}
}

func TestPolicyModelOverlay(t *testing.T) {
	t.Parallel()
	p := &Policy{Models: map[string]ModelSpec{
		"gpt-4o":            {InputPer1M: 2_000_000},                  // discount on one field
		"gpt-4o-2024-11-20": {OutputPer1M: 9_000_000},                 // more specific than the catalog
		"my-llama":          {Provider: "local", Free: true},          // new model
		"gpt":               {InputPer1M: 1},                          // never a snapshot base of gpt-4o-mini
		"claude-sonnet-4":   {ContextWindow: 1_000_000, Encoding: ""}, // 1M context beta
	}}
	cat := DefaultCatalog()
	want4o := cat["gpt-4o"]
	want4o.InputPer1M = 2_000_000
	want1120 := cat["gpt-4o"]
	want1120.OutputPer1M = 9_000_000
	wantSonnet := cat["claude-sonnet-4"]
	wantSonnet.ContextWindow = 1_000_000
	tests := []struct {
		name string
		want ModelSpec
	}{
		{"gpt-4o", want4o},
		{"gpt-4o-2024-08-06", want4o},
		{"gpt-4o-2024-11-20", want1120},
		{"gpt-4o-mini", cat["gpt-4o-mini"]},
		{"gpt-4o-mini-2024-07-18", cat["gpt-4o-mini"]},
		{"my-llama", ModelSpec{Provider: "local", Free: true}},
		{"my-llama-v2", ModelSpec{Provider: "local", Free: true}},
		{"claude-sonnet-4-20250514", wantSonnet},
	}
	for _, tt := range tests {
		got, ok := p.Model(tt.name)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Model(%q) = %+v, %v; want %+v", tt.name, got, ok, tt.want)
		}
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	cat := DefaultCatalog()
	tests := []struct {
		name  string
		model ModelSpec
		u     TokenCounts
		want  PicoUSD // exact
	}{
		{
			// 6000 × $2.50 + 4000 × $1.25 + 1000 × $10 per 1M
			// = $0.015 + $0.005 + $0.010 = $0.030; the 300 reasoning tokens
			// are part of the 1000 output tokens.
			"gpt-4o cached and reasoning", cat["gpt-4o"],
			TokenCounts{Input: 10_000, CachedInput: 4_000, Output: 1_000, Reasoning: 300},
			30_000 * PicoPerMicro,
		},
		{
			// 1000 × $3 + 2000 × $0.30 + 500 × $3.75 + 100 × $15 per 1M
			// = 3000 + 600 + 1875 + 1500 µ$.
			"claude cache read and write", cat["claude-sonnet-4"],
			TokenCounts{Input: 3_500, CachedInput: 2_000, CacheWrite: 500, Output: 100},
			6_975 * PicoPerMicro,
		},
		{
			// No cached price: cached tokens are billed as input.
			"gpt-4-turbo no cache price", cat["gpt-4-turbo"],
			TokenCounts{Input: 1_000, CachedInput: 1_000},
			10_000 * PicoPerMicro,
		},
		// One token at $0.15/1M is 0.15 µ$, exactly.
		{"one token", cat["gpt-4o-mini"], TokenCounts{Input: 1}, 150_000},
		// No component rounds: 0.15 + 0.075 + 0.6 µ$.
		{"no rounding per component", cat["gpt-4o-mini"], TokenCounts{Input: 2, CachedInput: 1, Output: 1}, 825_000},
		// The call: 240 input, 34 output tokens on gpt-4o-mini.
		{"issue example", cat["gpt-4o-mini"], TokenCounts{Input: 240, Output: 34}, 56_400_000},
		{"zero", cat["gpt-4o"], TokenCounts{}, 0},
		{"negatives count as zero", cat["gpt-4o"], TokenCounts{Input: -5, Output: -1}, 0},
		{"cached capped at input", cat["gpt-4o"], TokenCounts{Input: 1_000_000, CachedInput: 2_000_000}, 1_250_000 * PicoPerMicro},
		{"free", ModelSpec{Free: true}, TokenCounts{Input: 1e9, Output: 1e9}, 0},
		{"saturates", ModelSpec{InputPer1M: 1 << 62}, TokenCounts{Input: 1 << 62}, 1<<63 - 1},
		{"saturates in sum", ModelSpec{InputPer1M: 1 << 61, OutputPer1M: 1 << 61}, TokenCounts{Input: 5e6, Output: 5e6}, 1<<63 - 1},
	}
	for _, tt := range tests {
		if got := tt.model.Cost(tt.u); got != tt.want {
			t.Errorf("%s: Cost = %s (%d p$), want %s (%d p$)", tt.name, got, int64(got), tt.want, int64(tt.want))
		}
	}
	if got := cat["gpt-4o"].Cost(TokenCounts{Input: 10_000, CachedInput: 4_000, Output: 1_000, Reasoning: 300}).String(); got != "$0.03" {
		t.Errorf("String = %s", got)
	}
}

func BenchmarkModelExact(b *testing.B) {
	p := Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.Model("gpt-4o-mini"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkModelSnapshot(b *testing.B) {
	p := Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.Model("gpt-4o-mini-2024-07-18"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkCost(b *testing.B) {
	m, _ := (*Policy)(nil).Model("gpt-4o")
	u := TokenCounts{Input: 10_000, CachedInput: 4_000, Output: 1_000, Reasoning: 300}
	b.ReportAllocs()
	for b.Loop() {
		if m.Cost(u) != 30_000*PicoPerMicro {
			b.Fatal("wrong cost")
		}
	}
}

func TestModelExactDoesNotAllocate(t *testing.T) {
	p := Default()
	p.Models = map[string]ModelSpec{"gpt-4o": {InputPer1M: 1}}
	allocs := testing.AllocsPerRun(100, func() {
		p.Model("gpt-4o")
		p.Model("gpt-4o-mini-2024-07-18")
	})
	if allocs != 0 {
		t.Errorf("Model allocates %v times", allocs)
	}
}

func TestPolicyOwnsPrice(t *testing.T) {
	t.Parallel()
	p := &Policy{Models: map[string]ModelSpec{
		"gpt-4o":            {InputPer1M: 2_000_000}, // a contract price
		"gpt-4o-2024-11-20": {OutputPer1M: 9_000_000},
		"azure-prod":        {InputPer1M: 1_000_000, OutputPer1M: 4_000_000},
		"my-llama":          {Free: true},
		"claude-sonnet-4":   {ContextWindow: 1_000_000}, // no price of its own
	}}
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"gpt-4o", true},
		{"gpt-4o-2024-08-06", true},  // a snapshot the catalog lists under gpt-4o only: the policy's entry
		{"gpt-4o-2024-05-13", false}, // the catalog lists it: more specific than the policy's gpt-4o
		{"gpt-4o-2024-11-20", true},
		{"openai/gpt-4o", true},
		{"azure-prod", true},
		{"my-llama-v2", true},
		{"claude-sonnet-4", false},
		{"gpt-4o-mini", false},
		{"unknown", false},
	} {
		if got := p.OwnsPrice(tt.name); got != tt.want {
			t.Errorf("OwnsPrice(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if (*Policy)(nil).OwnsPrice("gpt-4o") {
		t.Error("a nil policy owns a price")
	}
}
