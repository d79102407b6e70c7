package policies

import (
	"cmp"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// ratDollars reads a catalog price per one million tokens from its decimal
// text, as a rational number of dollars per token.
func ratPerToken(t *testing.T, price USD) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(price.text())
	if !ok {
		t.Fatalf("price %q is not a decimal", price.text())
	}
	return r.Quo(r, big.NewRat(1_000_000, 1))
}

// TestCostIsExactForEveryCatalogModel prices 10,000 random usages on every
// catalog model, at each of its service tiers and at lengths on both sides
// of its long-context threshold, and compares each cost with big-rational arithmetic on the
// prices' decimal text: the integer cost is exact, its text reads back as
// the same number, and a sum of costs is the cost of the summed usage's
// parts.
func TestCostIsExactForEveryCatalogModel(t *testing.T) {
	t.Parallel()
	cat := DefaultCatalog()
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range cat {
			if !yield(k) {
				return
			}
		}
	})
	rng := rand.New(rand.NewPCG(13, 13))
	pico := big.NewRat(1, 1_000_000_000_000)
	for _, name := range names {
		m := cat[name]
		// The rates of a call at tier with input tokens, by the rules of
		// Cost's documentation: the tier's non-zero rates over the model's,
		// then, above the threshold, the long-context rule's (the tier's
		// own when it has one).
		// (A tier the model does not price, but flex: per rate, the
		// dearest of 2.5 times the standard rate, rounded up to a
		// micro-dollar per 1M, and every tier's rate.)
		priced := func(tier string, input int64) (inP, cachedP, writeP, outP USD) {
			inP, cachedP, writeP, outP = m.InputPer1M, m.CachedInputPer1M, m.CacheWritePer1M, m.OutputPer1M
			long := m.LongContext
			if t, ok := m.ServiceTiers[tier]; ok {
				inP, cachedP, writeP, outP = cmp.Or(t.InputPer1M, inP), cmp.Or(t.CachedInputPer1M, cachedP), cmp.Or(t.CacheWritePer1M, writeP), cmp.Or(t.OutputPer1M, outP)
				if t.LongContext.AboveInputTokens > 0 {
					long = t.LongContext
				}
			}
			if long.AboveInputTokens > 0 && input > long.AboveInputTokens {
				inP, cachedP, writeP, outP = cmp.Or(long.InputPer1M, inP), cmp.Or(long.CachedInputPer1M, cachedP), cmp.Or(long.CacheWritePer1M, writeP), cmp.Or(long.OutputPer1M, outP)
			}
			return
		}
		rates := func(tier string, input int64) (in, cached, write, audioIn, out, audioOut *big.Rat) {
			inP, cachedP, writeP, outP := priced(tier, input)
			if _, ok := m.ServiceTiers[tier]; !ok && tier == "ultrafast" {
				up := func(r USD) USD { return (r*5 + 1) / 2 }
				inP, cachedP, writeP, outP = up(inP), up(cmp.Or(cachedP, inP)), up(cmp.Or(writeP, inP)), up(outP)
				for t := range m.ServiceTiers {
					i, c, w, o := priced(t, input)
					inP, cachedP, writeP, outP = max(inP, i), max(cachedP, cmp.Or(c, i)), max(writeP, cmp.Or(w, i)), max(outP, o)
				}
			}
			in, out = ratPerToken(t, inP), ratPerToken(t, outP)
			cached, write = in, in
			if cachedP != 0 {
				cached = ratPerToken(t, cachedP)
			}
			if writeP != 0 {
				write = ratPerToken(t, writeP)
			}
			audioIn, audioOut = in, out
			if m.AudioInputPer1M != 0 {
				audioIn = ratPerToken(t, m.AudioInputPer1M)
			}
			if m.AudioOutputPer1M != 0 {
				audioOut = ratPerToken(t, m.AudioOutputPer1M)
			}
			return
		}
		tiers := append([]string{"", "default", "ultrafast", "on_demand"}, slices.Sorted(maps.Keys(m.ServiceTiers))...)
		var sum PicoUSD
		sumRat := new(big.Rat)
		for i := range 10_000 {
			var u TokenCounts
			switch i % 4 { // small calls, agent-sized calls and whole context windows
			case 0:
				u.Input, u.Output = rng.Int64N(50), rng.Int64N(50)
			case 1, 2:
				u.Input, u.Output = rng.Int64N(200_000), rng.Int64N(20_000)
			default:
				u.Input, u.Output = rng.Int64N(2_000_000), rng.Int64N(200_000)
			}
			if u.Input > 0 {
				u.CachedInput = rng.Int64N(u.Input + 1)
				u.CacheWrite = rng.Int64N(u.Input - u.CachedInput + 1)
			}
			if u.Output > 0 {
				u.Reasoning = rng.Int64N(u.Output + 1)
			}
			if i%3 == 0 { // audio on every third call
				u.AudioInput = rng.Int64N(u.Input - u.CachedInput - u.CacheWrite + 1)
				u.AudioOutput = rng.Int64N(u.Output + 1)
			}
			u.ServiceTier = tiers[rng.IntN(len(tiers))]
			in, cached, write, audioIn, out, audioOut := rates(u.ServiceTier, u.Input)
			want := new(big.Rat).Mul(big.NewRat(u.Input-u.CachedInput-u.CacheWrite-u.AudioInput, 1), in)
			want.Add(want, new(big.Rat).Mul(big.NewRat(u.CachedInput, 1), cached))
			want.Add(want, new(big.Rat).Mul(big.NewRat(u.CacheWrite, 1), write))
			want.Add(want, new(big.Rat).Mul(big.NewRat(u.AudioInput, 1), audioIn))
			want.Add(want, new(big.Rat).Mul(big.NewRat(u.Output-u.AudioOutput, 1), out))
			want.Add(want, new(big.Rat).Mul(big.NewRat(u.AudioOutput, 1), audioOut))

			got := m.Cost(u)
			gotRat := new(big.Rat).Mul(big.NewRat(int64(got), 1), pico)
			if gotRat.Cmp(want) != 0 {
				t.Fatalf("%s %+v: Cost = %s, want $%s", name, u, got, want.FloatString(12))
			}
			shown, ok := new(big.Rat).SetString(strings.TrimPrefix(got.String(), "$"))
			if !ok || shown.Cmp(want) != 0 {
				t.Fatalf("%s %+v: Cost prints as %s, want $%s", name, u, got, want.FloatString(12))
			}
			if ceil := got.Ceil(); new(big.Rat).Mul(big.NewRat(int64(ceil), 1_000_000), big.NewRat(1, 1)).Cmp(want) < 0 ||
				new(big.Rat).Sub(big.NewRat(int64(ceil), 1_000_000), want).Cmp(big.NewRat(1, 1_000_000)) >= 0 {
				t.Fatalf("%s %+v: Ceil = %s is not the cost $%s rounded up once", name, u, ceil, want.FloatString(12))
			}
			sum = sum.Add(got)
			sumRat.Add(sumRat, want)
		}
		if new(big.Rat).Mul(big.NewRat(int64(sum), 1), pico).Cmp(sumRat) != 0 {
			t.Fatalf("%s: the sum of 10,000 costs is %s, want $%s", name, sum, sumRat.FloatString(12))
		}
	}
}
