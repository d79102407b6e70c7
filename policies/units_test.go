package policies

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseUSD(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want USD
		err  string
	}{
		{in: "0", want: 0},
		{in: "1", want: Dollar},
		{in: "1.00", want: Dollar},
		{in: "0.15", want: 150_000},
		{in: "$2.50", want: 2_500_000},
		{in: " $2.5 ", want: 2_500_000},
		{in: "0.075", want: 75_000},
		{in: "0.000001", want: 1},
		{in: "1.2500000", want: 1_250_000}, // trailing zeros past 6 decimals are fine
		{in: ".5", want: 500_000},
		{in: "3.", want: 3 * Dollar},
		{in: "+1", want: Dollar},
		{in: "-0.5", want: -500_000},
		{in: "-$0.50", want: -500_000},
		{in: "$-0.50", want: -500_000},
		{in: "9223372036854.775807", want: math.MaxInt64},
		{in: "1.2345678", err: "more than 6 decimals"},
		{in: "9223372036854.775808", err: "too large"},
		{in: "99999999999999999999999", err: "too large"},
		{in: "", err: "invalid dollar amount"},
		{in: "$", err: "invalid dollar amount"},
		{in: ".", err: "invalid dollar amount"},
		{in: "1e3", err: "invalid dollar amount"},
		{in: "1,000", err: "invalid dollar amount"},
		{in: "USD 1", err: "invalid dollar amount"},
		{in: "--1", err: "invalid dollar amount"},
		{in: "0x10", err: "invalid dollar amount"},
	}
	for _, tt := range tests {
		got, err := ParseUSD(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseUSD(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseUSD(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

// TestUSDExact shows that amounts add up exactly, unlike float64.
func TestUSDExact(t *testing.T) {
	t.Parallel()
	a, _ := ParseUSD("0.1")
	b, _ := ParseUSD("0.2")
	c, _ := ParseUSD("0.3")
	if a+b != c {
		t.Errorf("0.1 + 0.2 = %s, want %s", a+b, c)
	}
	var sum USD
	cent, _ := ParseUSD("0.01")
	for range 100 {
		sum += cent
	}
	if sum != Dollar {
		t.Errorf("100 × $0.01 = %s", sum)
	}
	// The same amounts read from a YAML file.
	p, err := LoadBytes([]byte("version: 1\nbudget:\n  run: {max_usd: 0.1}\n  team: {period: daily, max_usd: 0.2}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Budget.Run.MaxUSD+p.Budget.Team.MaxUSD != c {
		t.Errorf("sum of loaded amounts = %s", p.Budget.Run.MaxUSD+p.Budget.Team.MaxUSD)
	}
}

func TestUSDString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   USD
		want string
	}{
		{0, "$0.00"},
		{Dollar, "$1.00"},
		{150_000, "$0.15"},
		{30_000, "$0.03"},
		{1_234_567, "$1.234567"},
		{75_000, "$0.075"},
		{1, "$0.000001"},
		{-500_000, "-$0.50"},
		{math.MinInt64, "-$9223372036854.775808"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("USD(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
	if got := MicroUSD(2_500_000).Float(); got != 2.5 {
		t.Errorf("Float() = %v", got)
	}
}

func TestUSDJSON(t *testing.T) {
	t.Parallel()
	var v struct{ A, B, C USD }
	if err := json.Unmarshal([]byte(`{"A": 2.50, "B": "$0.15", "C": null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 2_500_000 || v.B != 150_000 || v.C != 0 {
		t.Errorf("got %+v", v)
	}
	b, _ := json.Marshal(struct{ A, B USD }{2_500_000, 75_000})
	if string(b) != `{"A":2.5,"B":0.075}` {
		t.Errorf("Marshal = %s", b)
	}
	if err := json.Unmarshal([]byte(`{"A": 1e2}`), &v); err == nil {
		t.Error("exponent accepted")
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "30s", want: 30 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "200ms", want: 200 * time.Millisecond},
		{in: "1d", want: 24 * time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "-1d", want: -24 * time.Hour},
		{in: "0", want: 0},
		{in: " 10s ", want: 10 * time.Second},
		{in: "30", err: "missing unit"},
		{in: "1.5", err: "missing unit"},
		{in: "", err: "empty duration"},
		{in: "d", err: "invalid duration"},
		{in: "5 minutes", err: "invalid duration"},
		{in: "1w", err: "invalid duration"},
		{in: "999999999d", err: "invalid duration"},
		// Day segments each in range whose sum wraps int64.
		{in: "100000d100000d100000d", err: "too large"},
		{in: "-100000d100000d100000d", err: "too large"},
		{in: "106751d23h", want: (106751*24 + 23) * time.Hour},
		{in: "106751d24h", err: "too large"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got.Duration() != tt.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestPolicyDurationThatWrapsIsRefused: a policy's duration whose day
// segments sum past int64 is an error at its line, never a wrapped value.
func TestPolicyDurationThatWrapsIsRefused(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte("version: 1\ntimeouts: {call: 100000d100000d100000d}\n"), "t.yaml")
	if err == nil {
		t.Fatalf("accepted; timeouts.call = %v", p.Timeouts.Call.Duration())
	}
	probs := problemsOf(t, err)
	if len(probs) != 1 || probs[0].Line != 2 || !strings.Contains(probs[0].Msg, "too large") {
		t.Errorf("problems = %v, want one at line 2 saying too large", probs)
	}
}

func TestDurationStringAndJSON(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		5 * time.Minute:         "5m",
		time.Hour:               "1h",
		90 * time.Second:        "1m30s",
		1500 * time.Millisecond: "1.5s",
		0:                       "0s",
		24 * time.Hour:          "24h",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
	var v struct{ A, B, C Duration }
	if err := json.Unmarshal([]byte(`{"A": "1.5s", "B": 0, "C": "7d"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A.Duration() != 1500*time.Millisecond || v.B != 0 || v.C.Duration() != 168*time.Hour {
		t.Errorf("got %+v", v)
	}
	if err := json.Unmarshal([]byte(`{"A": 30}`), &v); err == nil {
		t.Error("bare 30 accepted")
	}
	b, _ := json.Marshal(struct{ A Duration }{Duration(30 * time.Second)})
	if string(b) != `{"A":"30s"}` {
		t.Errorf("Marshal = %s", b)
	}
}

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ByteSize
		err  string
	}{
		{in: "8192", want: 8192},
		{in: "64MiB", want: 64 << 20},
		{in: "64mib", want: 64 << 20},
		{in: "2MB", want: 2_000_000},
		{in: "1.5 KiB", want: 1536},
		{in: "1GiB", want: 1 << 30},
		{in: "100B", want: 100},
		{in: "10k", want: 10_000},
		{in: "0", want: 0},
		{in: "-1", want: -1},
		{in: "1.5B", err: "not a whole number of bytes"},
		{in: "64XB", err: "unknown unit"},
		{in: "MiB", err: "invalid size"},
		{in: "", err: "invalid size"},
		{in: "1e3", err: "invalid size"},
		{in: "9999999TiB", err: "too large"},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseByteSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for b, want := range map[ByteSize]string{64 * MiB: "64MiB", 8 * KiB: "8KiB", 2 * MB: "2MB", 100: "100B", 0: "0", GiB: "1GiB"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
		if back, err := ParseByteSize(want); err != nil || back != b {
			t.Errorf("ParseByteSize(%q) = %d, %v", want, back, err)
		}
	}
	var v struct{ A, B ByteSize }
	if err := json.Unmarshal([]byte(`{"A": 8192, "B": "64MiB"}`), &v); err != nil || v.A != 8192 || v.B != 64*MiB {
		t.Errorf("json: %+v, %v", v, err)
	}
}
