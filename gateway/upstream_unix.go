//go:build unix

package gateway

import (
	"errors"
	"syscall"
)

// initPeek makes pc's connection checkable by alive: its raw connection
// and the peek function, made once a connection, so that a check
// allocates nothing.
func (pc *syncConn) initPeek() {
	sc, ok := pc.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	pc.raw, pc.peekFn = rc, pc.peek
}

// alive reports whether an idle connection is still open — a read that
// does not wait and does not consume finds nothing to read — and whether
// it could be checked (a connection with no file descriptor, a pipe,
// cannot). The upstream's close (EOF), a reset, or bytes it sent unasked
// (an idle connection has no answer to read) mean the connection cannot
// carry a request.
func (pc *syncConn) alive() (open, checked bool) {
	if pc.raw == nil {
		return false, false
	}
	pc.peekOpen = false
	err := pc.raw.Read(pc.peekFn)
	return err == nil && pc.peekOpen, true
}

func (pc *syncConn) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), pc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	pc.peekOpen = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
	return true // never wait
}
