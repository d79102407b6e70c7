package policies

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// USD is an amount of money in micro-dollars: 1 USD = 1_000_000.
//
// Policy files write amounts as YAML/JSON numbers (1.00, 0.15) or strings
// ("0.15", "$2.50"). They are parsed from their decimal text, never through
// float64, so 0.1 + 0.2 is exactly 0.3 here. At most six decimals are accepted.
// The zero value is $0; in a limit it means "no limit".
type USD int64

// Dollar is one US dollar.
const Dollar USD = 1_000_000

// MicroUSD returns n micro-dollars as a USD amount.
func MicroUSD(n int64) USD { return USD(n) }

// Micro returns the amount in micro-dollars.
func (u USD) Micro() int64 { return int64(u) }

// Float returns the amount in dollars as a float64. Use it for display and
// metrics only; never compute with it.
func (u USD) Float() float64 { return float64(u) / 1e6 }

// String renders the amount with a dollar sign and at least two decimals,
// trimming further zeros: $0.15, $1.00, $1.234567, -$0.50.
func (u USD) String() string {
	sign, whole, frac := u.parts()
	fs := strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	for len(fs) < 2 {
		fs += "0"
	}
	return sign + "$" + strconv.FormatUint(whole, 10) + "." + fs
}

// text renders the amount as a plain decimal without sign or trailing zeros
// (2.5, 0.15, 1), the form written back to policy files.
func (u USD) text() string {
	sign, whole, frac := u.parts()
	s := sign + strconv.FormatUint(whole, 10)
	if fs := strings.TrimRight(fmt.Sprintf("%06d", frac), "0"); fs != "" {
		s += "." + fs
	}
	return s
}

func (u USD) parts() (sign string, whole, frac uint64) {
	a := uint64(u)
	if u < 0 {
		sign = "-"
		a = uint64(-(u + 1)) + 1 // safe for math.MinInt64
	}
	return sign, a / 1_000_000, a % 1_000_000
}

// ParseUSD parses a dollar amount from its decimal text: "1", "1.00", "0.15",
// "$2.50", "-0.5", "-$0.50". Surrounding spaces are ignored. More than six
// significant decimals (finer than a micro-dollar) and exponents are errors.
func ParseUSD(s string) (USD, error) {
	t := strings.TrimSpace(s)
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	t = strings.TrimPrefix(t, "$")
	if !neg && t != "" && t[0] == '-' { // "$-1.5"
		neg = true
		t = t[1:]
	}
	whole, frac, _ := strings.Cut(t, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("invalid dollar amount %q: want a decimal like 1.50 or \"$1.50\"", clip(s))
	}
	if tr := strings.TrimRight(frac, "0"); len(tr) > 6 {
		return 0, fmt.Errorf("invalid dollar amount %q: more than 6 decimals (the unit is a micro-dollar)", clip(s))
	} else {
		frac = tr
	}
	var w uint64
	for _, c := range whole {
		hi, lo := bits.Mul64(w, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 || lo > math.MaxInt64/1_000_000 {
			return 0, fmt.Errorf("invalid dollar amount %q: too large", clip(s))
		}
		w = lo
	}
	f := uint64(0)
	for i := range 6 {
		f *= 10
		if i < len(frac) {
			f += uint64(frac[i] - '0')
		}
	}
	total := w*1_000_000 + f
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("invalid dollar amount %q: too large", clip(s))
	}
	if neg {
		return -USD(total), nil
	}
	return USD(total), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MarshalText writes the amount as a plain decimal (e.g. 2.5).
func (u USD) MarshalText() ([]byte, error) { return []byte(u.text()), nil }

// UnmarshalText parses the amount with ParseUSD.
func (u *USD) UnmarshalText(b []byte) error {
	v, err := ParseUSD(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// MarshalJSON writes the amount as a JSON number with its exact decimal text.
func (u USD) MarshalJSON() ([]byte, error) { return []byte(u.text()), nil }

// UnmarshalJSON reads a JSON number or string by its decimal text.
func (u *USD) UnmarshalJSON(b []byte) error {
	s, ok, err := jsonScalar(b, "dollar amount")
	if !ok {
		return err
	}
	return u.UnmarshalText([]byte(s))
}

// MarshalYAML writes the amount as a YAML number with its exact decimal text.
func (u USD) MarshalYAML() ([]byte, error) { return []byte(u.text()), nil }

// PicoUSD is an exact amount of money in pico-dollars: 1 USD = 10^12.
//
// Every price of the catalog and of a policy is a whole number of
// micro-dollars per one million tokens, that is a whole number of
// pico-dollars per token, so the cost of any usage is an exact PicoUSD:
// tokens × price, with no rounding. Costs are summed in this unit (per
// call, per run, per model) and rounded once, when they are displayed
// ([PicoUSD.String] does not round at all) or charged to a budget ledger
// kept in micro-dollars ([PicoUSD.Ceil]). An int64 holds up to about
// $9.2 million; sums saturate rather than overflow ([PicoUSD.Add]).
type PicoUSD int64

// PicoPerMicro is the number of pico-dollars in a micro-dollar.
const PicoPerMicro = 1_000_000

// Pico returns the amount in pico-dollars, saturating at the int64 range.
func (u USD) Pico() PicoUSD {
	switch {
	case u > math.MaxInt64/PicoPerMicro:
		return math.MaxInt64
	case u < math.MinInt64/PicoPerMicro:
		return math.MinInt64
	}
	return PicoUSD(u * PicoPerMicro)
}

// Ceil returns the amount rounded up to a whole micro-dollar: the one
// rounding of a budget charge, never in the caller's favour.
func (p PicoUSD) Ceil() USD {
	q := p / PicoPerMicro
	if p%PicoPerMicro > 0 {
		q++
	}
	return USD(q)
}

// Add returns p + q, saturating instead of overflowing.
func (p PicoUSD) Add(q PicoUSD) PicoUSD {
	s := p + q
	switch {
	case q > 0 && s < p:
		return math.MaxInt64
	case q < 0 && s > p:
		return math.MinInt64
	}
	return s
}

// Float returns the amount in dollars as a float64, for metrics and
// display only.
func (p PicoUSD) Float() float64 { return float64(p) / 1e12 }

// String renders the exact amount with a dollar sign and at least two
// decimals, trimming further zeros: $0.0000564, $0.15, -$1.00. It never
// rounds: the text read back is the amount.
func (p PicoUSD) String() string {
	a := uint64(p)
	sign := ""
	if p < 0 {
		sign = "-"
		a = uint64(-(p + 1)) + 1
	}
	fs := strings.TrimRight(fmt.Sprintf("%012d", a%1_000_000_000_000), "0")
	for len(fs) < 2 {
		fs += "0"
	}
	return sign + "$" + strconv.FormatUint(a/1_000_000_000_000, 10) + "." + fs
}

// times returns tokens × ratePer1M in pico-dollars: a price per one million
// tokens in micro-dollars is a price per token in pico-dollars. Negative
// inputs count as zero; the result saturates instead of overflowing.
func times(tokens int64, ratePer1M USD) PicoUSD {
	if tokens <= 0 || ratePer1M <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(tokens), uint64(ratePer1M))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return PicoUSD(lo)
}
