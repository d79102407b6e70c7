package tokens

import (
	"math/rand/v2"
	"testing"
)

// TestCountMemoBoundedAndExact: whatever the keys, the memo returns for a
// key the last count added under it or nothing, and never holds more than
// its size, sharded (16384) or not (100).
func TestCountMemoBoundedAndExact(t *testing.T) {
	for _, size := range []int{100, DefaultCacheSize} {
		m := newCountMemo(size)
		rng := rand.New(rand.NewPCG(uint64(size), 3))
		want := map[key]int64{}
		for i := range 4 * size {
			k := key{rng.Uint64(), rng.Uint64()}
			if i%3 == 0 && len(want) > 0 { // overwrite a key seen before
				for old := range want {
					k = old
					break
				}
			}
			m.Add(k, int64(i))
			want[k] = int64(i)
		}
		held := 0
		for k, v := range want {
			got, ok := m.Get(k)
			if ok {
				held++
				if got != v {
					t.Fatalf("size %d: key %v holds %d, last added %d", size, k, got, v)
				}
			}
		}
		total := m.len()
		if total > size || held > size || held < size/2 {
			t.Fatalf("size %d: %d entries, %d of the keys held", size, total, held)
		}
	}
}

// TestCountMemoKeepsEntriesInUse: an entry read between the additions
// that turn the memo over stays (hits promote it), and one never read
// again goes.
func TestCountMemoKeepsEntriesInUse(t *testing.T) {
	m := newCountMemo(100)
	hot, cold := key{1, 1}, key{2, 2}
	m.Add(hot, 7)
	m.Add(cold, 8)
	for i := range 1000 {
		m.Add(key{uint64(i) + 10, 3}, 1)
		for range 10 {
			if v, ok := m.Get(hot); !ok || v != 7 {
				t.Fatalf("after %d additions the entry in use is gone (%d, %v)", i+1, v, ok)
			}
		}
	}
	if _, ok := m.Get(cold); ok {
		t.Fatal("an entry never read survived 1000 additions to a memo of 100")
	}
}
