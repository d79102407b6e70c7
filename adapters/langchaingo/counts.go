package langchaingo

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// The members of an answer langchaingo's openai backend (v0.1.14) decodes
// into Go integers: the usage counts (ints, in plain answers and chunks)
// and, in a plain answer, the created time (an int64; a chunk's is a
// float64). Several OpenAI-compatible servers write a count as a float
// (12.0) and the created time as a string: the backend fails to decode
// such an answer (a plain one fails, a chunk is skipped). normalizeAnswer
// rewrites them into what the backend holds, and a count written as a
// string of a number ("7000", which the backend cannot decode either)
// into the number.
var (
	usageCountKeys   = []string{"prompt_tokens", "completion_tokens", "total_tokens"}
	usageDetailsKeys = map[string][]string{
		"prompt_tokens_details":     {"cached_tokens", "audio_tokens"},
		"completion_tokens_details": {"reasoning_tokens", "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"},
	}
)

// errBadCount is what normalizeAnswer fails with for a count it cannot
// make an int of: negative or beyond int range. The answer is left as it
// is: the backend fails to decode it, and the call is malformed.
var errBadCount = errors.New("a usage count is negative or beyond int range")

// normalizeAnswer returns payload (a plain answer, or a chunk when
// stream) with its usage counts and created time in the types the
// backend decodes them with, and whether it changed anything:
//
//   - a count that is a string holding a number ("7000") is read as that
//     number;
//   - a count that is a number but no integer literal: an integral value
//     (12.0, 1.2e1) becomes the integer, a fraction is rounded up (a
//     count is billed up); a negative one, or one beyond int range, is no
//     count: errBadCount, payload is to be left as it is;
//   - the created time as a string of an integral number becomes the
//     number; any other created time the backend cannot hold (a string of
//     another text, a boolean, an object; a number beyond float64 range;
//     in a plain answer, a number that is no integer in int64 range) is
//     dropped (the time 0): nothing reads it.
//
// Members are matched as encoding/json matches them, case-insensitively.
// Other members, and the text of the members left alone, are kept as
// they are (the answer is re-encoded only when something changed).
func normalizeAnswer(payload []byte, stream bool) ([]byte, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return payload, false, err
	}
	changed := false
	for k, v := range m {
		switch {
		case strings.EqualFold(k, "created"):
			if fixed, ok := createdValue(v, stream); !ok {
				delete(m, k)
				changed = true
			} else if fixed != nil {
				m[k], changed = fixed, true
			}
		case strings.EqualFold(k, "usage"):
			fixed, err := usageValue(v)
			if err != nil {
				return payload, false, err
			}
			if fixed != nil {
				m[k], changed = fixed, true
			}
		}
	}
	if !changed {
		return payload, false, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return payload, false, err
	}
	return b, true, nil
}

// createdValue returns the created time v becomes: nil when the backend
// holds v as it is; ok false when it is to be dropped.
func createdValue(v json.RawMessage, stream bool) (fixed json.RawMessage, ok bool) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return nil, true
	case v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, false
		}
		n, exact, good := decimalCount(strings.TrimSpace(s))
		if !good || !exact {
			return nil, false
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), true
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		if _, err := strconv.ParseFloat(string(v), 64); stream && err == nil {
			return nil, true // a float64: any number it holds
		}
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return nil, true
		}
		n, exact, good := decimalCount(string(v))
		if !good || !exact {
			return nil, false
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), true
	}
	return nil, false
}

// usageValue returns the usage object v becomes, nil when the backend
// holds it as it is (or it is no object: the backend's decoding judges
// it), or errBadCount.
func usageValue(v json.RawMessage) (json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' {
		return nil, nil
	}
	var u map[string]json.RawMessage
	if json.Unmarshal(v, &u) != nil {
		return nil, nil
	}
	changed, err := fixCounts(u, usageCountKeys)
	if err != nil {
		return nil, err
	}
	for k, d := range u {
		for name, keys := range usageDetailsKeys {
			if !strings.EqualFold(k, name) {
				continue
			}
			d = bytes.TrimSpace(d)
			if len(d) == 0 || d[0] != '{' {
				continue
			}
			var dm map[string]json.RawMessage
			if json.Unmarshal(d, &dm) != nil {
				continue
			}
			c, err := fixCounts(dm, keys)
			if err != nil {
				return nil, err
			}
			if c {
				b, err := json.Marshal(dm)
				if err != nil {
					return nil, err
				}
				u[k], changed = b, true
			}
		}
	}
	if !changed {
		return nil, nil
	}
	b, err := json.Marshal(u)
	return b, err
}

// fixCounts rewrites the members of m named (case-insensitively) in keys
// that are numbers but no int literal, and reports whether it changed m.
func fixCounts(m map[string]json.RawMessage, keys []string) (bool, error) {
	changed := false
	for k, v := range m {
		if !foldIn(k, keys) {
			continue
		}
		v = bytes.TrimSpace(v)
		if len(v) > 0 && v[0] == '"' {
			// A count written as a string ("7000", as vLLM behind some
			// proxies writes it): read as the number it holds. A string
			// that holds no number is left to the backend's decoding.
			var s string
			if json.Unmarshal(v, &s) != nil {
				continue
			}
			s = strings.TrimSpace(s)
			if _, _, ok := decimalCount(s); !ok && !isNumber(s) {
				continue
			}
			v = json.RawMessage(s)
			m[k], changed = v, true
		}
		if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
			continue // null, or no number: the backend's decoding judges it
		}
		if _, err := strconv.ParseInt(string(v), 10, strconv.IntSize); err == nil {
			// An int literal, which the backend holds (a negative one
			// UsageFromGenerationInfo reads as no count).
			continue
		}
		n, _, ok := decimalCount(string(v))
		if !ok {
			return false, errBadCount
		}
		m[k], changed = json.RawMessage(strconv.FormatInt(n, 10)), true
	}
	return changed, nil
}

// isNumber reports whether s is a JSON number literal.
func isNumber(s string) bool {
	var n json.Number
	return s != "" && json.Unmarshal([]byte(s), &n) == nil && string(n) == s
}

func foldIn(k string, keys []string) bool {
	for _, key := range keys {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// decimalCount reads s, a JSON number literal, exactly (never through a
// float64, which holds no count beyond 2^53 exactly) as a count: n is its
// value rounded up, exact whether it was an integer. ok is false when s
// is no JSON number, is negative (-0 is 0), or n is beyond int range.
func decimalCount(s string) (n int64, exact, ok bool) {
	i, neg := 0, false
	if i < len(s) && s[i] == '-' {
		neg, i = true, i+1
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intDigits := s[start:i]
	if len(intDigits) == 0 || len(intDigits) > 1 && intDigits[0] == '0' {
		return 0, false, false
	}
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		f := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == f {
			return 0, false, false
		}
		frac = s[f:i]
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg, i = s[i] == '-', i+1
		}
		e := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp < 1e15 { // beyond, the value is 0 < x < 1 or beyond range
				exp = exp*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == e {
			return 0, false, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, false, false
	}
	digits := strings.TrimLeft(intDigits+frac, "0")
	if digits == "" {
		return 0, true, true // zero, -0 included
	}
	if neg {
		return 0, false, false
	}
	// The value is digits × 10^e.
	e := exp - int64(len(frac))
	whole := int64(len(digits)) + e // the digits of the integer part
	if whole > 19 {
		return 0, false, false
	}
	var intPart, rest string
	switch {
	case e >= 0:
		intPart = digits + strings.Repeat("0", int(e))
	case whole <= 0:
		rest = digits
	default:
		intPart, rest = digits[:whole], digits[whole:]
	}
	if intPart != "" {
		v, err := strconv.ParseInt(intPart, 10, strconv.IntSize)
		if err != nil {
			return 0, false, false
		}
		n = v
	}
	exact = strings.Trim(rest, "0") == ""
	if !exact {
		if n == math.MaxInt {
			return 0, false, false
		}
		n++
	}
	return n, exact, true
}
