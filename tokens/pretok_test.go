package tokens

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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
	// DEL, which tiktoken-go skips (see skipped)
	"\x7f", "a\x7fb", ".\x7f.", " \x7f",
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
	e := New()
	return map[string]struct {
		c tokenizer.Codec
		b *bpe
	}{
		O200kBase:  {e.codec(O200kBase), bpeOf(e.codec(O200kBase))},
		Cl100kBase: {e.codec(Cl100kBase), bpeOf(e.codec(Cl100kBase))},
	}
}

// sameTokens fails t unless b encodes s to the ids tiktoken-go's c does.
func sameTokens(t testing.TB, name string, c tokenizer.Codec, b *bpe, s string) {
	want, _, err := c.Encode(s)
	if err != nil {
		t.Fatalf("%s: tiktoken-go: %v", name, err)
	}
	got := b.encode(s, nil)
	if !slices.EqualFunc(got, want, func(a uint32, b uint) bool { return uint(a) == b }) {
		var pieces []string
		b.pieces(s, func(p string) { pieces = append(pieces, p) })
		_, toks, _ := c.Encode(s)
		t.Fatalf("%s: %q\ngot  %v\nwant %v\npieces %q\ntiktoken-go's tokens %q", name, s, got, want, pieces, toks)
	}
	if n := b.count(s); n != len(want) {
		t.Fatalf("%s: %q counts %d tokens, tiktoken-go %d", name, s, n, len(want))
	}
}

// TestPretokenizerMatchesTiktoken: on a corpus of 3000 random texts (words
// in every case, contractions in every case, digits of every script,
// whitespace runs with \r\n and trailing spaces, punctuation, CJK, emoji,
// combining marks, code, JSON, invalid UTF-8, random runes), the
// pre-tokenizer and the merges give token for token the ids tiktoken-go
// gives, for both encodings.
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

// FuzzPretokenizerMatchesTiktoken: any text gives token for token the ids
// tiktoken-go gives, for both encodings.
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
				for b.Loop() {
					if impl == "tokenwise" {
						cb.b.count(text)
					} else if _, err := cb.c.Count(text); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
