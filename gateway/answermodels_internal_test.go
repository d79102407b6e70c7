package gateway

import (
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

// TestReservationPriceOfAKnownModelAllocatesNothing: the models an
// answer may be billed as (policies.Policy.AnswerModels, a scan of the
// whole catalog) are found once per model and policy, not on every
// Responses or embeddings call: pricing a call for a model seen before
// allocates nothing. (Before: 3 allocations and ~2 µs a call.)
func TestReservationPriceOfAKnownModelAllocatesNothing(t *testing.T) {
	pl := &passLimits{pol: &policies.Policy{}}
	for _, m := range []string{"gpt-4o", "text-embedding-3-small"} {
		want := pl.embeddingsCost(m, 1000)
		if a := testing.AllocsPerRun(100, func() {
			if got := pl.embeddingsCost(m, 1000); got != want {
				t.Fatalf("%s: %d, then %d", m, want, got)
			}
		}); a != 0 {
			t.Errorf("%s: the price of a call allocates %v times, want 0", m, a)
		}
	}
}

// BenchmarkEmbeddingsCost is the price of an embeddings call for a model
// the policy has seen.
func BenchmarkEmbeddingsCost(b *testing.B) {
	pl := &passLimits{pol: &policies.Policy{}}
	for b.Loop() {
		_ = pl.embeddingsCost("gpt-4o", 1000)
	}
}
