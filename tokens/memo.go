package tokens

import "sync/atomic"

// countMemo is the memo of counts keyed by a hash of the content (key, see
// hasher): a 4-way set-associative table without locks, in place of an LRU
// behind a mutex that every call took for its tool definitions and new
// messages. A slot is a sequence lock around the 128-bit key and the count:
// a writer makes the sequence odd (compare-and-swap; a writer that finds a
// slot locked gives up, a memo may forget), writes, and makes it even
// again; a reader keeps what it read only when the sequence was even and
// unchanged around its reads, so it never pairs one entry's key with
// another's count. A full bucket gives up the slot a shared clock points
// at.
type countMemo struct {
	slots []memoSlot // buckets of memoWays slots
	mask  uint64     // buckets - 1
	clock atomic.Uint64
}

const memoWays = 4

type memoSlot struct {
	seq    atomic.Uint64
	k0, k1 atomic.Uint64 // k1 is never 0 for a key (see hasher): 0 is empty
	n      atomic.Int64
}

// newCountMemo returns a memo of at least n entries (a power of two, at
// least 64).
func newCountMemo(n int) *countMemo {
	size := 64
	for size < n {
		size <<= 1
	}
	return &countMemo{slots: make([]memoSlot, size), mask: uint64(size/memoWays - 1)}
}

func (m *countMemo) bucket(k key) []memoSlot {
	b := (k[0] & m.mask) * memoWays
	return m.slots[b : b+memoWays : b+memoWays]
}

// Get returns the count memoised for k.
func (m *countMemo) Get(k key) (int64, bool) {
	b := m.bucket(k)
	for i := range b {
		s := &b[i]
		seq := s.seq.Load()
		if seq&1 != 0 || s.k0.Load() != k[0] || s.k1.Load() != k[1] {
			continue
		}
		n := s.n.Load()
		if s.seq.Load() == seq {
			return n, true
		}
	}
	return 0, false
}

// Add memoises n for k (unless another writer holds the slot).
func (m *countMemo) Add(k key, n int64) {
	if k[1] == 0 {
		return // not a key of hasher's
	}
	b := m.bucket(k)
	v := -1
	for i := range b {
		if k1 := b[i].k1.Load(); k1 == k[1] && b[i].k0.Load() == k[0] {
			v = i
			break
		} else if v < 0 && k1 == 0 {
			v = i
		}
	}
	if v < 0 {
		v = int(m.clock.Add(1) % memoWays)
	}
	s := &b[v]
	seq := s.seq.Load()
	if seq&1 != 0 || !s.seq.CompareAndSwap(seq, seq+1) {
		return
	}
	s.k0.Store(k[0])
	s.k1.Store(k[1])
	s.n.Store(n)
	s.seq.Store(seq + 2)
}
