package cache

import (
	"slices"
	"testing"
)

// TestAllocSizeIsTheSmallestClass: for every size from -1 to 40,000 bytes,
// allocSize (a table lookup) is the smallest size class of at least that
// many bytes, searched for in sizeClasses as allocSize did before (whole
// 8 KiB pages past 32 KiB, 0 for none).
func TestAllocSizeIsTheSmallestClass(t *testing.T) {
	for n := -1; n <= 40000; n++ {
		want := 0
		switch {
		case n <= 0:
		case n > sizeClasses[len(sizeClasses)-1]:
			want = (n + 8<<10 - 1) / (8 << 10) * (8 << 10)
		default:
			i, _ := slices.BinarySearch(sizeClasses[:], n)
			want = sizeClasses[i]
		}
		if got := allocSize(n); got != want {
			t.Fatalf("allocSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// BenchmarkAllocSize: allocSize of the sizes an 8 KB agent request's
// rope adds up (its bytes, its message encodings of 100 to 800 bytes),
// beside the binary search it made before.
func BenchmarkAllocSize(b *testing.B) {
	sizes := []int{96, 180, 560, 570, 760, 1700, 4100, 585, 590}
	b.Run("impl=table", func(b *testing.B) {
		n := 0
		for b.Loop() {
			for _, s := range sizes {
				n += allocSize(s)
			}
		}
		sinkInt = n
	})
	b.Run("impl=search", func(b *testing.B) {
		n := 0
		for b.Loop() {
			for _, s := range sizes {
				i, _ := slices.BinarySearch(sizeClasses[:], s)
				n += sizeClasses[i]
			}
		}
		sinkInt = n
	})
}

var sinkInt int
