//go:build !unix

package gateway

// alive reports whether an idle connection is still open. Without a read
// that does not wait, a connection idle for checkAfter is taken as closed.
func (pc *syncConn) alive() bool { return false }
