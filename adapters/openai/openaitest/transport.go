package openaitest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// errBodyClosed is the cause of a handler's context cancellation when the
// client closes the response body.
var errBodyClosed = errors.New("tokenwise/openaitest: response body closed by the client")

// NewTransport returns an [http.RoundTripper] that serves every request by
// calling h in-process, whatever the request's URL: no socket is opened, so
// it works inside a [testing/synctest] bubble, where loopback I/O would
// block fake time. RoundTrip creates the goroutine, pipe and channels of each
// request, so a request made inside a bubble is served inside it, whichever
// goroutine created h or the transport.
//
// It behaves like a connection to a real server:
//   - the handler runs in its own goroutine with a copy of the request whose
//     context is cancelled when the client's context is, when the client
//     closes the response body, or when the handler returns;
//   - RoundTrip returns once the handler writes, flushes or returns; it
//     returns the context's cause if the context ends first;
//   - the response body streams through an [io.Pipe]: handler output is
//     buffered until the handler flushes ([http.Flusher], or
//     [http.ResponseController]) or returns;
//   - a body read returns the context's cause once the client's context is
//     done, and io.ErrUnexpectedEOF (never a clean io.EOF) when the handler
//     aborts with panic(http.ErrAbortHandler); any other panic becomes a
//     read error too.
//
// The returned RoundTripper is safe for concurrent use. Each handler
// goroutine ends when the handler returns; a handler blocked on its request
// context ends when the client cancels or closes the body.
func NewTransport(h http.Handler) http.RoundTripper {
	return transport{h: h}
}

type transport struct{ h http.Handler }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	ctx := req.Context()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}

	hctx, cancel := context.WithCancelCause(ctx)
	sreq := req.Clone(hctx)
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.GetBody = nil
	sreq.Host = cmp.Or(req.Host, req.URL.Host)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:0"
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1

	pr, pw := io.Pipe()
	// The client's context ending breaks the pipe both ways: body reads
	// return the cause, handler writes fail.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	rw := &pipeWriter{
		ctx:    ctx,
		req:    req,
		header: make(http.Header),
		pw:     pw,
		bw:     bufio.NewWriterSize(pw, 4096),
		body:   &pipeBody{pr: pr, cancel: cancel},
		ready:  make(chan roundTripResult, 1),
	}

	go func() {
		defer stop()
		defer cancel(context.Canceled)
		defer func() {
			switch v := recover(); v {
			case nil:
				rw.finish()
			case http.ErrAbortHandler:
				rw.abort(io.ErrUnexpectedEOF)
			default:
				rw.abort(fmt.Errorf("tokenwise/openaitest: handler panic: %v", v))
			}
		}()
		t.h.ServeHTTP(rw, sreq)
	}()

	select {
	case res := <-rw.ready:
		return res.resp, res.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

type roundTripResult struct {
	resp *http.Response
	err  error
}

// pipeWriter is the handler's http.ResponseWriter. It is used by the
// handler goroutine only, as http.ResponseWriter requires.
type pipeWriter struct {
	ctx       context.Context // the client's
	req       *http.Request
	header    http.Header
	status    int
	committed bool
	pw        *io.PipeWriter
	bw        *bufio.Writer
	body      *pipeBody
	ready     chan roundTripResult // receives exactly one result
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("tokenwise/openaitest: invalid WriteHeader code %d", code))
	}
	if w.committed || w.status != 0 || code < 200 {
		return // superfluous, or informational (not forwarded)
	}
	w.status = code
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.commit()
	return w.bw.Write(p)
}

// FlushError sends the headers and the buffered body to the client; see
// http.ResponseController.
func (w *pipeWriter) FlushError() error {
	w.commit()
	return w.bw.Flush()
}

// Flush implements http.Flusher.
func (w *pipeWriter) Flush() { _ = w.FlushError() }

// commit hands the response (status and a snapshot of the headers) to
// RoundTrip, once.
func (w *pipeWriter) commit() {
	if w.committed {
		return
	}
	w.committed = true
	status := cmp.Or(w.status, http.StatusOK)
	h := w.header.Clone()
	length := int64(-1)
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
		length = n
	}
	w.ready <- roundTripResult{resp: &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          w.body,
		ContentLength: length,
		Request:       w.req,
	}}
}

// finish ends a handler that returned: the rest of the body, then EOF. A
// handler that returned because the client's context ended does not get to
// end the body cleanly: the body fails with the context's cause.
func (w *pipeWriter) finish() {
	w.commit()
	if w.ctx.Err() != nil {
		w.pw.CloseWithError(context.Cause(w.ctx))
		return
	}
	if err := w.bw.Flush(); err != nil {
		return // the pipe is already closed with its error
	}
	_ = w.pw.Close()
}

// abort ends a handler that panicked: the body (or RoundTrip, before the
// headers were sent) fails with err; unflushed output is dropped.
func (w *pipeWriter) abort(err error) {
	if !w.committed {
		w.committed = true
		w.ready <- roundTripResult{err: err}
	}
	w.pw.CloseWithError(err)
}

// pipeBody is the client's response body.
type pipeBody struct {
	pr     *io.PipeReader
	cancel context.CancelCauseFunc
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

// Close tells the handler the client went away. The pipe is closed
// first: a handler woken by the cancellation that returns (and flushes
// what it buffered) at once must not get its output to a read still
// pending on the body.
func (b *pipeBody) Close() error {
	b.pr.CloseWithError(errBodyClosed)
	b.cancel(errBodyClosed)
	return nil
}
