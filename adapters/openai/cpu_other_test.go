//go:build !unix

package openai

// cpuNanos is not measured on this platform.
func cpuNanos() (int64, bool) { return 0, false }
