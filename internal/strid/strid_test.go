package strid

import (
	"strings"
	"testing"
)

// TestIdentity: the same string value is Same and mixes alike; a copy of
// its bytes, a shorter prefix and another string are not Same, and their
// identities mix differently.
func TestIdentity(t *testing.T) {
	s := strings.Repeat("tokenwise ", 8)
	c := strings.Clone(s)
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{"itself", s, s, true},
		{"both empty", "", s[:0], true},
		{"a copy of its bytes", s, c, false},
		{"a prefix", s, s[:len(s)-1], false},
		{"a suffix of the same length elsewhere", s[1:], s[:len(s)-1], false},
		{"empty and not", "", s, false},
	} {
		if got := Same(tc.a, tc.b); got != tc.same {
			t.Errorf("%s: Same = %v, want %v", tc.name, got, tc.same)
		}
		if tc.same != (Mix(1, tc.a) == Mix(1, tc.b)) {
			t.Errorf("%s: Mix agrees %v, Same %v", tc.name, Mix(1, tc.a) == Mix(1, tc.b), tc.same)
		}
	}
	if Ptr("") != 0 || Ptr(s) == 0 || Ptr(s) != Ptr(s[:3]) || Ptr(s)+1 != Ptr(s[1:]) {
		t.Error("Ptr is not the address of the string's bytes")
	}
}
