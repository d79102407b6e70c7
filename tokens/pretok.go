package tokens

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file is a hand-written pre-tokenizer for the split patterns of
// cl100k_base and o200k_base, which tiktoken-go runs with regexp2:
//
//	cl100k_base: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	             ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	o200k_base:  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//	             [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//	             \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Each alternative is tried in order at the end of the previous piece, with
// the backtracking regexp2 does: the pieces are the regexp's matches, one
// after the other (every character starts some alternative, so they cover
// the text). \s is unicode.IsSpace, \p{..} are Go's Unicode tables, and the
// case-insensitive contractions also take U+017F (ſ) for s, as regexp2's
// case folding does. The text must be valid UTF-8 (regexp2 reads it as
// runes: the caller replaces each invalid byte with U+FFFD first).

// Character classes, as bits.
const (
	cLetter  = 1 << iota // \p{L}
	cNumber              // \p{N}
	cSpace               // \s
	cNewline             // \r or \n
	cUpper               // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLower               // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	cNone                // in no set: DEL (see skipped)
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
		t[0x7f] = cNone
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
func isPrefix(c uint8) bool { return c&(cNewline|cLetter|cNumber|cNone) == 0 }
func isPunct(c uint8) bool  { return c&(cSpace|cLetter|cNumber|cNone) == 0 }

// skipped reports whether no piece starts at s[i]: tiktoken-go's generated
// regexp2 code leaves DEL (U+007F) out of the ASCII bitmaps of
// [^\r\n\p{L}\p{N}] and [^\s\p{L}\p{N}], so no alternative matches it and the
// regexp skips it: DEL is no part of any piece and counts no token.
func skipped(s string, i int) bool { return s[i] == 0x7f }

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
// The first is matched as tiktoken-go's generated regexp2 code matches it:
// when \s* gives back runes it goes back to the first \r or \n of the
// run, not to the last (so "\n\n \n" is two pieces, "\n\n" and " \n",
// where a textbook backtracking engine makes one).
func spaces(s string, i int) int {
	end, firstNL, last := i, -1, i
	for end < len(s) {
		_, n, c := at(s, end)
		if c&cSpace == 0 {
			break
		}
		if c&cNewline != 0 && firstNL < 0 {
			firstNL = end
		}
		last = end
		end += n
	}
	switch {
	case firstNL >= 0:
		return run(s, firstNL, cNewline)
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

// cSlash is '/', of o200k's punctuation tail [\r\n/].
const cSlash = 1 << 7

// nextCl100k returns the end of the piece of cl100k_base at i < len(s).
func nextCl100k(s string, i int) int {
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
		end := i + n0
		for k := 1; k < 3; k++ {
			_, n, c := at(s, end)
			if c&cNumber == 0 {
				break
			}
			end += n
		}
		return end
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
	r0, n0, c0 := at(s, i)
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
	if c0&cNumber != 0 {
		end := i + n0
		for k := 1; k < 3; k++ {
			_, n, c := at(s, end)
			if c&cNumber == 0 {
				break
			}
			end += n
		}
		return end
	}
	if e := punct(s, i, r0, c0, cNewline|cSlash); e > 0 {
		return e
	}
	return spaces(s, i)
}
