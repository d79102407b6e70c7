package bench_test

import "runtime/metrics"

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
