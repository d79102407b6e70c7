package sse

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Stream writes one SSE response. The stream functions ([Stream.Send],
// [Stream.Chunk], [Stream.Write]) are safe for concurrent use; events are
// written in the order the calls take the stream's lock.
type Stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	// writeTimeout bounds each write (0: none); cancel ends the run's
	// context when a write fails.
	writeTimeout time.Duration
	cancel       context.CancelFunc

	mu      sync.Mutex
	started bool
	closed  bool
	// cr: the last text sent ended with a "\r", whose "\n" may begin
	// the next (a "\r\n" split across chunks is one line break).
	cr  bool
	buf []byte
}

// Send writes text as one event and flushes it. Empty text sends nothing,
// nor does a "\n" that ends a "\r\n" the previous text began (one line
// break, already sent: the text after it is sent without it).
// It returns the write error when the client went away, and an error
// without writing anything once the stream ended (its handler returned,
// however it ended).
func (s *Stream) Send(text string) error {
	if text == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.cr && text[0] == '\n' {
		text = text[1:]
	}
	s.cr = text != "" && text[len(text)-1] == '\r'
	if text == "" {
		return nil
	}
	s.buf = appendEvent(s.buf[:0], "", text)
	return s.writeLocked()
}

var errClosed = errors.New("tokenwise/sse: stream already ended")

// Chunk sends a chunk's content; it is a [middleware.StreamFunc].
func (s *Stream) Chunk(_ context.Context, c middleware.Chunk) error { return s.Send(c.Content) }

// Write sends chunk as text. Its signature is langchaingo's streaming
// function's: pass it to llms.WithStreamingFunc (or an agent's) as is.
func (s *Stream) Write(_ context.Context, chunk []byte) error { return s.Send(string(chunk)) }

// Started reports whether an event was written (the status line is sent).
func (s *Stream) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

func (s *Stream) writeLocked() error {
	if !s.started {
		s.started = true
		h := s.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // keep proxies from buffering
		s.w.WriteHeader(http.StatusOK)
	}
	s.armWrite()
	err := func() error {
		if _, err := s.w.Write(s.buf); err != nil {
			return err
		}
		return s.rc.Flush()
	}()
	if err != nil && s.cancel != nil && !errors.Is(err, http.ErrNotSupported) {
		// The client stopped reading (the write timed out) or went away:
		// the run's context ends, and with it the upstream call.
		s.cancel()
	}
	return err
}

// armWrite sets the connection's write deadline writeTimeout from now
// (a writer without deadlines is written to without).
func (s *Stream) armWrite() {
	if s.writeTimeout > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
}

// finish ends the stream of r when its run returned err: an HTTP error
// status for a failure before the first event; else, unless the client is
// gone, the final event ([DONE], or the error). The stream is closed from
// then on, whichever way it ended: a goroutine the run left behind cannot
// write to the ResponseWriter after the handler returned (net/http reuses
// its buffers), nor between the status and the body of the error.
func (s *Stream) finish(r *http.Request, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if err != nil && !s.started {
		s.armWrite()
		http.Error(s.w, err.Error(), Status(err))
		return
	}
	if r.Context().Err() != nil {
		return // the client is gone
	}
	if err != nil {
		s.buf = appendEvent(s.buf[:0], "error", err.Error())
	} else {
		s.buf = append(s.buf[:0], "data: [DONE]\n\n"...)
	}
	_ = s.writeLocked()
}

// appendEvent renders one event: an optional event name and the text's
// lines as data lines. A line ends where the SSE specification ends one
// (CRLF, LF or a lone CR), so a client joins the lines with an LF where
// the text had any of the three.
func appendEvent(dst []byte, name, text string) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		dst = append(dst, "data: "...)
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			dst = append(dst, text...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, text[:i]...)
		dst = append(dst, '\n')
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
	return append(dst, '\n')
}

// RunFunc produces an answer for r and streams its final text to s, for
// example by passing s.Chunk as a request's Stream or s.Write as
// langchaingo's streaming function. It must stop when ctx ends (the client
// disconnected).
type RunFunc func(ctx context.Context, r *http.Request, s *Stream) error

// DefaultWriteTimeout bounds each write of a stream unless
// [WithWriteTimeout] says otherwise.
const DefaultWriteTimeout = time.Minute

// An Option configures [Handler] and [CallHandler].
type Option func(*options)

type options struct{ writeTimeout time.Duration }

// WithWriteTimeout bounds each write of the stream to its client (d <= 0:
// no bound; default [DefaultWriteTimeout]). The deadline is armed again
// before every event, so a long stream read steadily is never cut; a
// client that stops reading with its connection open fails the write
// within d, which ends the run's context (and the upstream call), as a
// client that disconnects does. It is set with
// http.ResponseController.SetWriteDeadline: a ResponseWriter without
// deadlines is written to without.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.writeTimeout = max(d, 0) } }

// Handler returns an http.Handler that serves run as an SSE stream. It is
// safe for concurrent use if run is. A panic in run is recovered: the
// client gets a 500, or an error event after the first one.
func Handler(run RunFunc, opts ...Option) http.Handler {
	o := options{writeTimeout: DefaultWriteTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		s := &Stream{w: w, rc: http.NewResponseController(w), writeTimeout: o.writeTimeout, cancel: cancel}
		s.finish(r, safeRun(ctx, run, r, s))
	})
}

// safeRun calls run and turns a panic under it into a *middleware.PanicError,
// so that the client gets an error (a 500, or an error event) instead of a
// connection torn down by net/http.
func safeRun(ctx context.Context, run RunFunc, r *http.Request, s *Stream) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = middleware.Recovered(ctx, "sse handler", v)
		}
	}()
	return run(ctx, r, s)
}

// CallHandler returns an http.Handler that serves one LLM call: decode
// turns the HTTP request into a core request, h (a tokenwise chain around a
// provider) answers it, and the answer's text is streamed as it arrives.
func CallHandler(h middleware.Handler, decode func(*http.Request) (*middleware.Request, error), opts ...Option) http.Handler {
	return Handler(func(ctx context.Context, r *http.Request, s *Stream) error {
		req, err := decode(r)
		if err != nil {
			return &badRequest{err}
		}
		req = req.Clone()
		req.Stream = s.Chunk
		_, err = h.Handle(ctx, req)
		return err
	}, opts...)
}

type badRequest struct{ error }

func (e *badRequest) Unwrap() error { return e.error }

// Status is the HTTP status for a failure before the first event.
func Status(err error) int {
	var br *badRequest
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest
	case errors.Is(err, middleware.ErrPanic):
		return http.StatusInternalServerError
	case errors.Is(err, middleware.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, middleware.ErrRateLimited), errors.Is(err, middleware.ErrBudget), errors.Is(err, middleware.ErrQuotaExceeded):
		return http.StatusTooManyRequests
	case errors.Is(err, middleware.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}
