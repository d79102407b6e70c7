package tokens

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRankTableMatchesMap: for both vocabularies, every token finds its
// id, and every substring of up to 24 bytes of the corpus (tokens, pairs
// the merges try, and strings that are no token) gets from the table what
// a Go map of the vocabulary answers.
func TestRankTableMatchesMap(t *testing.T) {
	t.Parallel()
	texts := corpus(300, 7)
	for name, cb := range testCodecs(t) {
		b := cb.b
		// The reference: each id's bytes from the codec itself.
		ref := map[string]uint32{}
		for id := range b.ranks.start {
			s, err := cb.c.Decode([]uint{uint(id)})
			if err != nil || s == "" {
				continue
			}
			ref[s] = uint32(id)
		}
		if len(ref) < 90000 {
			t.Fatalf("%s: %d tokens", name, len(ref))
		}
		for s, id := range ref {
			if got, ok := b.ranks.get(s); !ok || got != id {
				t.Fatalf("%s: token %q (id %d): table says %d, %v", name, s, id, got, ok)
			}
		}
		for _, text := range texts {
			for i := range len(text) {
				for j := i + 1; j <= len(text) && j <= i+24; j++ {
					s := text[i:j]
					want, wok := ref[s]
					if got, ok := b.ranks.get(s); ok != wok || got != want {
						t.Fatalf("%s: %q: table says %d, %v; the vocabulary %d, %v", name, s, got, ok, want, wok)
					}
				}
			}
		}
		t.Logf("%s: %d tokens, rank table %d KiB", name, len(ref), b.ranks.bytes()>>10)
	}
}

// TestRankTableCollisions: in a small table, strings that share a token's
// first 8 bytes, its length, its home slot and its tag (found by search)
// are told apart by their remaining bytes; so are strings of the same
// head and different lengths.
func TestRankTableCollisions(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 3))
	randSuffix := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	var sb strings.Builder
	var ends []int32
	keys := map[string]uint32{}
	for id := range 24 {
		if id%5 == 4 {
			ends = append(ends, -1) // a gap in the ids
			continue
		}
		k := "collide!" + randSuffix(1+id%3*7) // lengths 9, 16, 23
		if _, dup := keys[k]; dup {
			ends = append(ends, -1)
			continue
		}
		sb.WriteString(k)
		ends = append(ends, int32(sb.Len()))
		keys[k] = uint32(id)
	}
	block := sb.String()
	tab := newRankTable(block, ends, 42)
	if len(tab.slots) != 64 {
		t.Fatalf("%d slots, want 64", len(tab.slots))
	}
	for k, id := range keys {
		if got, ok := tab.get(k); !ok || got != id {
			t.Fatalf("key %q: %d, %v; want %d", k, got, ok, id)
		}
	}
	// Pieces colliding with a key in everything the slot holds but the
	// bytes after the eighth.
	type sig struct {
		n         int
		slot, tag uint64
	}
	sigs := map[sig]string{}
	for k := range keys {
		h := tab.hash(k, head(k))
		sigs[sig{len(k), h & tab.mask, h >> 48}] = k
	}
	found := 0
	for try := 0; found < 5 && try < 50_000_000; try++ {
		n := 9 + try%3*7
		s := "collide!" + randSuffix(n-8)
		h := tab.hash(s, head(s))
		k, ok := sigs[sig{n, h & tab.mask, h >> 48}]
		if !ok || k == s {
			continue
		}
		found++
		if id, ok := tab.get(s); ok {
			t.Fatalf("%q collides with key %q and finds id %d", s, k, id)
		}
	}
	if found < 5 {
		t.Fatalf("found %d colliding pieces, want 5", found)
	}
	// Same head, other lengths, and prefixes of the keys.
	for k := range keys {
		for n := 1; n < len(k)+3; n++ {
			s := k[:min(n, len(k))] + strings.Repeat("\x00", max(n-len(k), 0))
			want, wok := keys[s]
			if got, ok := tab.get(s); ok != wok || got != want {
				t.Fatalf("%q: %d, %v; want %d, %v", s, got, ok, want, wok)
			}
		}
	}
}
