package policies

import (
	"cmp"
	"maps"
	"math"
	"math/big"
	"slices"
	"testing"
)

// fuzzTiers are the service tiers FuzzCostEqualsExactArithmetic prices at
// besides each model's own: the standard tier's names, every premium name
// (priced at 2.5 times the standard rates where the model has no rates for
// it) and names of no known tier (the standard rates).
var fuzzTiers = []string{"", "default", "auto", "on_demand", "standard", "priority", "fast", "ultrafast", "performance", "flex", "scale", "bogus"}

// exactRates are the rates of a call of m at tier with input tokens, per
// token in dollars, by the rules ModelSpec.Cost and ModelSpec.Rates
// document, computed from the catalog's per-million prices' decimal text.
func exactRates(t *testing.T, m ModelSpec, tier string, input int64) (in, cached, write, audioIn, out, audioOut *big.Rat) {
	t.Helper()
	own := func(tier string) (inP, cachedP, writeP, outP USD) {
		inP, cachedP, writeP, outP = m.InputPer1M, m.CachedInputPer1M, m.CacheWritePer1M, m.OutputPer1M
		long := m.LongContext
		if tp, ok := m.ServiceTiers[tier]; ok && tier != "" {
			inP, cachedP, writeP, outP = cmp.Or(tp.InputPer1M, inP), cmp.Or(tp.CachedInputPer1M, cachedP), cmp.Or(tp.CacheWritePer1M, writeP), cmp.Or(tp.OutputPer1M, outP)
			if tp.LongContext.AboveInputTokens > 0 {
				long = tp.LongContext
			}
		}
		if long.AboveInputTokens > 0 && input > long.AboveInputTokens {
			inP, cachedP, writeP, outP = cmp.Or(long.InputPer1M, inP), cmp.Or(long.CachedInputPer1M, cachedP), cmp.Or(long.CacheWritePer1M, writeP), cmp.Or(long.OutputPer1M, outP)
		}
		return inP, cmp.Or(cachedP, inP), cmp.Or(writeP, inP), outP
	}
	inP, cachedP, writeP, outP := own(tier)
	if _, priced := m.ServiceTiers[tier]; !priced && PremiumTier(tier) {
		// Rounded up to a micro-dollar per million tokens: 5/2 of an odd
		// number of micro-dollars is half a micro-dollar more.
		up := func(r USD) USD {
			q := new(big.Rat).Mul(big.NewRat(int64(r), 1), big.NewRat(5, 2))
			n := new(big.Int).Quo(q.Num(), q.Denom())
			if !q.IsInt() {
				n.Add(n, big.NewInt(1))
			}
			return USD(n.Int64())
		}
		inP, cachedP, writeP, outP = own("")
		inP, cachedP, writeP, outP = up(inP), up(cachedP), up(writeP), up(outP)
		for tn := range m.ServiceTiers {
			i, c, w, o := own(tn)
			inP, cachedP, writeP, outP = max(inP, i), max(cachedP, c), max(writeP, w), max(outP, o)
		}
	}
	in, cached, write, out = ratPerToken(t, inP), ratPerToken(t, cachedP), ratPerToken(t, writeP), ratPerToken(t, outP)
	audioIn, audioOut = in, out
	if m.AudioInputPer1M != 0 {
		audioIn = ratPerToken(t, m.AudioInputPer1M)
	}
	if m.AudioOutputPer1M != 0 {
		audioOut = ratPerToken(t, m.AudioOutputPer1M)
	}
	return in, cached, write, audioIn, out, audioOut
}

// FuzzCostEqualsExactArithmetic prices any usage — counts anywhere in the
// int64 range, negative, inconsistent (more cached than input, more audio
// than output) or absurd (2^62 tokens, a hostile server's) — on every
// catalog model at any tier, and compares ModelSpec.Cost with big-rational
// arithmetic on the catalog's decimal prices, by the rules Cost documents:
// negative counts are zero, the parts are capped at their whole, and the
// result saturates at the int64 range (about $9.2 million) instead of
// wrapping to a negative or smaller amount. The budget charge, Ceil, is the
// exact cost rounded up to a micro-dollar once.
func FuzzCostEqualsExactArithmetic(f *testing.F) {
	cat := DefaultCatalog()
	names := slices.Sorted(maps.Keys(cat))
	f.Add(uint16(0), uint8(0), int64(1000), int64(100), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add(uint16(7), uint8(5), int64(300_000), int64(4_000), int64(200_000), int64(1_000), int64(3_000), int64(10), int64(20))
	f.Add(uint16(3), uint8(1), int64(1)<<62, int64(1)<<62, int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add(uint16(11), uint8(7), int64(-5), int64(math.MaxInt64), int64(9), int64(-1), int64(math.MinInt64), int64(7), int64(math.MaxInt64))
	f.Add(uint16(200), uint8(9), int64(1_000_000), int64(1_000_000), int64(2_000_000), int64(2_000_000), int64(0), int64(5_000_000), int64(5_000_000))
	pico := big.NewRat(1, 1_000_000_000_000)
	maxPico := new(big.Rat).Mul(big.NewRat(math.MaxInt64, 1), pico)
	f.Fuzz(func(t *testing.T, model uint16, tier uint8, input, output, cached, write, reasoning, audioIn, audioOut int64) {
		name := names[int(model)%len(names)]
		m := cat[name]
		tiers := append(slices.Clone(fuzzTiers), slices.Sorted(maps.Keys(m.ServiceTiers))...)
		u := TokenCounts{Input: input, Output: output, CachedInput: cached, CacheWrite: write, Reasoning: reasoning,
			AudioInput: audioIn, AudioOutput: audioOut, ServiceTier: tiers[int(tier)%len(tiers)]}

		// The documented reading of the counts.
		in := max(input, 0)
		c := min(max(cached, 0), in)
		w := min(max(write, 0), in-c)
		ai := min(max(audioIn, 0), in-c-w)
		out := max(output, 0)
		ao := min(max(audioOut, 0), out)
		rIn, rCached, rWrite, rAudioIn, rOut, rAudioOut := exactRates(t, m, u.ServiceTier, in)
		term := func(n int64, rate *big.Rat) *big.Rat { return new(big.Rat).Mul(big.NewRat(n, 1), rate) }
		want := term(in-c-w-ai, rIn)
		want.Add(want, term(c, rCached))
		want.Add(want, term(w, rWrite))
		want.Add(want, term(ai, rAudioIn))
		want.Add(want, term(out-ao, rOut))
		want.Add(want, term(ao, rAudioOut))
		if m.RequestFee > 0 {
			want.Add(want, ratPerToken(t, m.RequestFee*1_000_000))
		}
		if want.Cmp(maxPico) > 0 {
			want = maxPico // saturated, never wrapped
		}

		got := m.Cost(u)
		if got < 0 {
			t.Fatalf("%s %+v: Cost = %d pico-dollars, negative", name, u, got)
		}
		if gotRat := new(big.Rat).Mul(big.NewRat(int64(got), 1), pico); gotRat.Cmp(want) != 0 {
			t.Fatalf("%s %+v: Cost = %s, want $%s", name, u, got, want.FloatString(12))
		}
		// Reasoning is part of the output: it never changes the cost.
		if r := u; true {
			r.Reasoning = 0
			if m.Cost(r) != got {
				t.Fatalf("%s %+v: the reasoning count changes the cost", name, u)
			}
		}
		// The ledger's one rounding: up, by less than a micro-dollar.
		ceil := got.Ceil()
		wantMicro := new(big.Rat).Mul(want, big.NewRat(1_000_000, 1))
		up := new(big.Int).Quo(wantMicro.Num(), wantMicro.Denom())
		if !wantMicro.IsInt() {
			up.Add(up, big.NewInt(1))
		}
		if !up.IsInt64() || int64(ceil) != up.Int64() {
			t.Fatalf("%s %+v: Ceil = %d micro-dollars, want %s", name, u, ceil, up)
		}
	})
}
