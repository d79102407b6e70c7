package policies

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestAnswerModelsCoverEverySnapshotAnswer: for every model a call may ask
// for (each catalog and policy name, as a router names it, and as a dated
// snapshot the catalog does not list) and every name an answer to it may
// give that is a snapshot of it (isModelPrefix, the rule Model reads a
// dated name by, also behind a router's prefix), the price the answer is
// billed at — the answer's model when its price is known, but the asked
// model's when the policy owns that price and not the answer's
// (llmwrap.Pricer's BilledModel) — never passes the dearest of the asked
// model and its AnswerModels, for usages of every kind (audio, cache
// writes and reads, tiers, long inputs): the reservation, priced at that
// dearest, covers the settlement. And a model without snapshots at
// prices of their own (gpt-4o-mini) has none to reserve at.
func TestAnswerModelsCoverEverySnapshotAnswer(t *testing.T) {
	pol, err := LoadBytes([]byte(`version: 1
name: prop
models:
  gpt-4o-2099-01-01: {input_per_1m: 9, output_per_1m: 40}
  my-deploy: {input_per_1m: 1, output_per_1m: 2}
  my-deploy-2025-01-01: {input_per_1m: 3, output_per_1m: 4}
  claude-sonnet-4-5: {input_per_1m: 3, output_per_1m: 15}
  openai/gpt-4.1-2025-04-14: {input_per_1m: 4, output_per_1m: 16}
`), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Policy{nil, pol} {
		var keys []string
		keys = append(keys, defaultCatalog().byLen...)
		if p != nil {
			for k := range p.Models {
				keys = append(keys, k)
			}
		}
		var asked, answers []string
		for _, k := range keys {
			asked = append(asked, k, "openai/"+k, k+"-2024-08-06")
			answers = append(answers, k, "openai/"+k, k+"-2099-12-31", k+"-v2", k+"-latest", strings.ToUpper(k))
		}
		r := rand.New(rand.NewPCG(1, 2))
		usages := []TokenCounts{{Input: 1}, {Output: 1}, {Input: 1000, AudioInput: 1000}, {Output: 1000, AudioOutput: 1000},
			{Input: 1000, CacheWrite: 1000}, {Input: 1000, CachedInput: 1000}, {Input: 300_000, Output: 10}}
		for range 20 {
			in := r.Int64N(400_000)
			out := r.Int64N(100_000)
			usages = append(usages, TokenCounts{Input: in, Output: out, CachedInput: r.Int64N(in + 1), AudioOutput: r.Int64N(out + 1),
				ServiceTier: []string{"", "priority", "flex", "auto"}[r.IntN(4)]})
		}
		checked := 0
		for _, a := range asked {
			spec, ok := p.Model(a)
			if !ok || !spec.HasPrice() {
				continue
			}
			am := p.AnswerModels(a)
			if !slices.IsSorted(am) || slices.Contains(am, a) {
				t.Errorf("AnswerModels(%q) = %q: not sorted, or the model itself", a, am)
			}
			for _, n := range answers {
				short := a
				if i := strings.LastIndexByte(a, '/'); i >= 0 {
					short = a[i+1:]
				}
				nShort := n
				if i := strings.LastIndexByte(n, '/'); i >= 0 {
					nShort = n[i+1:]
				}
				if n != a && !isModelPrefix(a, n) && !isModelPrefix(short, n) && !isModelPrefix(short, nShort) {
					continue // another model: not this call's family
				}
				billed := a
				if m, ok := p.Model(n); ok && m.HasPrice() && (p.OwnsPrice(n) || !p.OwnsPrice(a)) {
					billed = n
				}
				bs, _ := p.Model(billed)
				for _, u := range usages {
					dearest := spec.Cost(u)
					for _, m := range am {
						ms, _ := p.Model(m)
						dearest = max(dearest, ms.Cost(u))
					}
					if c := bs.Cost(u); c > dearest {
						t.Errorf("policy %v: a call for %q answered as %q is billed %s for %+v, above %s, the dearest of %q and its AnswerModels %q",
							p != nil, a, n, c, u, dearest, a, am)
					}
					checked++
				}
			}
		}
		if checked < 1000 {
			t.Errorf("only %d answers checked", checked)
		}
	}
	for _, tt := range []struct {
		model string
		want  []string
	}{
		{"gpt-4o", []string{"gpt-4o-2024-05-13"}},
		{"openai/gpt-4o", []string{"gpt-4o-2024-05-13"}},
		{"gpt-3.5-turbo", []string{"gpt-3.5-turbo-0613", "gpt-3.5-turbo-1106"}},
		{"gpt-4o-mini", nil},
		{"gpt-4o-2024-05-13", nil},
		{"claude-sonnet-4-5", nil},
	} {
		if got := (*Policy)(nil).AnswerModels(tt.model); !slices.Equal(got, tt.want) {
			t.Errorf("AnswerModels(%q) = %q, want %q", tt.model, got, tt.want)
		}
	}
	// A policy that prices the model it asks for (a deployment's contract
	// price) bills its answers at that price: no snapshot to reserve for,
	// unless the policy prices the snapshot too.
	if got := pol.AnswerModels("claude-sonnet-4-5"); got != nil {
		t.Errorf("AnswerModels of a model the policy prices = %q, want none", got)
	}
	if got, want := pol.AnswerModels("my-deploy"), []string{"my-deploy-2025-01-01"}; !slices.Equal(got, want) {
		t.Errorf("AnswerModels(my-deploy) = %q, want %q", got, want)
	}
	if got, want := pol.AnswerModels("gpt-4o"), []string{"gpt-4o-2024-05-13", "gpt-4o-2099-01-01"}; !slices.Equal(got, want) {
		t.Errorf("AnswerModels(gpt-4o) under the policy = %q, want %q", got, want)
	}
}
