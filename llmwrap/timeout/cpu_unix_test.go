//go:build unix

package timeout_test

import "syscall"

// cpuNanos returns the process's user+system CPU time in nanoseconds, and
// whether it is known.
func cpuNanos() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
