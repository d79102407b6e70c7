//go:build !unix

package tokens

// cpuNanos is not measured on this platform.
func cpuNanos() (int64, bool) { return 0, false }
