package tokens

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// memoKey is the i-th key of a test: all keys share the bucket of bucket
// (k0's low bits) and differ in the rest of k0 and in k1.
func memoKey(i uint64, bucket uint64) key {
	return key{i<<20 | bucket, i*0x9E3779B97F4A7C15 | 1}
}

// memoCount is the count a test memoises for the i-th key.
func memoCount(i uint64) int64 { return int64(i*7 + 3) }

// TestCountMemoReturnsOnlyWhatWasAdded: keys crowding one bucket (more
// than it holds) and keys spread over all buckets, added in random order:
// a hit always returns the count added for that very key, the key just
// added is found, and keys never added are not.
func TestCountMemoReturnsOnlyWhatWasAdded(t *testing.T) {
	t.Parallel()
	m := newCountMemo(64)
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		i := uint64(r.IntN(40))
		m.Add(memoKey(i, 5), memoCount(i))
		for j := range uint64(40) {
			if n, ok := m.Get(memoKey(j, 5)); ok && n != memoCount(j) {
				t.Fatalf("key %d: count %d, added %d", j, n, memoCount(j))
			}
			if _, ok := m.Get(memoKey(j+1000, 5)); ok {
				t.Fatalf("key %d was never added and is found", j+1000)
			}
		}
		// The key just added is there.
		if n, ok := m.Get(memoKey(i, 5)); !ok || n != memoCount(i) {
			t.Fatalf("key %d just added: %d, %v", i, n, ok)
		}
	}
	// A second add of a key updates its own slot.
	m.Add(memoKey(1, 9), 1)
	m.Add(memoKey(1, 9), 2)
	if n, ok := m.Get(memoKey(1, 9)); !ok || n != 2 {
		t.Fatalf("updated key: %d, %v", n, ok)
	}
	m.Add(key{5, 0}, 1)
	if _, ok := m.Get(key{5, 0}); ok {
		t.Fatal("a key with k1 = 0 (the empty slot) was memoised")
	}
}

// TestCountMemoConcurrentNeverTears: writers replace the entries of one
// bucket as fast as they can while readers look them up; a reader never
// gets one key's count for another key (the sequence lock), under -race.
func TestCountMemoConcurrentNeverTears(t *testing.T) {
	t.Parallel()
	m := newCountMemo(64)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 20000 {
				i := uint64(r.IntN(16))
				if w%2 == 0 {
					m.Add(memoKey(i, 3), memoCount(i))
					continue
				}
				if n, ok := m.Get(memoKey(i, 3)); ok && n != memoCount(i) {
					t.Errorf("key %d: count %d, added %d", i, n, memoCount(i))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCountMemoSlotBeingWritten: a slot whose sequence is odd (a writer is
// between its stores, here frozen there by hand) is neither read nor
// written by anyone else, whatever its fields hold at that moment.
func TestCountMemoSlotBeingWritten(t *testing.T) {
	t.Parallel()
	m := newCountMemo(64)
	k := memoKey(1, 2)
	m.Add(k, memoCount(1))
	s := &m.bucket(k)[0]
	if s.k0.Load() != k[0] {
		t.Fatal("the key is not in the bucket's first slot")
	}
	seq := s.seq.Load()
	s.seq.Store(seq + 1) // a writer took the slot and has replaced the count so far
	s.n.Store(99)
	if n, ok := m.Get(k); ok {
		t.Fatalf("a slot being written was read: %d", n)
	}
	m.Add(k, 42)
	if s.n.Load() != 99 || s.seq.Load() != seq+1 {
		t.Fatal("a second writer wrote a slot being written")
	}
	s.n.Store(memoCount(1))
	s.seq.Store(seq + 2) // the writer is done
	if n, ok := m.Get(k); !ok || n != memoCount(1) {
		t.Fatalf("after the write: %d, %v", n, ok)
	}
}
