package tokens

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// Counting with the cache of recent pieces gives, text for text, the
// count of the merges alone (a bpe without the cache), on the random
// corpus counted three times over (hits from the second pass on, and slots
// taken over by other pieces between passes).
func TestPieceCacheCountsAsMerges(t *testing.T) {
	t.Parallel()
	texts := corpus(1500, 7)
	for name, cb := range testCodecs(t) {
		plain := *cb.b
		plain.recent = nil
		cached := *cb.b
		cached.recent = &pieceCache{}
		for pass := range 3 {
			for _, s := range texts {
				if a, b := cached.count(s), plain.count(s); a != b {
					t.Fatalf("%s, pass %d: %q counts %d with the piece cache, %d without", name, pass, s, a, b)
				}
			}
		}
	}
}

// A slot answers only for the bytes it was filled with: pieces that share
// a slot, and pieces whose packed words are equal but lengths differ,
// miss.
func TestPieceCacheComparesBytesAndLength(t *testing.T) {
	t.Parallel()
	var c pieceCache
	r := rand.New(rand.NewPCG(3, 4))
	bySlot := map[int]string{}
	var a, b string
	for a == "" {
		var sb strings.Builder
		for range 2 + r.IntN(pieceMaxBytes-1) {
			sb.WriteByte(byte('a' + r.IntN(26)))
		}
		p := sb.String()
		_, _, i := pieceKey(p)
		if q, ok := bySlot[i]; ok && q != p {
			a, b = q, p
		}
		bySlot[i] = p
	}
	c.put(a, 3)
	if n, ok := c.get(a); !ok || n != 3 {
		t.Fatalf("%q: got %d, %v after put 3", a, n, ok)
	}
	if n, ok := c.get(b); ok {
		t.Fatalf("%q shares %q's slot and got its count %d", b, a, n)
	}
	// Same packed words, other lengths: "ab" and "ab\x00" read as the same
	// words; the slot keeps the length.
	k0a, k1a, ia := pieceKey("ab")
	k0b, k1b, _ := pieceKey("ab\x00")
	if k0a != k0b || k1a != k1b {
		t.Fatal("the test's premise: equal words for ab and ab\\x00")
	}
	s := &c.slots[ia]
	s.k0.Store(k0b)
	s.k1.Store(k1b)
	s.meta.Store(3<<8 | 2) // "ab\x00" in "ab"'s slot
	if n, ok := c.get("ab"); ok {
		t.Fatalf(`"ab" got the count %d of "ab\x00"`, n)
	}
}
