package route

import (
	"math/rand/v2"
	"path"
	"testing"
)

// TestModelPatternIsPathMatch: a requested_model pattern's match (by
// equality for a name, by prefix for a name's prefix and "*", else
// path.Match after its literal prefix) answers what path.Match answers,
// over 400,000 random patterns the rules accept (path.Match(p, "") without
// an error, as the config check) and names drawn from the same
// characters, a third of them made from the pattern itself.
func TestModelPatternIsPathMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const chars = `gpt-4o20/*?[]^\ab`
	str := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = chars[r.IntN(len(chars))]
		}
		return string(b)
	}
	kinds := [3]int{}
	for range 400000 {
		p := str(1 + r.IntN(8))
		switch r.IntN(4) {
		case 0:
			p = "gpt-4o" // a name
		case 1:
			p = str(r.IntN(5)) + "*" // a prefix and "*"
		}
		if _, err := path.Match(p, ""); err != nil {
			continue // refused by the config check
		}
		name := str(r.IntN(10))
		if r.IntN(3) == 0 {
			// The pattern's own characters, some changed, some added.
			b := []byte(p)
			for i := range b {
				if r.IntN(4) == 0 {
					b[i] = chars[r.IntN(len(chars))]
				}
			}
			name = string(b) + str(r.IntN(3))
		}
		m := newModelPattern(p)
		kinds[m.kind]++
		want, _ := path.Match(p, name)
		if got := m.match(name); got != want {
			t.Fatalf("pattern %q (kind %d), name %q: match %v, path.Match %v", p, m.kind, name, got, want)
		}
	}
	for k, n := range kinds {
		if n < 10000 {
			t.Fatalf("only %d patterns of kind %d", n, k)
		}
	}
}

// BenchmarkAskedFor: the default policy's requested_model patterns
// against a model none of them matches (every pattern tried), through
// askedFor and, for reference, through path.Match as askedFor called it
// before.
func BenchmarkAskedFor(b *testing.B) {
	patterns := []string{"gpt-4o", "gpt-4o-20*"}
	var compiled []modelPattern
	for _, p := range patterns {
		compiled = append(compiled, newModelPattern(p))
	}
	for _, model := range []string{"gpt-4o-mini", "gpt-4o-2024-08-06"} {
		b.Run("model="+model+"/impl=askedFor", func(b *testing.B) {
			for b.Loop() {
				askedFor(compiled, model)
			}
		})
		b.Run("model="+model+"/impl=path.Match", func(b *testing.B) {
			for b.Loop() {
				for _, p := range patterns {
					if ok, _ := path.Match(p, model); ok {
						break
					}
				}
			}
		})
	}
}
