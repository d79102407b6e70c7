package policies_test

// The embedded catalog against OpenAI's published prices (USD per 1M
// tokens), for the names a provider's answer carries.

import (
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

// TestCatalogSnapshotsWithTheirOwnPrice: dated snapshots whose list
// price differs from their family's current model are listed with their
// own price, not resolved by the snapshot rule to the family's (as
// gpt-4o-2024-05-13 is).
func TestCatalogSnapshotsWithTheirOwnPrice(t *testing.T) {
	for _, tt := range []struct {
		model   string
		in, out policies.USD // micro-dollars per 1M tokens
		audioIn policies.USD
	}{
		// GPT-4 Turbo previews: $10 / $30, not gpt-4's $30 / $60.
		{model: "gpt-4-1106-preview", in: 10_000_000, out: 30_000_000},
		{model: "gpt-4-0125-preview", in: 10_000_000, out: 30_000_000},
		// Older GPT-3.5 Turbo snapshots: $1 / $2 and $1.50 / $2, not $0.50 / $1.50.
		{model: "gpt-3.5-turbo-1106", in: 1_000_000, out: 2_000_000},
		{model: "gpt-3.5-turbo-0613", in: 1_500_000, out: 2_000_000},
		// The first audio preview: audio at $100 / $200, not $40 / $80.
		{model: "gpt-4o-audio-preview-2024-10-01", in: 2_500_000, out: 10_000_000, audioIn: 100_000_000},
	} {
		spec, ok := (*policies.Policy)(nil).Model(tt.model)
		if !ok {
			t.Errorf("%s: unknown", tt.model)
			continue
		}
		if spec.InputPer1M != tt.in || spec.OutputPer1M != tt.out || tt.audioIn != 0 && spec.AudioInputPer1M != tt.audioIn {
			t.Errorf("%s priced %s / %s (audio in %s), OpenAI's list price is %s / %s (audio in %s)", tt.model,
				spec.InputPer1M, spec.OutputPer1M, spec.AudioInputPer1M, tt.in, tt.out, tt.audioIn)
		}
	}
}

// TestCatalogServiceTiersOfGPT51: gpt-5.1 is sold at the same
// priority ($2.50 / $0.25 cached / $20) and flex ($0.625 / $0.0625 /
// $5) rates as gpt-5: an answer billed at either tier is charged that
// tier's rates, not the standard ones.
func TestCatalogServiceTiersOfGPT51(t *testing.T) {
	spec, ok := (*policies.Policy)(nil).Model("gpt-5.1-2025-11-13")
	if !ok {
		t.Fatal("gpt-5.1-2025-11-13 unknown")
	}
	u := policies.TokenCounts{Input: 1_000_000, Output: 1_000_000}
	u.ServiceTier = "priority"
	if got, want := spec.Cost(u), (2_500_000+20_000_000)*policies.PicoUSD(1_000_000); got != want {
		t.Errorf("1M in + 1M out of gpt-5.1 at priority cost %s, OpenAI bills %s", got, want)
	}
	u.ServiceTier = "flex"
	if got, want := spec.Cost(u), (625_000+5_000_000)*policies.PicoUSD(1_000_000); got != want {
		t.Errorf("1M in + 1M out of gpt-5.1 at flex cost %s, OpenAI bills %s", got, want)
	}
}

// TestCatalogServiceTiersOfGPT52: OpenAI sells gpt-5.2 at priority
// processing for $3.50 / $0.35 cached / $28 per 1M tokens
// (openai.com/api-priority-processing): a priority answer of gpt-5.2, or
// of its dated snapshot, is charged those rates, not the standard ones.
func TestCatalogServiceTiersOfGPT52(t *testing.T) {
	spec, ok := (*policies.Policy)(nil).Model("gpt-5.2-2025-12-11")
	if !ok {
		t.Fatal("gpt-5.2-2025-12-11 unknown")
	}
	u := policies.TokenCounts{Input: 1_000_000, CachedInput: 400_000, Output: 1_000_000, ServiceTier: "priority"}
	// 600,000 × $3.50 + 400,000 × $0.35 + 1,000,000 × $28 per 1M
	if got, want := spec.Cost(u), (2_100_000+140_000+28_000_000)*policies.PicoUSD(1_000_000); got != want {
		t.Errorf("gpt-5.2 at priority cost %s, OpenAI bills %s", got, want)
	}
}
