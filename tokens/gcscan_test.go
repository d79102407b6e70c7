package tokens

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// scannedHeap returns, after a full collection, the bytes of the live
// heap the garbage collector scans at every cycle.
func scannedHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestEstimatorTablesAreScannedLightly: what an estimator keeps alive
// for the process's collector to scan at every cycle — its identity
// tables of 64k slots — is their entry pointers only, not the hashes
// beside them: about 8 bytes a slot (it was 16). Its vocabularies and
// count memo hold no pointers at all.
func TestEstimatorTablesAreScannedLightly(t *testing.T) {
	New().Text("gpt-4o", "warm up") // the vocabularies, loaded once per process
	best := int64(1 << 62)
	for range 3 { // the least disturbed of three measures
		before := scannedHeap()
		e := New()
		d := scannedHeap() - before
		runtime.KeepAlive(e)
		best = min(best, d)
	}
	slots := int64(4*DefaultCacheSize + DefaultCacheSize/4)
	if best > 10*slots {
		t.Fatalf("an estimator adds %d bytes to the scanned heap, over 10 bytes a slot of its %d identity slots", best, slots)
	}
	t.Logf("an estimator adds %d bytes to the scanned heap (%d identity slots)", best, slots)
}
