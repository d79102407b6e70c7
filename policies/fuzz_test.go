package policies

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzLoadPolicy: whatever the bytes, LoadBytes returns, without panicking
// and within the limits, either a policy that validates or a
// *ValidationError whose every problem names the file and a position.
// The seed corpus is testdata/fuzz/FuzzLoadPolicy (the repository's policy
// files and every input that ever failed) plus the files found at run time.
func FuzzLoadPolicy(f *testing.F) {
	for _, path := range repoPolicyFiles(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	base := Default()
	f.Fuzz(func(t *testing.T, b []byte) {
		const name = "fuzz.yaml"
		// The same bytes as a team file over the default policy: the
		// extends merge and the validation of its result never panic.
		child := &Policy{}
		src := &sourceMap{file: name, pos: map[string]position{}}
		if _, parsed := decodeDocument(b, child, src); parsed {
			_ = mergePolicies(base, child, src).problems(nil)
		}

		const maxMsg = 512 // values are quoted up to maxEcho bytes
		p, err := LoadBytes(b, name)
		if err == nil {
			if p == nil {
				t.Fatal("nil policy and nil error")
			}
			if verr := p.Validate(); verr != nil {
				t.Fatalf("loaded policy fails Validate: %v", verr)
			}
			return
		}
		if p != nil {
			t.Fatalf("a policy and an error: %v", err)
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %T %v, want a *ValidationError", err, err)
		}
		if len(ve.Problems) == 0 {
			t.Fatal("a *ValidationError without problems")
		}
		for _, pr := range ve.Problems {
			if pr.File != name {
				t.Errorf("problem %q names file %q", pr, pr.File)
			}
			if pr.Line < 1 || pr.Column < 1 {
				t.Errorf("problem %q has no position", pr)
			}
			if pr.Msg == "" || len(pr.Msg) > maxMsg {
				t.Errorf("problem %q: message of %d bytes, want 1 to %d", pr, len(pr.Msg), maxMsg)
			}
		}
	})
}

// FuzzImportLiteLLM: whatever a price file holds, ImportLiteLLM returns
// without panicking, every model it imports has non-negative prices, and
// its YAML loads as a policy that prices each of them exactly as the
// import does, at every service tier it has and across every threshold.
func FuzzImportLiteLLM(f *testing.F) {
	if b, err := os.ReadFile("testdata/litellm_prices.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"m":{"litellm_provider":"openai","mode":"chat","input_cost_per_token":2.5e-06,"output_cost_per_token":1e-05,` +
		`"input_cost_per_token_priority":5e-06,"cache_read_input_token_cost_flex":1e-07,"output_cost_per_token_above_200k_tokens":2e-05,` +
		`"input_cost_per_token_above_200k_tokens_priority":7e-06,"max_input_tokens":400000}}`))
	f.Add([]byte(`{"m":{"input_cost_per_token":"1e-06","output_cost_per_token":-1,"input_cost_per_token_above_0k_tokens":1e-06}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := ImportLiteLLM(bytes.NewReader(b))
		if err != nil {
			return
		}
		for name, m := range im.Models {
			for _, r := range []USD{m.InputPer1M, m.OutputPer1M, m.CachedInputPer1M, m.CacheWritePer1M, m.LongContext.InputPer1M, m.LongContext.OutputPer1M} {
				if r < 0 {
					t.Fatalf("%s: a negative price %+v", name, m)
				}
			}
		}
		p, err := LoadBytes(im.YAML("fuzz"), "imported.yaml")
		if err != nil {
			// Only what the loader's own bounds refuse (a key too long to
			// keep, too many models) may fail; an imported rule never does.
			if strings.Contains(err.Error(), "service_tiers") || strings.Contains(err.Error(), "long_context") {
				t.Fatalf("the import's YAML does not load: %v\n%s", err, im.YAML("fuzz"))
			}
			return
		}
		for name, m := range im.Models {
			if _, inCatalog := (*Policy)(nil).Model(name); inCatalog {
				continue // overlaid on the embedded catalog's entry: its zero fields are the catalog's
			}
			got, ok := p.Model(name)
			if !ok {
				t.Fatalf("%s imported, not in the loaded policy", name)
			}
			for _, tier := range append([]string{""}, slices.Sorted(maps.Keys(m.ServiceTiers))...) {
				for _, in := range []int64{1000, m.LongContext.AboveInputTokens + 1, 300_000} {
					u := TokenCounts{Input: in, Output: 100, CachedInput: in / 4, ServiceTier: tier}
					if got.Cost(u) != m.Cost(u) {
						t.Fatalf("%s at %q, %d input tokens: loaded %s, imported %s", name, tier, in, got.Cost(u), m.Cost(u))
					}
				}
			}
		}
	})
}
