package policies

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that policy files write as a string in Go
// syntax ("1.5s", "30s", "5m", "1h30m"), extended with days ("1d", "7d",
// "1d12h"; a day is 24 hours). A bare 0 is accepted; any other bare number is
// an error because its unit would be a guess. The zero value means "not set";
// each field documents what that implies.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String renders d like time.Duration without trailing zero units: "5m",
// "1h", "1m30s", "1.5s", "0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// durationForm is the hint every invalid duration's message ends with.
const durationForm = `want e.g. "30s", "5m", "1h30m", "7d"`

// ParseDuration parses a duration in Go syntax plus a "d" (24h) unit.
// Surrounding spaces are ignored; "0" is zero.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" || t == "-0" || t == "+0" {
		return 0, nil
	}
	if t == "" {
		return 0, errors.New("empty duration: want e.g. \"30s\"")
	}
	if allDigits(strings.TrimLeft(t, "+-")) || isDecimal(strings.TrimLeft(t, "+-")) {
		n := strings.TrimLeft(t, "+")
		return 0, fmt.Errorf("invalid duration %q: missing unit: write %q, %q or %q", clip(s), n+"ms", n+"s", n+"m")
	}
	neg := false
	if t[0] == '-' || t[0] == '+' {
		neg = t[0] == '-'
		t = t[1:]
	}
	var total time.Duration
	// Replace every "<number>d" segment by its value in hours; Go's own units
	// contain no 'd', so any 'd' ends a day segment.
	for {
		i := strings.IndexByte(t, 'd')
		if i < 0 {
			break
		}
		j := i
		for j > 0 && (t[j-1] >= '0' && t[j-1] <= '9' || t[j-1] == '.') {
			j--
		}
		if j == i {
			return 0, fmt.Errorf("invalid duration %q: %s", clip(s), durationForm)
		}
		h, err := time.ParseDuration(t[j:i] + "h")
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %s", clip(s), durationForm)
		}
		// Each day segment, and the running total, is checked: the sum of
		// segments each in range can wrap int64.
		if h > math.MaxInt64/24 || total > math.MaxInt64-h*24 {
			return 0, fmt.Errorf("invalid duration %q: too large", clip(s))
		}
		total += h * 24
		t = t[:j] + t[i+1:]
	}
	if t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %s", clip(s), durationForm)
		}
		if d < 0 {
			return 0, fmt.Errorf("invalid duration %q: %s", clip(s), durationForm)
		}
		if total > math.MaxInt64-d {
			return 0, fmt.Errorf("invalid duration %q: too large", clip(s))
		}
		total += d
	}
	if total < 0 {
		return 0, fmt.Errorf("invalid duration %q: too large", clip(s))
	}
	if neg {
		total = -total
	}
	return Duration(total), nil
}

func isDecimal(s string) bool {
	w, f, ok := strings.Cut(s, ".")
	return ok && allDigits(w) && allDigits(f) && w+f != ""
}

// MarshalText writes d as its String form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses d with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes d as a JSON string such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// UnmarshalJSON reads a JSON string ("30s") or the number 0.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, ok, err := jsonScalar(b, "duration")
	if !ok {
		return err
	}
	return d.UnmarshalText([]byte(s))
}

// jsonScalar returns the text of the JSON number or string p, unquoted,
// for the UnmarshalJSON of Duration, ByteSize and USD; false for null (and
// with an error naming what for a bad JSON string).
func jsonScalar(p []byte, what string) (string, bool, error) {
	s := string(p)
	if s == "null" {
		return "", false, nil
	}
	if len(s) >= 2 && s[0] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return "", false, errors.New("invalid " + what + ": bad JSON string")
		}
		s = u
	}
	return s, true, nil
}
