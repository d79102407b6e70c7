//go:build unix

package openai

import "syscall"

// cpuNanos returns the process's user+system CPU time in nanoseconds, and
// whether it is known: the figure of a benchmark on a shared machine,
// where wall time mostly measures the other processes.
func cpuNanos() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
