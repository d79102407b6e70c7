package cache

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxEntries bounds a [Memory] store whose MaxEntries is zero.
const DefaultMaxEntries = 10000

// MemoryOptions configures a [Memory] store. The zero value is a store of
// DefaultMaxEntries entries with no byte bound and no sweeper.
type MemoryOptions struct {
	// MaxEntries bounds the number of entries (least recently used go
	// first). Zero: DefaultMaxEntries.
	MaxEntries int
	// MaxBytes bounds the heap memory of the entries: every allocation an
	// entry owns (canonical request, answer, native body) rounded up to
	// the allocator's size class, plus the store's own overhead per entry
	// (LRU element, map slots). An entry larger than MaxBytes is not
	// stored. Zero: no byte bound.
	MaxBytes int64
	// SweepEvery runs a background goroutine that removes expired entries
	// at this interval; Close stops it. Zero: no goroutine; an expired entry
	// is never served and is pushed out by newer ones.
	SweepEvery time.Duration
}

// Memory is an in-process [Store]: LRU lists (hashicorp/golang-lru/v2
// simplelru) bounded by entries and by bytes, with a TTL per entry. It is
// safe for concurrent use.
//
// A large store is split into shards by key, each an LRU with its own lock
// (one lock per call, and calls on different shards do not wait for each
// other): MaxEntries is shared out between them, so that a full shard
// forgets its least recently used entry while another may have room (the
// order is least recently used per shard). The byte bound is the store's
// as a whole: a write first makes room by evicting the least recently used
// entries of its shard, then of the others, and the store never holds more
// than MaxBytes, even for a moment. A store of fewer than 4096 entries, or
// with a byte bound under 64 MiB, has one shard: exactly one LRU order.
//
// A Get of a key the store does not hold usually takes no lock: the store
// counts its entries by the low bits of their keys in a table of its own
// (about four counters an entry), and a key whose counter is zero is not
// held, which Get tells without locking the shard (the table takes 4
// bytes a counter, at most 1 MiB, and at most a 1024th of MaxBytes, besides
// the bound). A counter is
// raised before its entry is added and lowered after it is removed, so it
// is never below the number of the entries held: a key of a counter that
// is not zero (another key's, or its own) takes the lock as before. A Get
// that finds nothing changes no order, so the store's answers and its LRU
// order are those of a store without the table.
//
// Each entry carries its own expiry, checked on every Get (an expired
// entry is never served); the optional sweeper (MemoryOptions.SweepEvery)
// removes expired entries and is stopped by Close.
//
// An entry's answer is kept packed, in the binary form of
// [Entry.MarshalBinary], pointer-free (its canonical request as the entry
// had it: a copy, or pieces shared with other entries): a full store adds
// little for the garbage collector to scan. Get returns a new Entry decoded
// from it, whose strings point into the kept bytes (never modified) and
// whose slices are its own: a caller may modify them.
type Memory struct {
	shards   []memShard
	mask     uint64
	maxBytes int64
	// bytes counts the entries' bytes of a store with a byte bound (the
	// bound is the store's as a whole); without one, each shard counts
	// its own under its lock, so that concurrent writes to different
	// shards share no cache line.
	bytes atomic.Int64
	// held counts the entries held by the low bits of their keys (see
	// Memory): an entry's counter is raised before the entry is added to
	// its shard and lowered after it leaves (the shard's eviction
	// callback), both under the shard's lock.
	held     []atomic.Int32
	heldMask uint64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// hold is the TTL in force and the cap a shorter one put on the
	// entries stored before it (HoldTo).
	hold struct {
		sync.Mutex
		ttl time.Duration // the last TTL given; 0: none yet
	}
	capBefore atomic.Int64 // unix nanoseconds: entries stored before it are capped; 0: none
	capAge    atomic.Int64 // their maximum age, in nanoseconds
}

// memShard is one LRU and its lock, padded to its own cache lines.
type memShard struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[uint64, memEntry] // values, not pointers: one allocation less per Set
	bytes int64                            // the shard's entries' bytes, in a store without a byte bound
	_     [64 - 24]byte
}

// memEntry is a store's value: the packed entry itself, not a pointer to
// it, so that an entry is one object less for every garbage collection to
// mark (the collector's work grows with the objects a store keeps alive,
// each a miss of the processor's cache).
type memEntry struct {
	p       packedEntry
	size    int64
	expires int64 // unix nanoseconds; 0 = never
	stored  int64 // unix nanoseconds
}

var _ Store = (*Memory)(nil)

// Shards of a large store (see Memory).
const (
	memShards          = 16
	minShardedEntries  = 4096
	minShardedMaxBytes = 64 << 20
)

// NewMemory returns an in-memory store. Call Close when done with it if
// SweepEvery is set.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	n := 1
	if o.MaxEntries >= minShardedEntries && (o.MaxBytes <= 0 || o.MaxBytes >= minShardedMaxBytes) {
		n = memShards
	}
	return newMemory(o, n)
}

// Bounds of a store's table of held keys (Memory.held): heldPerEntry
// counters an entry, a power of two in [minHeld, maxHeld], and, in a
// store with a byte bound, of at most a 1024th of it (the table is not an
// entry's memory, which the bound counts).
const (
	heldPerEntry = 4
	minHeld      = 1 << 8
	maxHeld      = 1 << 18
)

// newMemory returns a store of n shards (a power of two).
func newMemory(o MemoryOptions, n int) *Memory {
	m := &Memory{shards: make([]memShard, n), mask: uint64(n - 1), maxBytes: o.MaxBytes}
	h := minHeld
	for h < maxHeld && h < heldPerEntry*o.MaxEntries && (o.MaxBytes <= 0 || int64(8*h) <= o.MaxBytes/1024) {
		h <<= 1
	}
	m.held, m.heldMask = make([]atomic.Int32, h), uint64(h-1)
	for i := range m.shards {
		size := o.MaxEntries / n
		if i < o.MaxEntries%n {
			size++
		}
		// The callback runs under the shard's lock: it only adjusts a counter.
		s := &m.shards[i]
		s.lru, _ = simplelru.NewLRU[uint64, memEntry](size, func(k uint64, v memEntry) {
			m.heldOf(k).Add(-1) // the entry is out of the shard's map
			if m.maxBytes > 0 {
				m.bytes.Add(-v.size)
			} else {
				s.bytes -= v.size
			}
		})
	}
	if o.SweepEvery > 0 {
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.sweep(o.SweepEvery)
	}
	return m
}

func (m *Memory) shard(key uint64) *memShard {
	// The key is a hash already; its top bits pick the shard (the low ones
	// pick map buckets).
	return &m.shards[(key>>58)&m.mask]
}

// heldOf returns the counter of key in the table of held keys.
func (m *Memory) heldOf(key uint64) *atomic.Int32 {
	return &m.held[key&m.heldMask]
}

// Get returns the live entry stored under key, or nil.
func (m *Memory) Get(_ context.Context, key uint64) (*Entry, error) {
	if m.heldOf(key).Load() == 0 {
		return nil, nil // no entry of the key's counter: not held (see Memory)
	}
	s := m.shard(key)
	s.mu.Lock()
	v, ok := s.lru.Get(key)
	s.mu.Unlock()
	if !ok {
		return nil, nil
	}
	now := time.Now().UnixNano()
	if v.expires != 0 && now >= v.expires || m.capped(v, now) {
		return nil, nil
	}
	return v.p.entry(), nil
}

// capped reports whether v, stored before a reload shortened the TTL, is
// older than the shorter TTL (HoldTo).
func (m *Memory) capped(v memEntry, now int64) bool {
	before := m.capBefore.Load()
	return before != 0 && v.stored < before && now-v.stored >= m.capAge.Load()
}

// HoldTo tells the store the cache TTL in force (0: none); llmwrap calls
// it at every build of a chain on a store kept across reloads. When it is
// shorter than the one given before, every entry stored until now is held
// to it from when it was stored: an answer kept under the longer TTL is a
// miss once older than the new one, so that a reload to a shorter TTL
// never leaves older answers served. (Entries stored from now on expire by
// their own TTL.)
func (m *Memory) HoldTo(ttl time.Duration) {
	if ttl < 0 {
		return
	}
	forever := time.Duration(math.MaxInt64)
	if ttl == 0 {
		ttl = forever
	}
	m.hold.Lock()
	defer m.hold.Unlock()
	prev := m.hold.ttl
	m.hold.ttl = ttl
	if prev == 0 || ttl >= prev {
		return
	}
	// A second shrink holds every older entry to the shorter of the two
	// caps: an entry capped before keeps its cap.
	age := int64(ttl)
	if m.capBefore.Load() != 0 {
		age = min(age, m.capAge.Load())
	}
	m.capAge.Store(age)
	m.capBefore.Store(time.Now().UnixNano() + 1)
}

// Set stores e under key for ttl (0 = until evicted), evicting the least
// recently used entries until both bounds hold.
func (m *Memory) Set(_ context.Context, key uint64, e *Entry, ttl time.Duration) error {
	m.setPacked(key, pack(e), ttl)
	return nil
}

// setPacked is Set of a packed entry.
func (m *Memory) setPacked(key uint64, p packedEntry, ttl time.Duration) {
	now := time.Now()
	v := memEntry{p: p, size: p.size(), stored: now.UnixNano()}
	if ttl > 0 {
		v.expires = now.Add(ttl).UnixNano()
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Remove(key) // never leave an older answer in place of this one; the callback subtracts its size
	if m.maxBytes > 0 && !m.reserve(s, v.size) {
		return // larger than the bound, or no room could be made
	}
	if m.maxBytes <= 0 {
		s.bytes += v.size
	}
	m.heldOf(key).Add(1) // before the entry is in the shard's map (see Memory)
	s.lru.Add(key, v)
}

// reserve counts n more bytes, evicting least recently used entries (of
// s first, whose lock the caller holds, then of the other shards) until
// they fit under the bound. It reports false, having counted nothing,
// when they cannot fit.
func (m *Memory) reserve(s *memShard, n int64) bool {
	if n > m.maxBytes {
		return false
	}
	for {
		cur := m.bytes.Load()
		if cur+n <= m.maxBytes {
			if m.bytes.CompareAndSwap(cur, cur+n) {
				return true
			}
			continue
		}
		if _, _, ok := s.lru.RemoveOldest(); ok {
			continue
		}
		if !m.evictElsewhere(s) {
			return false
		}
	}
}

// evictElsewhere evicts the least recently used entry of another shard.
// Shards whose lock is taken are skipped (waiting for them while holding
// s could deadlock with a writer there doing the same).
func (m *Memory) evictElsewhere(s *memShard) bool {
	for i := range m.shards {
		o := &m.shards[i]
		if o == s || !o.mu.TryLock() {
			continue
		}
		_, _, ok := o.lru.RemoveOldest()
		o.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// Delete removes the entry stored under key.
func (m *Memory) Delete(_ context.Context, key uint64) error {
	s := m.shard(key)
	s.mu.Lock()
	s.lru.Remove(key)
	s.mu.Unlock()
	return nil
}

// Len returns the number of entries, expired ones not yet removed included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Bytes returns the heap memory the entries hold, as MaxBytes counts it.
func (m *Memory) Bytes() int64 {
	if m.maxBytes > 0 {
		return m.bytes.Load()
	}
	var n int64
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper, if any, and waits for it. The store stays
// usable. Close is idempotent.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			close(m.stop)
			<-m.done
		}
	})
	return nil
}

func (m *Memory) sweep(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.removeExpired()
		}
	}
}

func (m *Memory) removeExpired() {
	now := time.Now().UnixNano()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, k := range s.lru.Keys() {
			if v, ok := s.lru.Peek(k); ok && (v.expires != 0 && now >= v.expires || m.capped(v, now)) {
				s.lru.Remove(k)
			}
		}
		s.mu.Unlock()
	}
}
