package route

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
)

// The fast path of ASCII needles relies on asciiPartner holding every
// non-ASCII rune that lowers or case-folds to an ASCII letter.
func TestASCIIPartners(t *testing.T) {
	t.Parallel()
	want := map[rune]byte{}
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if l := unicode.ToLower(r); l < utf8.RuneSelf {
			want[r] = byte(l)
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				want[r] = byte(unicode.ToLower(f))
			}
		}
	}
	if len(want) != len(asciiPartner) {
		t.Fatalf("non-ASCII runes matching ASCII letters: %q, table %q", want, asciiPartner)
	}
	for r, c := range want {
		if asciiPartner[c] != r {
			t.Errorf("%q matches %q: missing from asciiPartner", r, c)
		}
	}
}

// refIn is the definition of a match: a window of text, rune by rune
// equal to the keyword when lowered (strings.ToLower, as the router did
// before) or case-folded (strings.EqualFold), not inside a word.
func refIn(text, kw string, whole bool) bool {
	kr := []rune(strings.ToLower(kw))
	if len(kr) == 0 {
		return false
	}
	for i := 0; i < len(text); {
		j, k := i, 0
		for ; k < len(kr) && j < len(text); k++ {
			r, size := utf8.DecodeRuneInString(text[j:])
			if unicode.ToLower(r) != kr[k] && !strings.EqualFold(string(r), string(kr[k])) {
				break
			}
			j += size
		}
		if k == len(kr) && (!whole || !wordBefore(text, i) && !wordAt(text, j)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return false
}

// oldIn is the router's previous rule: the keyword in the lower-cased text.
func oldIn(text, kw string) bool {
	text, kw = strings.ToLower(text), strings.ToLower(kw)
	for off := 0; ; {
		i := strings.Index(text[off:], kw)
		if i < 0 {
			return false
		}
		start := off + i
		if !wordBefore(text, start) && !wordAt(text, start+len(kw)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(text[start:])
		off = start + size
	}
}

func TestNeedleCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, kw string
		whole    bool
		want     bool
	}{
		{"Check the server", "check", true, true},
		{"CHECK!", "check", true, true},
		{"run a check-up", "check", true, true},
		{"checkout the repo", "check", true, false},
		{"checkout the repo", "check", false, true},
		{"rechecking", "check", true, false},
		{"Ünicheck ächeck", "check", true, false},
		{"überprüfe ÜBERPRÜFE", "ÜBERprüfe", true, true},
		{"ÜBERPRÜFE die Platte", "überprüfe", true, true},
		{"a chec\u212a b", "check", true, true},       // Kelvin sign
		{"\u212aill it", "kill", true, true},          // Kelvin sign first
		{"\u017ftatus?", "status", true, true},        // long s
		{"\u0130NC-1234 open", "inc-", false, true},   // dotted capital I lowers to i
		{"ınc-1234", "inc-", false, false},            // dotless i does not
		{"x INC-1234567 \u00e9", "inc-", false, true}, // non-ASCII after the match
		{"\u00e9\u00e9\u00e9\u00e9\u00e9 DISK space", "disk space", true, true},
		{"disk  space", "disk space", true, false},
		{"ab", "abc", false, false},
		{"", "a", false, false},
		{"abc", "", false, false},
		{"_check", "check", true, false},
		{"check_", "check", true, false},
		{"9check", "check", true, false},
		{"\u0394check", "check", true, false}, // Greek letter before
		{"日本語 check 日本語", "check", true, true},
		{"ceci est ÉTÉ", "été", true, true},
		{"c++ rocks", "c++", true, true},
	} {
		n := newNeedle(tc.kw)
		if got := n.in(tc.text, tc.whole); got != tc.want {
			t.Errorf("%q in %q (whole %v) = %v, want %v", tc.kw, tc.text, tc.whole, got, tc.want)
		}
		if ref := refIn(tc.text, tc.kw, tc.whole); ref != tc.want {
			t.Errorf("reference: %q in %q = %v, want %v", tc.kw, tc.text, ref, tc.want)
		}
	}
}

// Random texts over an alphabet of ASCII, word separators and runes that
// change size or fold to ASCII: the search agrees with the definition,
// and finds every match the previous lower-casing search found.
func TestNeedleRandom(t *testing.T) {
	t.Parallel()
	alphabet := []string{"c", "C", "h", "H", "e", "k", "K", "\u212a", "s", "S", "\u017f", "i", "I", "\u0130",
		"ı", "é", "É", " ", "-", "_", "\n", "1", "日", "ß", "ẞ", "x"}
	keywords := []string{"check", "chek", "kiss", "ski", "is", "k", "sé", "ßk", "-k", "check-in", "日c", "éé"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		text := b.String()
		for _, kw := range keywords {
			n := newNeedle(kw)
			for _, whole := range []bool{false, true} {
				got, want := n.in(text, whole), refIn(text, kw, whole)
				if got != want {
					t.Fatalf("%q in %q (whole %v) = %v, want %v", kw, text, whole, got, want)
				}
			}
			// (Where lowering kept the length, so that word edges line up.)
			if len(strings.ToLower(text)) == len(text) && oldIn(text, kw) && !n.in(text, true) {
				t.Fatalf("%q in %q: the previous search found it", kw, text)
			}
		}
	}
}

// Keywords over the conversation search each message's text (its text
// parts when it has parts), as if the texts were joined with newlines.
func TestConversationSearch(t *testing.T) {
	t.Parallel()
	req := &middleware.Request{Messages: []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are an SRE."},
		{Role: middleware.RoleUser, Content: "ignored when there are parts: deploy", Parts: []middleware.Part{
			{Type: "text", Text: "first part"}, {Type: "image_url", URL: "http://x/rollback"}, {Type: "text", Text: "Roll\nBack"}}},
		{Role: middleware.RoleUser, Content: "now"},
	}}
	q := NewQuery(context.Background(), req)
	for _, tc := range []struct {
		kw   string
		want bool
	}{
		{"sre", true}, {"deploy", false}, {"rollback", false}, {"roll", true}, {"back", true},
		{"part", true}, {"roll\nback", true}, {"sre.\nfirst", true}, {"now", true}, {"rsre", false},
	} {
		n := newNeedle(tc.kw)
		if got := q.contains(&n, true, true); got != tc.want {
			t.Errorf("%q: %v", tc.kw, got)
		}
		if joined := n.in(q.Text("conversation"), true); joined != tc.want {
			t.Errorf("%q in the joined conversation: %v", tc.kw, joined)
		}
	}
}
