package tokens

import (
	"math/rand/v2"

	lru "github.com/hashicorp/golang-lru/v2"
)

// countMemo is the memo of per-message and per-tool counts: an LRU per
// shard, the shard picked by the key (a hash already). A lookup in an LRU
// takes its lock exclusively (it moves the entry to the front), so with
// one LRU every concurrent call of an Estimator waited on the same lock;
// with shards they rarely meet. A memo of fewer than minShardedMemo
// entries has one shard: exactly one LRU order.
type countMemo struct {
	shards []*lru.Cache[key, int64] // each its own allocation: no shared cache line between their locks
	mask   uint64
}

const (
	memoShards     = 16
	minShardedMemo = 4096
)

// newCountMemo returns a memo of size entries in all (size > 0).
func newCountMemo(size int) *countMemo {
	n := 1
	if size >= minShardedMemo {
		n = memoShards
	}
	m := &countMemo{shards: make([]*lru.Cache[key, int64], n), mask: uint64(n - 1)}
	for i := range m.shards {
		s := size / n
		if i < size%n {
			s++
		}
		m.shards[i], _ = lru.New[key, int64](s) // error only for s <= 0
	}
	return m
}

func (m *countMemo) shard(k key) *lru.Cache[key, int64] {
	return m.shards[(k[0]>>58)&m.mask] // the top bits: the LRU's map uses the low ones
}

// Get returns the count memoised under k. A hit reads under the shard's
// shared lock (concurrent hits of the same entries, such as the system
// prompt and tools every call of a service sends, do not wait for each
// other) and moves the entry to the front one time in promoteEvery: an
// entry in use is promoted often enough to stay, an approximation of the
// LRU order that only changes which counts are kept, never a count.
func (m *countMemo) Get(k key) (int64, bool) {
	s := m.shard(k)
	v, ok := s.Peek(k)
	if ok && rand.Uint32()%promoteEvery == 0 {
		s.Get(k)
	}
	return v, ok
}

// promoteEvery: a hit moves its entry to the front of its LRU once in so
// many, on average.
const promoteEvery = 8

// Add memoises v under k, evicting the shard's least recently used entry
// when it is full.
func (m *countMemo) Add(k key, v int64) { m.shard(k).Add(k, v) }
