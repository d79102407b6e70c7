//go:build !unix

package breaker_test

// cpuNanos is not measured on this platform.
func cpuNanos() (int64, bool) { return 0, false }
