//go:build !linux

package bench_test

func threadCPUNanos() (int64, bool) { return 0, false }
