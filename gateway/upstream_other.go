//go:build !unix

package gateway

func (pc *syncConn) initPeek() {}

// alive reports whether an idle connection is still open. Without a read
// that does not wait, no connection can be checked: one idle for
// checkAfter is taken as closed.
func (pc *syncConn) alive() (open, checked bool) { return false, false }
