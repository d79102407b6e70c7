// Package sendtrack tells whether an HTTP request reached its server
// whole: a call that ended before its request was written (its timeout or
// cancellation came while the connection was being made) never reached
// the provider, which bills nothing for it (middleware.NotSentError).
package sendtrack

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// Tracker records that a request was written whole. Its zero value is
// ready; a nil Tracker reports every request sent.
type Tracker struct {
	sent  atomic.Bool
	trace httptrace.ClientTrace
}

// Sent reports whether the request was written whole (true for a nil
// Tracker: a request that was not tracked).
func (t *Tracker) Sent() bool { return t == nil || t.sent.Load() }

// Context returns ctx with t as the trace of net/http's Transport, which
// reports the end of a request's write to it (WroteRequest). net/http
// writes a body it knows to be in memory with the request's headers, in
// one write, which a wrapped body (Body) would cost: for net/http's
// Transport, track through the context.
func (t *Tracker) Context(ctx context.Context) context.Context {
	t.trace.WroteRequest = t.wrote
	return httptrace.WithClientTrace(ctx, &t.trace)
}

func (t *Tracker) wrote(info httptrace.WroteRequestInfo) {
	if info.Err == nil {
		t.sent.Store(true)
	}
}

// Body returns rc, a request body of n bytes (≤ 0: unknown, its end then
// tells), tracked: read whole by the transport, the request is sent. For
// a transport other than net/http's, which may not call a trace.
func (t *Tracker) Body(rc io.ReadCloser, n int64) io.ReadCloser {
	return &body{rc: rc, n: n, t: t}
}

type body struct {
	rc   io.ReadCloser
	n    int64
	read int64
	t    *Tracker
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if b.read += int64(n); b.n > 0 && b.read >= b.n || err == io.EOF {
		b.t.sent.Store(true)
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// Track returns req, to be sent by rt, tracked by a new Tracker: through
// the context for net/http's Transport, through its body (and GetBody's)
// otherwise. A request without a body is not tracked (nil).
func Track(rt http.RoundTripper, req *http.Request) (*http.Request, *Tracker) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	t := &Tracker{}
	if _, ok := rt.(*http.Transport); ok {
		return req.WithContext(t.Context(req.Context())), t
	}
	r := *req
	r.Body = t.Body(req.Body, req.ContentLength)
	if gb := req.GetBody; gb != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			rc, err := gb()
			if err != nil {
				return nil, err
			}
			return t.Body(rc, req.ContentLength), nil
		}
	}
	return &r, t
}
