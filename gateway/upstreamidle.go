package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// A passed-through call the gateway does not police (a file's listing or
// upload, an audio transcription, legacy completions with pass_unpoliced,
// a model's retrieval, a background response's) has no team timeout: a
// transcription of a long recording may take longer than a chat call.
// limits.upstream_idle bounds it instead, by what the upstream does: the
// time it takes to read the next piece of the request's body, to send its
// answer's headers once it has the request, and to send each next piece
// of the answer's body. The clock runs only while the gateway waits for
// the upstream, never while it waits for the client (a slow upload is
// bounded by limits.read_timeout, a client slow to read by
// limits.write_timeout). An upstream silent that long ends the call: an
// OpenAI-shaped 504 before the answer began, a cut answer after.

// upstreamIdleError is the cause of a call upstream_idle ended; it
// matches middleware.ErrTimeout (an OpenAI-shaped 504).
type upstreamIdleError struct{ limit time.Duration }

func (e *upstreamIdleError) Is(target error) bool { return target == middleware.ErrTimeout }

func (e *upstreamIdleError) Error() string {
	return "tokenwise/gateway: the upstream sent nothing for " + e.limit.String() + " (limits.upstream_idle)"
}

// upstreamIdle is the clock of one call.
type upstreamIdle struct {
	limit  time.Duration
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	timer *time.Timer // running while the gateway waits for the upstream
	fired bool
}

// newUpstreamIdle returns r with a context that the clock cancels, and
// the clock (nil, and r unchanged, when limit is not positive).
func newUpstreamIdle(r *http.Request, limit time.Duration) (*http.Request, *upstreamIdle) {
	if limit <= 0 {
		return r, nil
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	u := &upstreamIdle{limit: limit, cancel: cancel}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &idleBody{ReadCloser: r.Body, u: u, upload: true}
	}
	return r.WithContext(ctx), u
}

// wait starts the clock (the gateway waits for the upstream); rest
// stops it.
func (u *upstreamIdle) wait() {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fired {
		return
	}
	if u.timer == nil {
		u.timer = time.AfterFunc(u.limit, u.fire)
		return
	}
	u.timer.Reset(u.limit)
}

func (u *upstreamIdle) rest() {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.timer != nil {
		u.timer.Stop()
	}
}

func (u *upstreamIdle) fire() {
	u.mu.Lock()
	u.fired = true
	u.mu.Unlock()
	u.cancel(&upstreamIdleError{limit: u.limit})
}

// cause is the clock's error when it ended the call, else nil.
func (u *upstreamIdle) cause() error {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.fired {
		return nil
	}
	return &upstreamIdleError{limit: u.limit}
}

// stop ends the clock for good (the call is over).
func (u *upstreamIdle) stop() {
	if u == nil {
		return
	}
	u.rest()
	u.cancel(nil)
}

// transport runs the clock from the request's send to its answer's
// headers, but while the transport waits for the client's upload.
func (u *upstreamIdle) transport(next http.RoundTripper) http.RoundTripper {
	if u == nil {
		return next
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		u.wait()
		resp, err := next.RoundTrip(r)
		u.rest()
		if err != nil && u.cause() != nil {
			err = u.cause()
		}
		// (An upgraded connection, a WebSocket, is no answer to wait
		// for: it is passed on as it is, unbounded as before.)
		if resp != nil && resp.Body != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			resp.Body = &idleBody{ReadCloser: resp.Body, u: u}
		}
		return resp, err
	})
}

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// idleBody runs the clock around its reads: an answer's body while a read
// waits for the upstream; an upload's the other way round, stopped while
// a read waits for the client and running while the transport writes
// what it read to the upstream.
type idleBody struct {
	io.ReadCloser
	u      *upstreamIdle
	upload bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.upload {
		b.u.rest()
	} else {
		b.u.wait()
	}
	n, err := b.ReadCloser.Read(p)
	if b.upload {
		if err == nil {
			b.u.wait()
		} else if errors.Is(err, io.EOF) {
			b.u.wait() // sent whole: now the upstream's answer
		}
	} else {
		b.u.rest()
		if err != nil && !errors.Is(err, io.EOF) && b.u.cause() != nil {
			err = b.u.cause()
		}
	}
	return n, err
}

// idleBound is the base transport of the chat completions' chain. An
// attempt whose context has no deadline — its team's policy sets no
// timeouts.call, timeouts.total or limits.run_timeout for it, and an
// in-process caller gave it none — has nothing to bound it: its team's
// file neither extends the default policy nor writes timeouts:, and an
// upstream that never answers would hold it, its client and its
// reservation for as long as the client waits. limits.upstream_idle bounds
// such an attempt as it bounds a passed-through call: its answer's
// headers and each next piece of its answer must come within it. An
// attempt its team's timeouts bound is passed on untouched.
type idleBound struct {
	next  http.RoundTripper
	limit func() time.Duration
}

func (t idleBound) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Context().Deadline(); ok {
		return t.next.RoundTrip(r)
	}
	limit := t.limit()
	if limit <= 0 {
		return t.next.RoundTrip(r)
	}
	// The request's body is in memory (the transport encoded it): the
	// clock runs from the send, without an upload's pauses.
	ctx, cancel := context.WithCancelCause(r.Context())
	u := &upstreamIdle{limit: limit, cancel: cancel}
	resp, err := u.transport(t.next).RoundTrip(r.WithContext(ctx))
	if err != nil || resp == nil || resp.Body == nil {
		u.stop()
		return resp, err
	}
	resp.Body = &stopIdle{ReadCloser: resp.Body, u: u}
	return resp, nil
}

// stopIdle ends its clock when the answer is closed.
type stopIdle struct {
	io.ReadCloser
	u *upstreamIdle
}

func (b *stopIdle) Close() error {
	err := b.ReadCloser.Close()
	b.u.stop()
	return err
}
