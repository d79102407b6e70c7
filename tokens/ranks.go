package tokens

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// rankTable maps a token's bytes to its rank (its id), like the Go map
// map[string]uint32 it replaces, in the layout that suits the lookups of
// the merges: an open-addressed table (linear probing, at most half full)
// of 16-byte slots, each holding the first 8 bytes of its token inline,
// its length, a tag of its hash and its rank. A lookup of a piece of up to
// 8 bytes (most tokens and most pairs the merges try) reads one slot,
// usually one cache line, and compares two integers; a longer piece
// compares its bytes after the eighth with the token's in block.
//
// Every lookup ends with an exact comparison of the bytes: the hash only
// picks where to start probing and the tag only skips slots early, so two
// pieces whose hashes collide are still told apart (the tests force such
// collisions).
type rankTable struct {
	slots []rankSlot
	mask  uint64
	block string   // every token's bytes, one after the other
	start []uint32 // start[id]: offset in block of the bytes of token id
	seed  uint64
}

type rankSlot struct {
	head uint64 // the first 8 bytes, little-endian, zero-padded
	meta uint64 // rank | len<<32 | tag<<48; 0: empty
}

// maxTokenLen bounds the tokens a rankTable keeps (meta has 16 bits for
// the length); the vocabularies' longest tokens are far shorter.
const maxTokenLen = 1<<16 - 1

// newRankTable builds the table of the tokens block[end[id-1]:end[id]]
// (end[id] < 0: no token id, the previous end carries over). A later id
// with the same bytes wins, as in a map filled in order.
func newRankTable(block string, ends []int32, seed uint64) *rankTable {
	n := 0
	for _, e := range ends {
		if e >= 0 {
			n++
		}
	}
	size := 64
	for size < 2*n {
		size <<= 1
	}
	t := &rankTable{slots: make([]rankSlot, size), mask: uint64(size - 1), block: block, start: make([]uint32, len(ends)), seed: seed}
	off := int32(0)
	for id, e := range ends {
		t.start[id] = uint32(off)
		if e < 0 {
			continue
		}
		t.insert(block[off:e], uint32(id))
		off = e
	}
	return t
}

// head returns the first 8 bytes of s, little-endian, zero-padded.
func head(s string) uint64 {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	switch n := len(b); {
	case n >= 8:
		return binary.LittleEndian.Uint64(b)
	case n >= 4: // two overlapping loads: the shared bytes are OR-ed with themselves
		return uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<(8*(n-4))
	case n >= 2:
		return uint64(binary.LittleEndian.Uint16(b)) | uint64(binary.LittleEndian.Uint16(b[n-2:]))<<(8*(n-2))
	case n == 1:
		return uint64(b[0])
	}
	return 0
}

// hash mixes s (whose head is hd) into 64 bits.
func (t *rankTable) hash(s string, hd uint64) uint64 {
	h := (hd ^ t.seed) * 0x9E3779B97F4A7C15
	h ^= uint64(len(s))
	for i := 8; i < len(s); i += 8 {
		var w uint64
		if i+8 <= len(s) {
			w = binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
		} else {
			w = head(s[i:])
		}
		h = bits.RotateLeft64(h^w, 27) * 0x9E3779B97F4A7C15
	}
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	return h ^ h>>32
}

// find returns the slot of s, or the empty slot that ends its probe
// sequence when s is not a token. hd is head(s), h is t.hash(s, hd).
func (t *rankTable) find(s string, hd, h uint64) *rankSlot {
	want := uint64(len(s))<<32 | (h>>48)<<48
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		if sl.meta == 0 {
			return sl
		}
		if sl.meta&^0xFFFFFFFF == want && sl.head == hd &&
			(len(s) <= 8 || t.block[int(t.start[uint32(sl.meta)])+8:int(t.start[uint32(sl.meta)])+len(s)] == s[8:]) {
			return sl
		}
	}
}

func (t *rankTable) insert(s string, id uint32) {
	if len(s) == 0 || len(s) > maxTokenLen {
		return
	}
	hd := head(s)
	h := t.hash(s, hd)
	sl := t.find(s, hd, h)
	sl.head = hd
	sl.meta = uint64(id) | uint64(len(s))<<32 | (h>>48)<<48
}

// get returns the rank of s and whether s is a token.
func (t *rankTable) get(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > maxTokenLen {
		return 0, false
	}
	hd := head(s)
	sl := t.find(s, hd, t.hash(s, hd))
	return uint32(sl.meta), sl.meta != 0
}

// has reports whether s is a token.
func (t *rankTable) has(s string) bool {
	_, ok := t.get(s)
	return ok
}

// bytes reports the memory the table holds.
func (t *rankTable) bytes() int {
	return len(t.slots)*int(unsafe.Sizeof(rankSlot{})) + len(t.block) + 4*len(t.start)
}
