package route

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

// needle is a compiled keyword (or a regex's required literal), searched
// case-insensitively without lowering (and so without copying) the text.
//
// Two runes match when they are equal, when the text's rune lowers to the
// needle's (unicode.ToLower, as strings.ToLower did), or when they are in
// the same simple case-folding orbit (unicode.SimpleFold, as strings.EqualFold
// and regexp's (?i) do).
type needle struct {
	s string // lower case (strings.ToLower)
	// anchors are the bytes a match can start with, when the needle starts
	// with an ASCII byte: that byte, its upper case, and the lead byte of
	// the non-ASCII rune matching it (see asciiPartner). n is how many.
	anchors [3]byte
	n       int
	// ASCII needles are found by a rare byte of theirs, at offset at:
	// eight bytes of text at a time are tested for it (or its upper
	// case: fold is 0x20 for a letter), as long as the text is ASCII.
	ascii bool
	at    int
	fold  uint64
	rare  uint64 // the byte, in every byte
	// lineBreak: the needle holds a '\n', so a match may span the messages
	// of a conversation (which are joined with newlines).
	lineBreak bool
	// bit numbers the needle in its Rules' keyword memo; -1: not memoised.
	bit int8
}

func newNeedle(s string) needle {
	n := needle{s: strings.ToLower(s), lineBreak: strings.IndexByte(s, '\n') >= 0, bit: -1}
	if n.s == "" || n.s[0] >= utf8.RuneSelf {
		return n
	}
	c := n.s[0]
	n.anchors[0], n.n = c, 1
	if 'a' <= c && c <= 'z' {
		n.anchors[1], n.n = c-('a'-'A'), 2
	}
	if r, ok := asciiPartner[c]; ok {
		var b [utf8.UTFMax]byte
		utf8.EncodeRune(b[:], r)
		n.anchors[n.n] = b[0]
		n.n++
	}
	n.ascii = true
	for i := 0; i < len(n.s); i++ {
		if n.s[i] >= utf8.RuneSelf {
			n.ascii = false
			return n
		}
		if byteRank(n.s[i]) > byteRank(n.s[n.at]) {
			n.at = i
		}
	}
	b := n.s[n.at]
	n.rare = lsb * uint64(b)
	if 'a' <= b && b <= 'z' {
		n.fold = lsb * 0x20
	}
	return n
}

// byteRank orders bytes by rarity in (English) text, rarest highest.
func byteRank(c byte) int {
	const byFrequency = " etaoinshrdlcumwfgypbvkjxqz" // most frequent first
	if i := strings.IndexByte(byFrequency, c); i >= 0 {
		return i
	}
	return 20 // digits and punctuation: about as rare as "b" or "v"
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// asciiPartner maps an ASCII lower-case letter to the only non-ASCII rune
// that lowers or case-folds to it (TestASCIIPartners checks the table
// against the unicode tables).
var asciiPartner = map[byte]rune{
	'i': '\u0130', // İ lowers to i
	'k': '\u212a', // Kelvin sign lowers and folds to k
	's': '\u017f', // long s folds to s
}

// in reports whether the needle occurs in text; whole: as a whole word,
// neither preceded nor followed by a letter, digit or underscore.
func (n *needle) in(text string, whole bool) bool {
	if n.s == "" || len(text) == 0 {
		return false
	}
	if n.ascii {
		if found, ok := n.inASCII(text, whole); ok {
			return found
		}
	}
	return n.slowIn(text, whole)
}

// inASCII looks for an ASCII needle in text, eight bytes at a time, and
// reports false when text is not ASCII: a rune of several bytes before the
// rare byte would shift the start of a match.
func (n *needle) inASCII(text string, whole bool) (found, ok bool) {
	i := 0
	for ; i+8 <= len(text); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(text[i : i+8]))
		if x&msb != 0 {
			return false, false
		}
		z := (x | n.fold) ^ n.rare // zero bytes: the rare byte
		for m := (z - lsb) &^ z & msb; m != 0; m &= m - 1 {
			// May flag a byte after a zero byte too: candidate checks.
			if n.candidate(text, i+bits.TrailingZeros64(m)/8, whole) {
				return true, true
			}
		}
	}
	rare, fold := byte(n.rare), byte(n.fold)
	for ; i < len(text); i++ {
		c := text[i]
		if c >= utf8.RuneSelf {
			return false, false
		}
		if c|fold == rare && n.candidate(text, i, whole) {
			return true, true
		}
	}
	return false, true
}

// candidate tries a match whose rare byte is at a.
func (n *needle) candidate(text string, a int, whole bool) bool {
	start := a - n.at
	if start < 0 || start+len(n.s) > len(text) {
		return false
	}
	end, ok := matchFold(text, start, n.s)
	return ok && (!whole || isWordEdge(text, start, end))
}

// slowIn is in for any needle and text.
func (n *needle) slowIn(text string, whole bool) bool {
	if n.n == 0 {
		// Non-ASCII first rune (rare): try every rune start.
		for i := 0; i < len(text); {
			if end, ok := matchFold(text, i, n.s); ok && (!whole || isWordEdge(text, i, end)) {
				return true
			}
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
		}
		return false
	}
	// Candidates: the positions of the anchor bytes, each found with
	// IndexByte and consumed in order.
	var next [3]int
	for k := 0; k < n.n; k++ {
		next[k] = indexFrom(text, n.anchors[k], 0)
	}
	for {
		k := -1
		for j := 0; j < n.n; j++ {
			if next[j] >= 0 && (k < 0 || next[j] < next[k]) {
				k = j
			}
		}
		if k < 0 {
			return false
		}
		i := next[k]
		next[k] = indexFrom(text, n.anchors[k], i+1)
		if end, ok := matchFold(text, i, n.s); ok && (!whole || isWordEdge(text, i, end)) {
			return true
		}
	}
}

func indexFrom(s string, c byte, from int) int {
	if from >= len(s) {
		return -1
	}
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

// matchFold reports whether text at i starts with the lower-case needle
// w, rune by rune case-insensitively, and where the match ends.
func matchFold(text string, i int, w string) (int, bool) {
	j := i
	for k := 0; k < len(w); {
		if j >= len(text) {
			return 0, false
		}
		wc, tc := w[k], text[j]
		if wc < utf8.RuneSelf && tc < utf8.RuneSelf {
			if 'A' <= tc && tc <= 'Z' {
				tc += 'a' - 'A'
			}
			if tc != wc {
				return 0, false
			}
			j++
			k++
			continue
		}
		wr, ws := utf8.DecodeRuneInString(w[k:])
		tr, ts := utf8.DecodeRuneInString(text[j:])
		if !runeFold(tr, wr) {
			return 0, false
		}
		j += ts
		k += ws
	}
	return j, true
}

// runeFold reports whether the text rune t matches the lower-case needle
// rune w.
func runeFold(t, w rune) bool {
	if t == w || unicode.ToLower(t) == w {
		return true
	}
	for r := unicode.SimpleFold(t); r != t; r = unicode.SimpleFold(r) {
		if r == w {
			return true
		}
	}
	return false
}

// isWordEdge reports whether text[start:end] is not preceded nor followed
// by a word character.
func isWordEdge(text string, start, end int) bool {
	return !wordBefore(text, start) && !wordAt(text, end)
}
