package tokens

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file is a hand-written pre-tokenizer for the split patterns of
// cl100k_base and o200k_base, as OpenAI's tiktoken splits text with them:
//
//	cl100k_base: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	             ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	o200k_base:  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//	             [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//	             \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Each alternative is tried in order at the end of the previous piece, with
// a backtracking engine's semantics: the pieces are the regexp's matches,
// one after the other (every character starts some alternative, so they
// cover the text). \s is unicode.IsSpace, \p{..} are Go's Unicode tables,
// and the case-insensitive contractions also take U+017F (ſ) for s, as
// case folding does. The text must be valid UTF-8 (the caller replaces each
// invalid byte with U+FFFD first).
//
// The reference is the pattern itself run by an interpreting backtracking
// engine (dlclark/regexp2, as pkoukk/tiktoken-go and langchaingo run it;
// Python's regex, which tiktoken uses, agrees): the tests compare piece for
// piece. tiktoken-go/tokenizer's generated regexp2 code differs from the
// pattern in two places, and there this file follows the pattern, not
// tiktoken-go: it drops DEL (U+007F) from every piece (it is not in its
// ASCII bitmaps of the negated classes), and in \s*[\r\n]+ it gives back
// whitespace only to the first line break of a run ("\n\n \n" is two pieces
// there, one piece in tiktoken).

// Character classes, as bits.
const (
	cLetter  = 1 << iota // \p{L}
	cNumber              // \p{N}
	cSpace               // \s
	cNewline             // \r or \n
	cUpper               // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLower               // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
)

// bmpClass holds the classes of every rune of the Basic Multilingual
// Plane; others are looked up in the Unicode tables. It is built on first
// use (initClasses), before the first text is split.
var (
	bmpClass    *[1 << 16]uint8
	classesOnce sync.Once
)

func initClasses() {
	classesOnce.Do(func() {
		var t [1 << 16]uint8
		for r := range rune(len(t)) {
			t[r] = lookupClass(r)
		}
		t['/'] |= cSlash
		bmpClass = &t
	})
}

func lookupClass(r rune) uint8 {
	var c uint8
	if unicode.IsLetter(r) {
		c |= cLetter
	}
	if unicode.IsNumber(r) {
		c |= cNumber
	}
	if unicode.IsSpace(r) {
		c |= cSpace
	}
	if r == '\r' || r == '\n' {
		c |= cNewline
	}
	if unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M) {
		c |= cUpper
	}
	if unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M) {
		c |= cLower
	}
	return c
}

func classOf(r rune) uint8 {
	if uint32(r) < 1<<16 {
		return bmpClass[r]
	}
	return lookupClass(r)
}

// at returns the rune at s[i:], its size and its classes; size 0 at the
// end of s.
func at(s string, i int) (rune, int, uint8) {
	if i >= len(s) {
		return 0, 0, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, bmpClass[c]
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return r, n, classOf(r)
}

// isPrefix reports [^\r\n\p{L}\p{N}]; isPunct reports [^\s\p{L}\p{N}].
func isPrefix(c uint8) bool { return c&(cNewline|cLetter|cNumber) == 0 }
func isPunct(c uint8) bool  { return c&(cSpace|cLetter|cNumber) == 0 }

// run returns the end of the run of runes from i that have a class of mask.
func run(s string, i int, mask uint8) int {
	for i < len(s) {
		_, n, c := at(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// contraction returns the end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, or -1.
func contraction(s string, i int) int {
	if i >= len(s) || s[i] != '\'' {
		return -1
	}
	r, n, _ := at(s, i+1)
	switch r {
	case 's', 'S', 't', 'T', 'ſ':
		return i + 1 + n
	case 'm', 'M', 'd', 'D':
		return i + 2
	}
	if i+2 < len(s) {
		switch c := s[i+2] | 0x20; r | 0x20 {
		case 'r', 'v':
			if c == 'e' {
				return i + 3
			}
		case 'l':
			if c == 'l' {
				return i + 3
			}
		}
	}
	return -1
}

// spaces is the three whitespace alternatives both patterns end with, at
// i where a whitespace rune starts: \s*[\r\n]+ | \s+(?!\S) | \s+.
//
// \s*[\r\n]+ takes the run up to and including its last line break (\s*
// gives back runes until [\r\n]+ can match, which then takes the one
// break left); without a break, \s+(?!\S) takes the run but its last rune
// when a non-space follows (that rune starts the next piece: " word"), or
// all of it at the end of the text; a single space before a non-space is
// \s+.
func spaces(s string, i int) int {
	end, lastNL, last := i, -1, i
	for end < len(s) {
		_, n, c := at(s, end)
		if c&cSpace == 0 {
			break
		}
		if c&cNewline != 0 {
			lastNL = end
		}
		last = end
		end += n
	}
	switch {
	case lastNL >= 0:
		return lastNL + 1 // \r and \n are one byte
	case end == len(s) || last == i:
		return end
	}
	return last // leave the last space to the next piece
}

// punct is ' ?[^\s\p{L}\p{N}]+' followed by a run of tail, at i, or -1.
func punct(s string, i int, r0 rune, c0 uint8, tail uint8) int {
	start := i
	if r0 == ' ' {
		if _, _, c1 := at(s, i+1); isPunct(c1) && i+1 < len(s) {
			start = i + 1
		}
	}
	if _, _, c := at(s, start); start >= len(s) || !isPunct(c) {
		return -1
	}
	end := start
	for end < len(s) {
		_, n, c := at(s, end)
		if !isPunct(c) {
			break
		}
		end += n
	}
	return run(s, end, tail)
}

// digits is the end of \p{N}{1,3} whose first rune ends at i.
func digits(s string, i int) int {
	for k := 1; k < 3; k++ {
		_, n, c := at(s, i)
		if c&cNumber == 0 {
			break
		}
		i += n
	}
	return i
}

// cSlash is '/', of o200k's punctuation tail [\r\n/].
const cSlash = 1 << 7

// asciiLetter reports whether c is an ASCII letter.
func asciiLetter(c byte) bool { return (c|0x20)-'a' < 26 }

// asciiWordStart returns where the letters of a word piece start at i
// (i, or i+1 after a one-byte [^\r\n\p{L}\p{N}] prefix) when both the
// prefix and the first letter are ASCII, else -1.
func asciiWordStart(s string, i int) int {
	c := s[i]
	if asciiLetter(c) {
		return i
	}
	if c < utf8.RuneSelf && isPrefix(bmpClass[c]) && i+1 < len(s) && asciiLetter(s[i+1]) {
		return i + 1
	}
	return -1
}

// The ASCII fast paths below give the piece of the general code for the
// commonest pieces, a word of ASCII letters with at most a one-byte ASCII
// prefix (" the", "Hello", ".json"), without decoding runes or backtracking;
// wherever a rune outside ASCII could change the piece (the word runs into
// one) they return -1 and the general code decides. The corpus test and
// the fuzz target compare every piece with tiktoken's pattern.

// asciiCl100k is [^\r\n\p{L}\p{N}]?\p{L}+ at i over ASCII, or -1.
func asciiCl100k(s string, i int) int {
	if s[i] == '\'' {
		return -1 // a contraction comes first
	}
	j := asciiWordStart(s, i)
	if j < 0 {
		return -1
	}
	for j < len(s) && asciiLetter(s[j]) {
		j++
	}
	if j < len(s) && s[j] >= utf8.RuneSelf {
		return -1
	}
	return j
}

// asciiO200k is the first two alternatives of o200k_base at i over ASCII,
// or -1: upper-case letters, then lower-case ones (without any the first
// alternative fails and the second takes the same bytes), then a
// contraction.
func asciiO200k(s string, i int) int {
	j := asciiWordStart(s, i)
	if j < 0 {
		return -1
	}
	for j < len(s) && s[j]-'A' < 26 {
		j++
	}
	for j < len(s) && s[j]-'a' < 26 {
		j++
	}
	if j < len(s) && s[j] >= utf8.RuneSelf {
		return -1
	}
	if e := contraction(s, j); e > 0 {
		return e
	}
	return j
}

// nextCl100k returns the end of the piece of cl100k_base at i < len(s).
func nextCl100k(s string, i int) int {
	if e := asciiCl100k(s, i); e > 0 {
		return e
	}
	r0, n0, c0 := at(s, i)
	if e := contraction(s, i); e > 0 {
		return e
	}
	if isPrefix(c0) {
		if _, _, c1 := at(s, i+n0); c1&cLetter != 0 {
			return run(s, i+n0, cLetter)
		}
	}
	if c0&cLetter != 0 {
		return run(s, i, cLetter)
	}
	if c0&cNumber != 0 {
		return digits(s, i+n0)
	}
	if e := punct(s, i, r0, c0, cNewline); e > 0 {
		return e
	}
	return spaces(s, i)
}

// upperLower is [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
// at i (min 1 upper when needUpper: the second o200k alternative, whose
// lower part is then optional), with regexp2's backtracking, followed by
// an optional contraction; -1 when it does not match.
func upperLower(s string, i int, needUpper bool) int {
	ue, lastLower := i, -1 // lastLower: the end of the last upper rune that is also lower
	for ue < len(s) {
		_, n, c := at(s, ue)
		if c&cUpper == 0 {
			break
		}
		ue += n
		if c&cLower != 0 {
			lastLower = ue
		}
	}
	end := -1
	if needUpper {
		if ue == i {
			return -1
		}
		end = run(s, ue, cLower)
	} else if _, _, c := at(s, ue); ue < len(s) && c&cLower != 0 {
		end = run(s, ue, cLower)
	} else if lastLower > 0 {
		// The upper loop gives back runes until the lower loop can take
		// one: the last rune that is both takes it, alone.
		end = lastLower
	} else {
		return -1
	}
	if e := contraction(s, end); e > 0 {
		return e
	}
	return end
}

// nextO200k returns the end of the piece of o200k_base at i < len(s).
func nextO200k(s string, i int) int {
	if e := asciiO200k(s, i); e > 0 {
		return e
	}
	r0, n0, c0 := at(s, i)
	// The first two alternatives need a letter or mark at i or just after
	// it: not when both are ASCII non-letters (" 42", ", ", ".\n").
	if !(n0 == 1 && !asciiLetter(s[i]) && (i+1 == len(s) || s[i+1] < utf8.RuneSelf && !asciiLetter(s[i+1]))) {
		if e := wordO200k(s, i, n0, c0); e > 0 {
			return e
		}
	}
	if c0&cNumber != 0 {
		return digits(s, i+n0)
	}
	if e := punct(s, i, r0, c0, cNewline|cSlash); e > 0 {
		return e
	}
	return spaces(s, i)
}

// wordO200k is the first two alternatives of o200k_base at i, or -1.
func wordO200k(s string, i, n0 int, c0 uint8) int {
	for _, needUpper := range [2]bool{false, true} {
		if isPrefix(c0) {
			if e := upperLower(s, i+n0, needUpper); e > 0 {
				return e
			}
		}
		if e := upperLower(s, i, needUpper); e > 0 {
			return e
		}
	}
	return -1
}
