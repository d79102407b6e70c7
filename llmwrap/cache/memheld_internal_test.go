package cache

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestMemoryMissTakesNoLock: a Get of a key whose counter in the table of
// held keys is zero returns nil without the shard's lock (the miss path's
// Get took it on every call: 55 % of the lock wait of ChainMissScaling's
// 64 goroutines, -mutexprofile). Every shard's lock is held here while
// such Gets run: with the lock taken they would never return (the test
// would hang until its timeout). A key held, and a key that shares a
// held key's counter, still go through the lock (checked after the locks
// are released: they are served exactly as before).
func TestMemoryMissTakesNoLock(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, memShards} {
		m := newMemory(MemoryOptions{MaxEntries: 64}, n)
		e := &Entry{Request: []byte("r"), Response: middleware.Response{FinishReason: "stop", Message: middleware.Message{Content: "a"}}}
		// Keys of counters 1..8, one in each shard's range of top bits.
		var held []uint64
		for i := range uint64(8) {
			k := i<<58 | (i + 1)
			_ = m.Set(ctx, k, e, 0)
			held = append(held, k)
		}
		for i := range m.shards {
			m.shards[i].mu.Lock()
		}
		for i := range uint64(200) {
			k := (i%64)<<58 | (i + 9) // counters 9..208: none held
			if got, err := m.Get(ctx, k); got != nil || err != nil {
				t.Fatalf("shards=%d: key %#x not held: Get = %v, %v", n, k, got, err)
			}
		}
		for i := range m.shards {
			m.shards[i].mu.Unlock()
		}
		for _, k := range held {
			if got, _ := m.Get(ctx, k); got == nil || got.Response.Message.Content != "a" {
				t.Fatalf("shards=%d: key %#x held: Get = %v", n, k, got)
			}
			// Another key of the same counter: the lock, and a miss.
			if got, _ := m.Get(ctx, k^(1<<40)); got != nil {
				t.Fatalf("shards=%d: key %#x not held: Get = %v", n, k^(1<<40), got)
			}
		}
	}
}

// TestMemoryHeldCountsAreExact: over random sequences of stores (new keys,
// the same key again, entries too large for the byte bound), deletions,
// expiries and sweeps, on a sharded and a single store with and without a
// byte bound, every counter of the table of held keys is exactly the
// number of the entries held whose key it counts, and Get serves a key if
// and only if its shard holds a live entry of it (what a locked lookup
// finds, Peek not moving the order).
func TestMemoryHeldCountsAreExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		for seed := range uint64(40) {
			rng := rand.New(rand.NewPCG(seed, 17))
			n := []int{1, memShards}[seed%2]
			o := MemoryOptions{MaxEntries: n + rng.IntN(40)} // a shard holds one entry at least
			if seed%4 >= 2 {
				o.MaxBytes = int64(2<<10 + rng.IntN(16<<10))
			}
			m := newMemory(o, n)
			// Few keys, many sharing counters: the low bits from 0..7,
			// the top bits from 0..63 (every shard).
			key := func() uint64 {
				return uint64(rng.IntN(64))<<58 | uint64(rng.IntN(4))<<30 | uint64(rng.IntN(8))
			}
			for step := range 400 {
				switch op := rng.IntN(10); {
				case op < 6:
					e := &Entry{Request: []byte("r"), Response: middleware.Response{FinishReason: "stop",
						Message: middleware.Message{Content: string(make([]byte, rng.IntN(6<<10)))}}}
					var ttl time.Duration
					if rng.IntN(2) == 0 {
						ttl = time.Duration(1+rng.IntN(5)) * time.Second
					}
					_ = m.Set(ctx, key(), e, ttl)
				case op < 7:
					_ = m.Delete(ctx, key())
				case op < 8:
					time.Sleep(time.Second) // synctest's clock: entries expire
				case op < 9:
					m.removeExpired()
				default:
					_, _ = m.Get(ctx, key())
				}
				want := make(map[uint64]int32)
				for i := range m.shards {
					for _, k := range m.shards[i].lru.Keys() {
						want[k&m.heldMask]++
					}
				}
				for i := range m.held {
					if got := m.held[i].Load(); got != want[uint64(i)] {
						t.Fatalf("seed %d step %d: counter %d is %d, %d entries held of it", seed, step, i, got, want[uint64(i)])
					}
				}
				for range 8 {
					k := key()
					v, ok := m.shard(k).lru.Peek(k)
					live := ok && (v.expires == 0 || time.Now().UnixNano() < v.expires)
					if got, _ := m.Get(ctx, k); (got != nil) != live {
						t.Fatalf("seed %d step %d: key %#x: served %v, held live %v", seed, step, k, got != nil, live)
					}
				}
			}
		}
	})
}

// TestMemoryHeldCountsAreExactUnderConcurrentWrites: goroutines storing,
// replacing, deleting and reading keys of shared counters in a sharded
// store with a byte bound (whose writes evict other shards' entries,
// under those shards' locks) leave every counter equal to the entries
// held of it; a Get that misses a key just stored is checked against the
// shard under its lock: the key is not held (another write evicted it).
func TestMemoryHeldCountsAreExactUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	m := newMemory(MemoryOptions{MaxEntries: 160, MaxBytes: 96 << 10}, memShards)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 23))
			for range 4000 {
				k := uint64(rng.IntN(64))<<58 | uint64(rng.IntN(16))
				switch rng.IntN(4) {
				case 0:
					_ = m.Delete(ctx, k)
				case 1:
					_, _ = m.Get(ctx, k)
				default:
					e := &Entry{Request: []byte("r"), Response: middleware.Response{FinishReason: "stop",
						Message: middleware.Message{Content: string(make([]byte, rng.IntN(4<<10)))}}}
					_ = m.Set(ctx, k, e, 0)
					if got, _ := m.Get(ctx, k); got == nil {
						s := m.shard(k)
						s.mu.Lock()
						_, held := s.lru.Peek(k)
						n := m.heldOf(k).Load()
						s.mu.Unlock()
						if held && n == 0 {
							t.Errorf("key %#x held, its counter 0", k)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	want := make(map[uint64]int32)
	for i := range m.shards {
		for _, k := range m.shards[i].lru.Keys() {
			want[k&m.heldMask]++
		}
	}
	if len(want) == 0 {
		t.Fatal("the store holds nothing")
	}
	for i := range m.held {
		if got := m.held[i].Load(); got != want[uint64(i)] {
			t.Fatalf("counter %d is %d, %d entries held of it", i, got, want[uint64(i)])
		}
	}
}
