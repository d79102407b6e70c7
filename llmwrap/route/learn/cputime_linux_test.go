package learn_test

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling OS thread: on a shared
// machine it measures the work of a benchmark without the time other
// processes took the core. The caller locks its OS thread.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
