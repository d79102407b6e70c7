package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// The gateway's deadlines on its clients' connections. The http.Server
// has a ReadHeaderTimeout only: a whole-request ReadTimeout or a
// whole-answer WriteTimeout would cut long streams. Instead each request
// is served (timed) with
//
//   - a read deadline on its body (limits.read_timeout from the start of
//     the handler), lifted once the body was read to its end, so that the
//     rest of the call (a long stream, net/http's watch for the client's
//     hang-up) is not bound by it; a body that does not come whole in time
//     is answered an OpenAI-shaped 408 (bodyTimeout);
//   - a write deadline armed again before every write and flush of its
//     answer (timedWriter): a client that stops reading (keeping its
//     connection open) fails the write within the limit. net/http then
//     cancels the request's context (a failed write to the connection
//     does, as a hang-up does), so that the chain or the fallback chain
//     ends, its upstream call is cancelled and what it holds is settled
//     as a client's hang-up is. A client that reads, however slowly its
//     answer's pieces go, is never cut.
//
// The in-process transport's writer (Server.Transport, TransportFor)
// takes write deadlines as a connection does. A ResponseWriter that takes
// none (a caller's own server's writer without Unwrap) is served as it is.

// timed serves r through h with the deadlines above.
//
// (Not inlined, which costs nothing: it runs once, as the routes are
// built. Its handler is then compiled as the gateway's, where
// http.NewResponseController is inlined and its controller made in tw's
// allocation, in its callers' tests too.)
//
//go:noinline
func (s *Server) timed(h http.Handler) http.Handler {
	readLimit := durationOr(s.cfg.Limits.ReadTimeout, DefaultReadTimeout)
	writeLimit := s.writeTimeout()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Armed from the start: what net/http writes itself (a 100
		// Continue) waits on the client no longer than the limit either.
		// (net/http lifts the write deadline after each request.)
		if !takesDeadlines(w) {
			h.ServeHTTP(w, r)
			return
		}
		tw := &timedWriter{ResponseWriter: w, rc: *http.NewResponseController(w), d: writeLimit}
		tw.arm()
		// After the handler, net/http flushes what it buffered: bounded
		// by the limit too.
		defer tw.arm()
		if r.Body != nil && r.Body != http.NoBody && takesReadDeadlines(w) && tw.rc.SetReadDeadline(time.Now().Add(readLimit)) == nil {
			// A copy of r: net/http looks at its own request's body after
			// the handler, to close the connection when the body was not
			// read whole.
			// (Made in tw's allocation: r.WithContext(r.Context()) is this
			// copy.)
			tw.req = *r
			r = &tw.req
			tw.body = timedBody{ReadCloser: r.Body, rc: &tw.rc, limit: readLimit}
			r.Body = &tw.body
		}
		h.ServeHTTP(tw, r)
	})
}

// takesDeadlines reports whether w, or a writer it wraps (Unwrap), sets
// its connection's deadlines (what http.ResponseController looks for),
// without the error values a ResponseController makes to say no.
func takesDeadlines(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case interface{ SetWriteDeadline(time.Time) error }:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// takesReadDeadlines reports whether w, or a writer it wraps (Unwrap),
// sets its connection's read deadline, as http.ResponseController's
// SetReadDeadline looks for, without the error it makes (fmt.Errorf: two
// allocations) to say no: the in-process transport's writer takes write
// deadlines only.
func takesReadDeadlines(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// writeTimeout is limits.write_timeout or its default.
func (s *Server) writeTimeout() time.Duration {
	return durationOr(s.cfg.Limits.WriteTimeout, DefaultWriteTimeout)
}

// setWriteTimeout sets the limit of each write of w's answer from now on
// (d <= 0: left as it is), w being the writer timed gave the handler.
func setWriteTimeout(w http.ResponseWriter, d time.Duration) {
	if tw, ok := w.(*timedWriter); ok && d > 0 {
		tw.d = d
	}
}

// httpWriter returns the ResponseWriter of net/http under w, the writer
// timed gave the handler: for http.MaxBytesReader, which tells net/http's
// own writer (only) that the connection is to be closed when its limit
// is passed.
func httpWriter(w http.ResponseWriter) http.ResponseWriter {
	if tw, ok := w.(*timedWriter); ok {
		return tw.ResponseWriter
	}
	return w
}

// writePiece is the most timedWriter writes at once under one deadline:
// a large answer written in one Write (a JSON answer, a cached one) is
// bounded piece by piece, so that a client reading it slowly but
// steadily is not cut.
const writePiece = 16 << 10

// timedWriter is the ResponseWriter of a request served by timed: each
// write and flush has d to complete; the first that fails (the deadline,
// or the client gone) is kept (writeFailure). Unwrap lets
// http.ResponseController reach the writer below; its flush, here, is
// timed too.
type timedWriter struct {
	http.ResponseWriter
	rc     http.ResponseController // of ResponseWriter
	d      time.Duration
	failed error     // the first write or flush that failed
	body   timedBody // the request's body, when it has one (one allocation with the writer)
	// req is the handler's copy of a request with a body (one
	// allocation with the writer too).
	req http.Request
}

// fail records a failed write or flush.
func (w *timedWriter) fail(err error) {
	if w.failed == nil {
		w.failed = err
	}
}

// writeFailure returns the first failed write or flush of w's answer (w
// the writer timed gave the handler), nil if none failed.
func writeFailure(w http.ResponseWriter) error {
	if tw, ok := w.(*timedWriter); ok {
		return tw.failed
	}
	return nil
}

// arm sets the write deadline d from now.
func (w *timedWriter) arm() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *timedWriter) Write(p []byte) (int, error) {
	n := 0
	for {
		piece := p[n:]
		if len(piece) > writePiece {
			piece = piece[:writePiece]
		}
		w.arm()
		m, err := w.ResponseWriter.Write(piece)
		n += m
		if err != nil {
			w.fail(err)
			return n, err
		}
		if n >= len(p) {
			return n, nil
		}
	}
}

// WriteHeader writes an informational answer (1xx) at once: timed too.
func (w *timedWriter) WriteHeader(code int) {
	if code < 200 {
		w.arm()
	}
	w.ResponseWriter.WriteHeader(code)
}

// FlushError flushes under the deadline (what http.ResponseController's
// Flush calls).
func (w *timedWriter) FlushError() error {
	w.arm()
	err := w.rc.Flush()
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		w.fail(err)
	}
	return err
}

// Flush implements http.Flusher.
func (w *timedWriter) Flush() { _ = w.FlushError() }

func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// timedBody is a request's body read under its read deadline, which is
// lifted once the body was read to its end; a read the deadline ended
// fails with a *bodyTimeout (the deadline stays: net/http reads nothing
// more from the connection, which it closes after the answer).
type timedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	limit time.Duration
	done  bool
	// idle: the deadline is armed again at each read, so that it bounds
	// the wait for the next piece instead of the whole body (an upload
	// streamed to the upstream: readIdle); started once a piece came
	// (the first read keeps the deadline of the request's headers).
	idle, started bool
}

// readIdle makes the read deadline of r's body (w the writer timed gave
// the handler) bound the wait between two pieces of it rather than the
// whole body: an upload of hundreds of megabytes that keeps coming is not
// cut at limits.read_timeout, a body that stops coming is.
func readIdle(w http.ResponseWriter) {
	if tw, ok := w.(*timedWriter); ok && tw.body.rc != nil {
		tw.body.idle = true
	}
}

func (b *timedBody) Read(p []byte) (int, error) {
	if b.idle && !b.done && b.started {
		// Armed as the read begins: it bounds the wait for the client,
		// not the time the gateway spent between two reads (writing the
		// last piece to an upstream slow to take it in, which
		// limits.upstream_idle bounds).
		_ = b.rc.SetReadDeadline(time.Now().Add(b.limit))
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.idle && err == nil && !b.done {
		b.started = true
		_ = b.rc.SetReadDeadline(time.Now().Add(b.limit))
	}
	if err != nil && !b.done {
		switch {
		case err == io.EOF:
			// (net/http lifts it too, as it starts watching the
			// connection for the client's hang-up.)
			b.done = true
			_ = b.rc.SetReadDeadline(time.Time{})
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = &bodyTimeout{limit: b.limit}
		}
	}
	return n, err
}

// bodyTimeout is the failure of a request body that did not come whole
// within limits.read_timeout.
type bodyTimeout struct{ limit time.Duration }

func (e *bodyTimeout) Error() string {
	return "tokenwise/gateway: the request body did not arrive within the gateway's limits.read_timeout (" + e.limit.String() + ")"
}

// apiError is the answer to a request whose body timed out: OpenAI's
// 408 (which the official SDKs retry).
func (e *bodyTimeout) apiError() *apiError {
	return &apiError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout", Message: e.Error()}
}

// bodyError is the answer to a request whose body could not be read
// (err): a 408 when it did not come in time, a 413 when it is over
// limits.max_body, else a 400.
func bodyError(err error) *apiError {
	if bt, ok := errors.AsType[*bodyTimeout](err); ok {
		return bt.apiError()
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return errTooLarge
	}
	return errUnreadableBody
}

// isWriteFailure reports whether err, which ended the copy of an answer
// to its client, is the client's: a write that failed (timed out, or the
// connection gone) rather than the answer's read.
func isWriteFailure(err error) bool {
	_, ok := errors.AsType[*writeError](err)
	return ok
}

// writeError is a failed write of an answer to its client.
type writeError struct{ err error }

func (e *writeError) Error() string {
	if errors.Is(e.err, os.ErrDeadlineExceeded) {
		return "tokenwise/gateway: the client did not take the answer in within the write timeout: " + e.err.Error()
	}
	return "tokenwise/gateway: writing the answer to the client: " + e.err.Error()
}

func (e *writeError) Unwrap() error { return e.err }

// clientGone reports whether the client ended its request, whose
// context (as the handler got it, before any timeout of the gateway's)
// is ctx: its connection closed (net/http then cancels the request's
// context) or, in process, its caller's context ended — not the
// gateway's own shutdown, which ends every request's context.
func (s *Server) clientGone(ctx context.Context) bool {
	return ctx.Err() != nil && s.baseCtx.Err() == nil
}
