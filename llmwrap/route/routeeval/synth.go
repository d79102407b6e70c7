package routeeval

import (
	"math/rand/v2"
	"strings"

	"github.com/tokenwise/tokenwise/middleware"
)

// SynthConfig configures Synthetic.
type SynthConfig struct {
	// N is the number of examples.
	N int
	// Seed makes the data: the same config gives the same examples.
	Seed uint64
	// Shifted draws from another domain: other categories and words, and
	// harder queries for the weak model, so that what was learned or
	// tuned on the first domain does not carry over.
	Shifted bool
}

type synthCategory struct {
	name       string
	offset     float64 // added to the difficulty
	easy, hard []string
}

var synthDomains = [2][]synthCategory{{
	{"algebra", 0.25, []string{"sum", "number", "add", "integer", "equation"}, []string{"isomorphism", "eigenvalue", "homomorphism", "galois", "quotient"}},
	{"physics", 0.15, []string{"speed", "mass", "force", "energy", "light"}, []string{"lagrangian", "tensor", "entropy", "renormalisation", "spinor"}},
	{"law", 0.10, []string{"contract", "court", "judge", "rule", "crime"}, []string{"estoppel", "tort", "certiorari", "easement", "laches"}},
	{"economics", 0.0, []string{"price", "market", "money", "trade", "cost"}, []string{"elasticity", "equilibrium", "arbitrage", "oligopoly", "externality"}},
	{"biology", -0.10, []string{"cell", "plant", "animal", "blood", "heart"}, []string{"mitochondrial", "transcription", "apoptosis", "allele", "ribosome"}},
	{"history", -0.15, []string{"king", "war", "empire", "city", "year"}, []string{"historiography", "treaty", "mercantilism", "feudal", "suzerainty"}},
}, {
	{"coding", 0.10, []string{"loop", "list", "print", "string", "file"}, []string{"monad", "lifetime", "variance", "coroutine", "linearizable"}},
	{"chemistry", 0.20, []string{"water", "salt", "acid", "gas", "metal"}, []string{"orbital", "chirality", "enthalpy", "catalysis", "stereoisomer"}},
	{"medicine", 0.0, []string{"doctor", "fever", "pain", "drug", "dose"}, []string{"pharmacokinetics", "idiopathic", "contraindication", "etiology", "prognosis"}},
	{"geography", -0.20, []string{"river", "country", "capital", "mountain", "sea"}, []string{"orogeny", "isostasy", "karst", "watershed", "geodesy"}},
}}

var (
	synthFillers  = strings.Fields("which of the following is true about this in a case where we consider the given statement")
	synthKeywords = []string{"explain", "simple", "quick", "define", "briefly", "why"}
)

// Synthetic returns a deterministic labelled data set for tests and
// examples. Each query has a hidden difficulty; the words of its category
// that are rare ("hard" words) are more frequent in difficult queries, and
// the weak model fails difficult queries more often than the strong one.
// So a scorer that learns the words beats random routing, while keyword
// rules on words like "explain", "simple" or "quick" (drawn independently
// of the difficulty) and the query's length do not. Categories differ in
// mean difficulty, so a per-category prior helps a little.
func Synthetic(cfg SynthConfig) []Example {
	dom := 0
	if cfg.Shifted {
		dom = 1
	}
	cats := synthDomains[dom]
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(dom)+1))
	out := make([]Example, cfg.N)
	var b strings.Builder
	for i := range out {
		c := cats[rng.IntN(len(cats))]
		d := rng.Float64() + c.offset
		if cfg.Shifted {
			d = 0.25 + 0.75*d
		}
		d = min(max(d, 0), 1)
		b.Reset()
		for _, k := range synthKeywords {
			if rng.Float64() < 0.12 {
				b.WriteString(k)
				b.WriteByte(' ')
			}
		}
		b.WriteString("a question on ")
		b.WriteString(c.name)
		b.WriteString(":")
		words := 4 + rng.IntN(8)
		for range words {
			b.WriteByte(' ')
			if rng.Float64() < 0.5 {
				b.WriteString(synthFillers[rng.IntN(len(synthFillers))])
				b.WriteByte(' ')
			}
			if rng.Float64() < d {
				b.WriteString(c.hard[rng.IntN(len(c.hard))])
			} else {
				b.WriteString(c.easy[rng.IntN(len(c.easy))])
			}
		}
		b.WriteString("?")
		pWeak, pStrong := 0.95-0.9*d, 0.97-0.3*d
		if cfg.Shifted {
			pWeak = 0.85 - 0.9*d
		}
		text := b.String()
		out[i] = Example{
			Line: i + 1, Text: text, Category: c.name,
			Messages: []middleware.Message{{Role: middleware.RoleUser, Content: text}},
			Weak:     bern(rng, pWeak), Strong: bern(rng, pStrong),
		}
	}
	return out
}

func bern(rng *rand.Rand, p float64) float64 {
	if rng.Float64() < p {
		return 1
	}
	return 0
}

// WriteJSONL writes examples in the labelled JSONL format Read reads
// (prompt, category, weak_correct/strong_correct for 0/1 qualities,
// weak_score/strong_score otherwise).
func WriteJSONL(w interface{ Write([]byte) (int, error) }, ex []Example) error {
	var b []byte
	for i := range ex {
		e := &ex[i]
		b = append(b[:0], `{"prompt":`...)
		b = appendJSONString(b, e.Text)
		if e.Category != "" {
			b = append(b, `,"category":`...)
			b = appendJSONString(b, e.Category)
		}
		b = appendQuality(b, "weak", e.Weak)
		b = appendQuality(b, "strong", e.Strong)
		b = append(b, "}\n"...)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
