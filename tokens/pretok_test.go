package tokens

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	"github.com/tiktoken-go/tokenizer"
)

// fragments are the material of the corpus: every class the split patterns
// tell apart, and the places where their alternatives compete.
var fragments = []string{
	// words, cases, contractions (all cases, and near misses)
	"hello", "Hello", "HELLO", "hELLo", "don't", "DON'T", "we're", "WE'RE", "they've", "I'm", "I'M", "you'll", "YOU'LL", "he'd", "HE'D",
	"it's", "IT'S", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'Re", "'vE", "'M", "'Ll", "'D", "'ſ", "'x", "'", "''", "'l", "'r", "'v",
	"McDonald's", "iPhone", "ABCdef", "abcDEF", "ǅungla", "ǈ", "ʰello", "ß", "İstanbul", "ıi", "Straße", "ΑΘΗΝΑ", "αθήνα", "МОСКВА", "москва",
	// numbers: ASCII runs, other scripts, Nl and No
	"0", "12", "123", "1234", "1234567", "3.14159", "1,000,000", "٣٤٥", "３４５", "²³", "Ⅻ", "½", "⑦",
	// whitespace
	" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", "\v", "\f", "\u00a0", "\u3000", "\u2028", "\u0085", "\u1680", "\u2003", " \n ", "  \t\n",
	// punctuation and symbols
	".", ",", "!", "?", "...", "--", "->", "=>", "/", "//", "/*", "*/", "\\", "(", ")", "[]", "{}", "<>", "@", "#", "$", "%", "^", "&", "*", "~", "`", "\"", "+=", "|", "_", "©", "€", "…", "“", "”",
	// CJK, other scripts, emoji, marks
	"日本語", "中文字符", "한국어", "ひらがな", "カタカナ", "नमस्ते", "สวัสดี", "مرحبا", "שלום", "e\u0301", "\u0301", "\u0301\u0301a", "ा", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "\u200d", "\ufeff", "\U0001d400\U0001d41a", "𝟘𝟙",
	// code and JSON
	"func main() {\n\tfmt.Println(\"hi\")\n}\n", `{"key": [1, 2.5e10, null, true], "b": {"c": "d"}}`, "x := y/z // comment\n", "if (a && b) { return -1; }", "<div class=\"x\">", "SELECT * FROM t;",
	"https://example.com/a/b?c=d", "/var/log/syslog", "C:\\Users\\x", "a\n/b\n/", "...\n\n", "!!\r\n", "?/\n/",
	// invalid UTF-8
	"\xff", "\xc3", "\xe2\x82", "a\x80b",
	// DEL, which tiktoken-go drops, and newline runs with spaces between
	// their breaks, which it splits at the first break (see pretok.go)
	"\x7f", "a\x7fb", ".\x7f.", " \x7f", "\n\n \n", " \n \n ", "\r\n \r\n", "\n\t\n\n  ", "x  \n\n  y",
}

// corpus returns n random texts built from fragments and random runes.
func corpus(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]string, n)
	for i := range out {
		var sb strings.Builder
		for range 1 + r.IntN(40) {
			switch r.IntN(10) {
			case 0: // a random rune from anywhere
				sb.WriteRune(rune(r.IntN(0x30000)))
			case 1: // a random BMP rune near the common scripts
				sb.WriteRune(rune(r.IntN(0x3000)))
			default:
				sb.WriteString(fragments[r.IntN(len(fragments))])
			}
		}
		if r.IntN(4) == 0 {
			sb.WriteString(strings.Repeat(" ", 1+r.IntN(3))) // trailing spaces
		}
		out[i] = sb.String()
	}
	return out
}

func testCodecs(t testing.TB) map[string]struct {
	c tokenizer.Codec
	b *bpe
} {
	get := func(enc tokenizer.Encoding) tokenizer.Codec {
		c, err := tokenizer.Get(enc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return map[string]struct {
		c tokenizer.Codec
		b *bpe
	}{
		O200kBase:  {get(tokenizer.O200kBase), bpeFor(O200kBase)},
		Cl100kBase: {get(tokenizer.Cl100kBase), bpeFor(Cl100kBase)},
	}
}

// patterns are the split patterns, as tiktoken defines them, run by an
// interpreting backtracking engine (dlclark/regexp2 v1, no generated code):
// the reference for the pre-tokenizer. One change: the contractions name ſ
// (U+017F) beside s, because .NET's case-insensitive matching, which
// regexp2 copies, does not fold ſ to s where Unicode simple case folding
// (Rust's regex, which tiktoken runs) does.
var patterns = map[string]*regexp2.Regexp{
	Cl100kBase: regexp2.MustCompile(`(?i:'[sſ]|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, regexp2.None),
	O200kBase: regexp2.MustCompile(`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'[sſ]|'t|'re|'ve|'m|'ll|'d)?|`+
		`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'[sſ]|'t|'re|'ve|'m|'ll|'d)?|`+
		`\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`, regexp2.None),
}

// refPieces is s split by the pattern of enc (invalid UTF-8 read as U+FFFD).
func refPieces(t testing.TB, enc, s string) []string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	var out []string
	m, err := patterns[enc].FindStringMatch(s)
	for ; m != nil && err == nil; m, err = patterns[enc].FindNextMatch(m) {
		out = append(out, m.String())
	}
	if err != nil {
		t.Fatalf("%s: regexp2: %v", enc, err)
	}
	return out
}

// tiktokenGoQuirk reports whether tiktoken-go's generated split code may
// split piece otherwise than the pattern (see pretok.go): a piece with DEL,
// or whitespace with a line break before some other whitespace rune.
func tiktokenGoQuirk(piece string) bool {
	if strings.ContainsRune(piece, 0x7f) {
		return true
	}
	if strings.TrimSpace(piece) != "" {
		return false
	}
	nl := strings.IndexAny(piece, "\r\n")
	return nl >= 0 && strings.TrimRight(piece[nl:], "\r\n") != ""
}

// sameTokens fails t unless the pre-tokenizer splits s into the pattern's
// pieces, and the merges give each piece the ids tiktoken-go gives it
// (except pieces tiktoken-go itself splits otherwise, see tiktokenGoQuirk),
// and count agrees with the ids.
func sameTokens(t testing.TB, name string, c tokenizer.Codec, b *bpe, s string) {
	var got []string
	b.pieces(s, func(p string) { got = append(got, p) })
	if want := refPieces(t, name, s); !slices.Equal(got, want) {
		t.Fatalf("%s: %q\npieces  %q\npattern %q", name, s, got, want)
	}
	total := 0
	for _, p := range got {
		ids := b.encode(p, nil)
		total += len(ids)
		if tiktokenGoQuirk(p) {
			continue
		}
		want, _, err := c.Encode(p)
		if err != nil {
			t.Fatalf("%s: tiktoken-go: %v", name, err)
		}
		if !slices.EqualFunc(ids, want, func(a uint32, b uint) bool { return uint(a) == b }) {
			_, toks, _ := c.Encode(p)
			t.Fatalf("%s: piece %q of %q\ngot  %v\nwant %v\ntiktoken-go's tokens %q", name, p, s, ids, want, toks)
		}
	}
	if n := b.count(s); n != total {
		t.Fatalf("%s: %q counts %d tokens, its pieces encode to %d", name, s, n, total)
	}
	if n := len(b.encode(s, nil)); n != total {
		t.Fatalf("%s: %q encodes to %d tokens, its pieces to %d", name, s, n, total)
	}
}

// TestPretokenizerMatchesTiktoken: on a corpus of 3000 random texts (words
// in every case, contractions in every case, digits of every script,
// whitespace runs with \r\n and trailing spaces, punctuation, CJK, emoji,
// combining marks, code, JSON, invalid UTF-8, DEL, random runes), the
// pre-tokenizer gives piece for piece the split of tiktoken's pattern, and
// the merges token for token the ids tiktoken-go gives each piece, for both
// encodings.
func TestPretokenizerMatchesTiktoken(t *testing.T) {
	t.Parallel()
	texts := corpus(3000, 1)
	for name, cb := range testCodecs(t) {
		for _, s := range texts {
			sameTokens(t, name, cb.c, cb.b, s)
		}
		// Long pieces take the heap merge.
		for _, s := range []string{strings.Repeat("ab", 300), strings.Repeat("€", 100), strings.Repeat(" ", 500) + "x", strings.Repeat("9", 100), "data:image/png;base64," + strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 40)} {
			sameTokens(t, name, cb.c, cb.b, s)
		}
	}
}

// TestTiktokenGoQuirksFollowThePattern pins the two places where
// tiktoken-go's generated split code differs from tiktoken's pattern: this
// package counts as tiktoken does.
func TestTiktokenGoQuirksFollowThePattern(t *testing.T) {
	t.Parallel()
	for name, cb := range testCodecs(t) {
		for _, tc := range []struct {
			s    string
			want []string
		}{
			{"\n\n \n", []string{"\n\n \n"}},
			{"a\x7fb", []string{"a", "\x7fb"}},
			{"\x7f", []string{"\x7f"}},
			{"x  \n\n  y", []string{"x", "  \n\n", " ", " y"}},
		} {
			var got []string
			cb.b.pieces(tc.s, func(p string) { got = append(got, p) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: %q splits into %q, tiktoken's pattern into %q", name, tc.s, got, tc.want)
			}
		}
		if n := cb.b.count("\x7f"); n != 1 {
			t.Errorf("%s: DEL counts %d tokens, want 1 (tiktoken-go: 0)", name, n)
		}
	}
}

// FuzzPretokenizerMatchesTiktoken: any text splits as tiktoken's pattern
// splits it, and its pieces encode to tiktoken-go's ids, for both
// encodings.
func FuzzPretokenizerMatchesTiktoken(f *testing.F) {
	for _, s := range corpus(40, 2) {
		f.Add(s)
	}
	for _, s := range fragments {
		f.Add(s)
	}
	codecs := testCodecs(f)
	f.Fuzz(func(t *testing.T, s string) {
		for name, cb := range codecs {
			sameTokens(t, name, cb.c, cb.b, s)
		}
	})
}

// BenchmarkCount is counting 4 KB of new text (prose, code, JSON, CJK):
// impl=tiktoken-go is its codec's Count, impl=tokenwise this package's
// pre-tokenizer and merges (benchstat -col /impl puts them side by side).
func BenchmarkCount(b *testing.B) {
	var sb strings.Builder
	r := rand.New(rand.NewPCG(5, 5))
	for sb.Len() < 4096 {
		switch r.IntN(8) {
		case 0:
			sb.WriteString(fragments[r.IntN(len(fragments))])
		case 1:
			sb.WriteString(`{"host": "web-7", "usage": 95, "paths": ["/var/log", "/tmp"]}` + "\n")
		default:
			sb.WriteString("The server's disk is at 95 percent; /var/log holds 12 GB of rotated logs. ")
		}
	}
	text := sb.String()[:4096]
	for enc, cb := range testCodecs(b) {
		for _, impl := range []string{"tiktoken-go", "tokenwise"} {
			b.Run("enc="+enc+"/impl="+impl, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				cpu := startCPU()
				for b.Loop() {
					if impl == "tokenwise" {
						cb.b.count(text)
					} else if _, err := cb.c.Count(text); err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(b)
			})
		}
	}
}

// asciiEdges are the runes around the ASCII fast paths of the
// pre-tokenizers: ASCII letters of both cases, the one-byte prefixes,
// apostrophes and the contraction letters (and ſ), digits, line breaks,
// and non-ASCII runes that continue a word (lower, upper, title case,
// modifier letters, other letters, combining marks) or stop it.
var asciiEdges = []string{
	"a", "s", "t", "m", "d", "l", "r", "v", "e", "x", "z", "A", "S", "T", "M", "D", "L", "R", "V", "E", "X", "Z",
	"'", "'", " ", " ", "\t", ".", "-", "_", "@", "\x7f", "\x00", "/", "\n", "\r", "1", "9",
	"é", "ß", "É", "İ", "ǅ", "ʰ", "ſ", "ª", "中", "\u0301", "ा", "\u00a0", "٣", "😀", "…", "\xff",
}

// TestASCIIFastPathsMatchTheirPattern: texts made of runs of ASCII
// letters that meet every rune that could change an ASCII word's piece
// split as tiktoken's patterns split them, and encode to tiktoken-go's
// ids.
func TestASCIIFastPathsMatchTheirPattern(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 11))
	codecs := testCodecs(t)
	for range 3000 {
		var sb strings.Builder
		for range 1 + r.IntN(12) {
			sb.WriteString(asciiEdges[r.IntN(len(asciiEdges))])
		}
		s := sb.String()
		for name, cb := range codecs {
			sameTokens(t, name, cb.c, cb.b, s)
		}
	}
}
