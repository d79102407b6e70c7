//go:build !unix

package timeout_test

// cpuNanos is not measured on this platform.
func cpuNanos() (int64, bool) { return 0, false }
