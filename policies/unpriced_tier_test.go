package policies

import "testing"

// TestUnpricedTierFactorCoversTheCatalog: a premium tier a model has no
// rates for is priced at 2.5 times its standard rates (ModelSpec.Rates), which must
// be at least every tier the catalog prices, for every model and rate:
// such a call is never billed, nor reserved, below what the provider
// bills. A flex the model does not price is at its standard rates (flex is
// cheaper); a tier dearer than 2.5 times in a policy is priced at it.
func TestUnpricedTierFactorCoversTheCatalog(t *testing.T) {
	for name, m := range DefaultCatalog() {
		for tier := range m.ServiceTiers {
			for _, input := range []int64{1000, 1 << 40} {
				got, priced := m.Rates("ultrafast", input), m.Rates(tier, input)
				if got.InputPer1M < priced.InputPer1M || got.OutputPer1M < priced.OutputPer1M ||
					got.CachedInputPer1M < priced.CachedInputPer1M || got.CacheWritePer1M < priced.CacheWritePer1M {
					t.Errorf("%s: an unpriced tier's rates %+v are below its %s rates %+v", name, got, tier, priced)
				}
			}
		}
	}
	m := ModelSpec{InputPer1M: 1_250_000, OutputPer1M: 10_000_000, CachedInputPer1M: 1}
	if got := m.Rates("priority", 10); got.InputPer1M != 3_125_000 || got.OutputPer1M != 25_000_000 || got.CachedInputPer1M != 3 {
		t.Errorf("an unpriced priority: %+v, want 2.5 times the standard rates, rounded up", got)
	}
	if got := m.Rates("flex", 10); got.InputPer1M != m.InputPer1M || got.OutputPer1M != m.OutputPer1M {
		t.Errorf("an unpriced flex: %+v, want the standard rates", got)
	}
	// Other providers' names of their standard tier, and a tier name the
	// catalog does not know, are the standard rates: Groq answers
	// "on_demand" for every call that names no tier.
	for _, tier := range []string{"on_demand", "standard", "default", "auto", "", "scale", "no-such-tier"} {
		if got := m.Rates(tier, 10); got.InputPer1M != m.InputPer1M || got.OutputPer1M != m.OutputPer1M {
			t.Errorf("tier %q: %+v, want the standard rates", tier, got)
		}
	}
	m.ServiceTiers = map[string]ServiceTierPrices{"ultra": {OutputPer1M: 60_000_000}}
	if got := m.Rates("performance", 10); got.OutputPer1M != 60_000_000 || got.InputPer1M != 3_125_000 {
		t.Errorf("an unpriced premium tier beside a dearer priced one: %+v, want the dearer rate of each", got)
	}
}
