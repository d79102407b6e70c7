package bench_test

import (
	"runtime"
	"runtime/metrics"
)

// gcNanos returns the CPU time the garbage collector has spent in this
// process so far, in nanoseconds (the runtime's own estimate: mark
// workers, assists and pauses).
func gcNanos() int64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return int64(s[0].Value.Float64() * 1e9)
}

// scanHeapBytes returns, after a full collection, the bytes of the live
// heap the garbage collector scans at every cycle (objects with pointers):
// what the client keeps alive costs every later cycle of the process.
func scanHeapBytes() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
