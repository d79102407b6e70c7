package tokens

import (
	"math/rand/v2"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// countMemo is the memo of per-message and per-tool counts: an LRU per
// shard, the shard picked by the key (a hash already). A lookup in an LRU
// moves the entry to the front, a write; with one LRU under one lock every
// concurrent call of an Estimator waited on it. Here a hit reads under the
// shard's shared lock and promotes its entry only now and then, and only
// when the lock is free (see Get); a memo of minShardedMemo entries or
// more has memoShards shards, so that misses, which add under the
// exclusive lock, rarely meet either. A smaller memo has one shard.
type countMemo struct {
	shards []memoShard
	mask   uint64
}

// memoShard is one LRU and its lock, padded to its own cache lines.
type memoShard struct {
	mu  sync.RWMutex
	lru *simplelru.LRU[key, int64]
	_   [64 - 32]byte
}

const (
	memoShards     = 16
	minShardedMemo = 4096
	// promoteEvery: a hit moves its entry to the front of its LRU once
	// in so many, on average.
	promoteEvery = 8
)

// newCountMemo returns a memo of size entries in all (size > 0).
func newCountMemo(size int) *countMemo {
	n := 1
	if size >= minShardedMemo {
		n = memoShards
	}
	m := &countMemo{shards: make([]memoShard, n), mask: uint64(n - 1)}
	for i := range m.shards {
		s := size / n
		if i < size%n {
			s++
		}
		m.shards[i].lru, _ = simplelru.NewLRU[key, int64](s, nil) // error only for s <= 0
	}
	return m
}

func (m *countMemo) shard(k key) *memoShard {
	return &m.shards[(k[0]>>58)&m.mask] // the top bits: the LRU's map uses the low ones
}

// Get returns the count memoised under k. A hit reads under the shard's
// shared lock (concurrent hits of the same entries, such as the system
// prompt and tools every call of a service sends, do not wait for each
// other) and, one time in promoteEvery, moves the entry to the front if
// the exclusive lock is free at once: an entry in use is promoted often
// enough to stay. It is an approximation of the LRU order, which only
// changes which counts are kept, never a count.
func (m *countMemo) Get(k key) (int64, bool) {
	s := m.shard(k)
	s.mu.RLock()
	v, ok := s.lru.Peek(k)
	s.mu.RUnlock()
	if ok && rand.Uint32()%promoteEvery == 0 && s.mu.TryLock() {
		s.lru.Get(k)
		s.mu.Unlock()
	}
	return v, ok
}

// Add memoises v under k, evicting the shard's least recently used entry
// when it is full.
func (m *countMemo) Add(k key, v int64) {
	s := m.shard(k)
	s.mu.Lock()
	s.lru.Add(k, v)
	s.mu.Unlock()
}

// len returns the number of entries.
func (m *countMemo) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += s.lru.Len()
		s.mu.RUnlock()
	}
	return n
}
