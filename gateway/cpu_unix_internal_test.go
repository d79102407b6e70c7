//go:build unix

package gateway

import "syscall"

// procCPUSelf returns the CPU time (ns) this process has used.
func procCPUSelf() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
