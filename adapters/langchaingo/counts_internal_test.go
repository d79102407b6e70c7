package langchaingo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestDecimalCount: a JSON number read as a count exactly, rounded up,
// never through a float64; a negative one or one beyond int range is no
// count.
func TestDecimalCount(t *testing.T) {
	for _, tc := range []struct {
		in        string
		n         int64
		exact, ok bool
	}{
		{"12", 12, true, true}, {"12.0", 12, true, true}, {"1.2e1", 12, true, true}, {"120E-1", 12, true, true},
		{"0.5", 1, false, true}, {"12.01", 13, false, true}, {"1e-999999999999999999999", 1, false, true},
		{"-0.0", 0, true, true}, {"0e999999999999", 0, true, true}, {"9007199254740993.0", 9007199254740993, true, true},
		{"9223372036854775807.0", math.MaxInt64, true, true}, {"9223372036854775806.5", math.MaxInt64, false, true},
		{"9223372036854775807.5", 0, false, false}, {"9223372036854775808", 0, false, false}, {"9.3e18", 0, false, false},
		{"1e19", 0, false, false}, {"1e999999999999999999", 0, false, false}, {"-1.0", 0, false, false}, {"-0.5", 0, false, false},
		{"01", 0, false, false}, {"1.", 0, false, false}, {".5", 0, false, false}, {"1e", 0, false, false}, {"12abc", 0, false, false}, {"", 0, false, false},
	} {
		n, exact, ok := decimalCount(tc.in)
		if n != tc.n || exact != tc.exact || ok != tc.ok {
			t.Errorf("decimalCount(%q) = %d, %t, %t; want %d, %t, %t", tc.in, n, exact, ok, tc.n, tc.exact, tc.ok)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	maxInt := new(big.Rat).SetInt64(math.MaxInt64)
	for range 20000 {
		s := fmt.Sprintf("%d", rng.Int64N(1<<62)>>rng.IntN(62))
		if rng.IntN(2) == 0 {
			s += "." + fmt.Sprint(rng.IntN(1000))
		}
		if rng.IntN(2) == 0 {
			s += fmt.Sprintf("e%d", rng.IntN(40)-20)
		}
		r, _ := new(big.Rat).SetString(s)
		want := new(big.Int).Quo(r.Num(), r.Denom())
		if !r.IsInt() {
			want.Add(want, big.NewInt(1))
		}
		n, exact, ok := decimalCount(s)
		if wantOK := new(big.Rat).SetInt(want).Cmp(maxInt) <= 0; ok != wantOK || ok && (n != want.Int64() || exact != r.IsInt()) {
			t.Fatalf("decimalCount(%q) = %d, %t, %t; want %v, %t", s, n, exact, ok, want, r.IsInt())
		}
	}
}

// FuzzNormalizeAnswer: normalizeAnswer never panics, leaves what it does
// not change as it was, and what it rewrites is JSON whose created time
// and usage counts, where they are numbers, the backend's types hold.
func FuzzNormalizeAnswer(f *testing.F) {
	f.Add([]byte(`{"created":"1700000000","usage":{"prompt_tokens":12.0,"completion_tokens":2.5,"total_tokens":1.45e1,"cost":0.5}}`), false)
	f.Add([]byte(`{"Created":true,"USAGE":{"Prompt_Tokens":1e3,"completion_tokens_details":{"reasoning_tokens":1.0}}}`), true)
	f.Add([]byte(`{"created":1e999,"usage":{"prompt_tokens":-5.0}}`), true)
	f.Fuzz(func(t *testing.T, payload []byte, stream bool) {
		out, changed, err := normalizeAnswer(payload, stream)
		if err != nil || !changed {
			if !bytes.Equal(out, payload) {
				t.Fatalf("unchanged, yet %q became %q", payload, out)
			}
			return
		}
		var plain struct {
			Created int64   `json:"created"`
			Usage   lcUsage `json:"usage"`
		}
		var chunk struct {
			Created float64 `json:"created"`
			Usage   lcUsage `json:"usage"`
		}
		var target any = &plain
		if stream {
			target = &chunk
		}
		err = json.Unmarshal(out, target)
		var terr *json.UnmarshalTypeError
		switch {
		case err == nil:
		case errors.As(err, &terr) && !(strings.HasPrefix(terr.Value, "number") && terr.Type.Kind() != reflect.Struct):
			// A value of another type (a count as a string, an object):
			// not normalizeAnswer's to change.
		default:
			t.Fatalf("%q became %q: %v", payload, out, err)
		}
	})
}
