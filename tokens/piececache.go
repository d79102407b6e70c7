package tokens

import "sync/atomic"

// pieceCache remembers the token counts of recent short pieces (2 to 16
// bytes: most words of prose and code), so that a word seen before costs
// no lookup in the 8 MB rank table: each lookup there is a likely cache
// miss, and a word that is not itself a token takes one per merge
// candidate. It is direct-mapped and lock-free: a slot is a sequence lock
// (as countMemo's) around the piece's bytes, packed into two words with
// its length, and its count; a reader keeps a count only when the bytes
// and the length are the piece's and the sequence was even and unchanged
// around its reads, so a count is only ever used for the bytes it was
// counted for.
type pieceCache struct {
	slots [pieceSlots]pieceSlot
}

const (
	pieceBits     = 12
	pieceSlots    = 1 << pieceBits
	pieceMaxBytes = 16
)

type pieceSlot struct {
	seq    atomic.Uint32
	meta   atomic.Uint32 // length << 8 | count; 0 is empty
	k0, k1 atomic.Uint64
}

// pieceKey packs p (2 to pieceMaxBytes bytes) into two words and its slot.
func pieceKey(p string) (k0, k1 uint64, i int) {
	k0 = head(p[:min(len(p), 8)])
	if len(p) > 8 {
		k1 = head(p[8:])
	}
	h := (k0 ^ uint64(len(p))<<59) * 0x9E3779B97F4A7C15
	h = (h ^ h>>29 ^ k1) * 0xBF58476D1CE4E5B9
	return k0, k1, int(h >> (64 - pieceBits))
}

// get returns the count cached for p (2 to pieceMaxBytes bytes).
func (c *pieceCache) get(p string) (int, bool) {
	k0, k1, i := pieceKey(p)
	s := &c.slots[i]
	seq := s.seq.Load()
	if seq&1 != 0 || s.k0.Load() != k0 || s.k1.Load() != k1 {
		return 0, false
	}
	m := s.meta.Load()
	if m>>8 != uint32(len(p)) || s.seq.Load() != seq {
		return 0, false
	}
	return int(m & 0xff), true
}

// put caches n for p (2 to pieceMaxBytes bytes; n at most its length),
// unless another writer holds the slot.
func (c *pieceCache) put(p string, n int) {
	k0, k1, i := pieceKey(p)
	s := &c.slots[i]
	seq := s.seq.Load()
	if seq&1 != 0 || !s.seq.CompareAndSwap(seq, seq+1) {
		return
	}
	s.k0.Store(k0)
	s.k1.Store(k1)
	s.meta.Store(uint32(len(p))<<8 | uint32(n))
	s.seq.Store(seq + 2)
}
