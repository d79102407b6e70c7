//go:build unix

package gateway

import (
	"errors"
	"syscall"
)

// alive reports whether an idle connection is still open: a read that does
// not wait and does not consume finds nothing to read. The upstream's
// close (EOF), a reset, or bytes it sent unasked (an idle connection has
// no answer to read) mean the connection cannot carry a request.
func (pc *syncConn) alive() bool {
	sc, ok := pc.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
		return true // never wait
	})
	return err == nil && ok
}
