package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
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

// Memory is an in-process [Store]: an LRU (hashicorp/golang-lru/v2
// expirable) bounded by entries and by bytes, with a TTL per entry. It is
// safe for concurrent use.
//
// The expirable LRU is used with its own TTL off: its cleanup goroutine
// cannot be stopped in v2.0.7 and its TTL is the same for every entry,
// while a cache needs a TTL per entry (per policy and per request). Each
// entry carries its own expiry instead, checked on every Get, and the
// optional sweeper (MemoryOptions.SweepEvery) is owned by the store and
// stopped by Close.
type Memory struct {
	lru      *expirable.LRU[uint64, memEntry] // values, not pointers: one allocation less per Set
	maxBytes int64
	bytes    atomic.Int64

	mu sync.Mutex // serialises writers, so that the byte bound holds

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memEntry struct {
	e       *Entry
	size    int64
	expires int64 // unix nanoseconds; 0 = never
}

var _ Store = (*Memory)(nil)

// NewMemory returns an in-memory store. Call Close when done with it if
// SweepEvery is set.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	m := &Memory{maxBytes: o.MaxBytes}
	// The callback runs under the LRU's lock: it only adjusts a counter.
	m.lru = expirable.NewLRU[uint64, memEntry](o.MaxEntries, func(_ uint64, v memEntry) { m.bytes.Add(-v.size) }, 0)
	if o.SweepEvery > 0 {
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.sweep(o.SweepEvery)
	}
	return m
}

// Get returns the live entry stored under key, or nil.
func (m *Memory) Get(_ context.Context, key uint64) (*Entry, error) {
	v, ok := m.lru.Get(key)
	if !ok || v.expires != 0 && time.Now().UnixNano() >= v.expires {
		return nil, nil
	}
	return v.e, nil
}

// Set stores e under key for ttl (0 = until evicted), evicting the least
// recently used entries until both bounds hold.
func (m *Memory) Set(_ context.Context, key uint64, e *Entry, ttl time.Duration) error {
	v := memEntry{e: e, size: e.size()}
	if ttl > 0 {
		v.expires = time.Now().Add(ttl).UnixNano()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.maxBytes > 0 && v.size > m.maxBytes {
		m.lru.Remove(key) // never leave an older answer in place of this one
		return nil
	}
	m.lru.Remove(key) // the eviction callback subtracts its size
	// Make room first, so that Bytes never exceeds the bound, even for a
	// moment.
	for m.maxBytes > 0 && m.bytes.Load()+v.size > m.maxBytes {
		if _, _, ok := m.lru.RemoveOldest(); !ok {
			break
		}
	}
	m.bytes.Add(v.size)
	m.lru.Add(key, v)
	return nil
}

// Delete removes the entry stored under key.
func (m *Memory) Delete(_ context.Context, key uint64) error {
	m.mu.Lock()
	m.lru.Remove(key)
	m.mu.Unlock()
	return nil
}

// Len returns the number of entries, expired ones not yet removed included.
func (m *Memory) Len() int { return m.lru.Len() }

// Bytes returns the heap memory the entries hold, as MaxBytes counts it.
func (m *Memory) Bytes() int64 { return m.bytes.Load() }

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
	for _, k := range m.lru.Keys() {
		m.mu.Lock()
		if v, ok := m.lru.Peek(k); ok && v.expires != 0 && now >= v.expires {
			m.lru.Remove(k)
		}
		m.mu.Unlock()
	}
}
