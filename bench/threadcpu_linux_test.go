package bench_test

import "syscall"

// threadCPUNanos returns the CPU time of the calling OS thread in
// nanoseconds, and whether it is known. A benchmark that locks its OS
// thread (runtime.LockOSThread) measures with it the work of its own
// goroutine (a client's encoding, decoding and, through tokenwise, the
// chain and the stream's coroutine, with the garbage collector's assists
// of what it allocates), without the local server's CPU, the connection's
// goroutines, the collector's background workers or other processes'
// turns on the core: on a shared machine it moves far less than the
// process's CPU time.
func threadCPUNanos() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
