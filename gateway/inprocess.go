package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Transport returns an [http.RoundTripper] that serves each request in
// this process, through the gateway's handler, without a socket: the
// gateway as a library. A Go client of the OpenAI wire format — openai-go
// (whose Responses API the go-openai transport of adapters/openai does not
// police), go-openai, langchaingo — given it as its HTTP client's
// transport, with a virtual key of the gateway file as its API key and
// any base URL whose path is /v1, gets everything a client of `tokenwise
// serve` gets: chat completions, the Responses API and embeddings run
// through its team's policy (budgets, cache, routing, cascades, fallback,
// rate limits, timeouts), the run of its X-Run-Id, the same OpenAI-shaped
// errors, the same metrics.
//
//	gw, err := gateway.New(cfg) // cfg from gateway.LoadConfig("gateway.yaml")
//	client := openai.NewClient(option.WithHTTPClient(&http.Client{Transport: gw.Transport()}),
//		option.WithBaseURL("http://tokenwise/v1"), option.WithAPIKey(virtualKey))
//
// The response's headers are returned once the handler writes them; its
// body is what the handler writes, as it writes it (a stream arrives
// event by event). The request's context bounds the call, and so does
// the Server: Close cuts the calls in flight. Close the response body,
// as with any transport: a body that is never read or closed holds its
// call until the gateway's write timeout (limits.write_timeout, a
// stream's idle limit) passes on a write the caller does not read, as
// over a socket, which cuts it (the caller's next read fails); a done
// request context, or Close, cuts it at once. The transport is safe for
// concurrent use.
func (s *Server) Transport() http.RoundTripper { return inProcess{s: s} }

// TransportFor is Transport for a caller that is team: its requests need
// no virtual key (any Authorization header is ignored) and run under
// team's policy — for a Go service that is one team, with no key to keep.
// Only the process holds such a transport: a request over HTTP cannot
// claim a team.
func (s *Server) TransportFor(team string) http.RoundTripper {
	return inProcess{s: s, team: &keyEntry{name: "in-process", team: team}}
}

type inProcess struct {
	s    *Server
	team *keyEntry // TransportFor's caller; nil: the request's virtual key
}

// inProcessTeam is the context key of the team a TransportFor request is
// made as (a *keyEntry).
type inProcessTeam struct{}

// errInProcessClosed is what a call made after the gateway closed gets.
var errInProcessClosed = errors.New("tokenwise/gateway: the gateway is closed")

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("tokenwise/gateway: a request without a URL")
	}
	if t.s.baseCtx.Err() != nil {
		closeBody(req)
		return nil, errInProcessClosed
	}
	// The call ends with the caller's context or the gateway's (unhookClose).
	ctx, cancel := context.WithCancel(req.Context())
	if t.team != nil {
		ctx = context.WithValue(ctx, inProcessTeam{}, t.team)
	}
	// A shallow copy: the handler reads the caller's header map, which
	// neither changes while the call runs (a caller does not change a
	// request it sent; the gateway's handlers change no request's
	// header, and copy it first to send it on). req.Clone copied the
	// map and the URL, replaced below: four allocations a call.
	sreq := req.WithContext(ctx)
	// As a server reads it: the path and query as sent, the body the
	// handler reads (never nil), a remote address for its logs.
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "in-process"
	if sreq.Host == "" {
		sreq.Host = req.URL.Host
	}
	u := *req.URL
	u.Scheme, u.Host, u.User = "", "", nil // (a server's request URL is its path and query)
	sreq.URL = &u
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	// The caller's context ending cuts the body, as net/http's transport
	// cuts its connection: a handler blocked writing to a caller that no
	// longer reads ends (the chain's context, cancelled with it, does not
	// unblock a pipe's write), and the caller's next read fails with the
	// context's error.
	unhookPipe := context.AfterFunc(req.Context(), func() { _ = pw.CloseWithError(context.Cause(req.Context())) })
	// Close cuts the body likewise, as it cuts a connection: a handler
	// blocked writing to a caller that neither reads nor closes ends at
	// once, not at the write timeout. (A body the handler has finished is
	// closed already: its caller reads it whole.)
	// (One AfterFunc does both, the call's end and the body's cut: each is
	// three allocations. The body is cut first: a handler that returns as
	// its context ends would otherwise end the body cleanly before the
	// cut, and its caller would read a cut answer as whole.)
	unhookClose := context.AfterFunc(t.s.baseCtx, func() {
		_ = pw.CloseWithError(errInProcessClosed)
		cancel()
	})
	go func() {
		defer func() {
			unhookPipe()
			unhookClose()
			cancel()
			closeBody(req)
		}()
		defer func() {
			// A panic of the handler (net/http's server would log it and
			// cut the connection) cuts the body, or fails the call.
			if v := recover(); v != nil {
				w.fail(fmt.Errorf("tokenwise/gateway: the handler panicked: %v", v))
				return
			}
			w.finish()
		}()
		t.s.handler.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		select {
		case <-w.ready:
			// The handler answered and returned (which cancels ctx, after
			// its answer began): that is the answer.
		default:
			// The call ended before its answer began: the handler's
			// writes, if any come, fail; it ends in its own time.
			_ = pr.CloseWithError(ctx.Err())
			if err := req.Context().Err(); err != nil {
				return nil, err
			}
			return nil, errInProcessClosed
		}
	}
	if w.err != nil && !w.wrote {
		return nil, w.err
	}
	resp := &http.Response{
		Status:     statusLine(w.code),
		StatusCode: w.code,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        w.sent,
		Body:          &inProcessBody{pr: pr, cancel: cancel, left: -1},
		ContentLength: -1,
		Request:       req,
	}
	if w.length >= 0 {
		resp.ContentLength = w.length
		resp.Body.(*inProcessBody).left = w.length
	}
	if req.Method == http.MethodHead {
		_ = pr.Close()
		resp.Body = http.NoBody
	}
	return resp, nil
}

// statusLine is an in-process response's Status for code, as net/http's
// client writes it (strconv.Itoa(code) + " " + http.StatusText(code)):
// made once for 200, the status of nearly every call.
func statusLine(code int) string {
	if code == http.StatusOK {
		return "200 OK"
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// inProcessBody is the body of an in-process response. Closing it before
// its end is the caller leaving: the call's context is cancelled, as a
// server's is when its client hangs up. (Read to its end, the handler has
// returned.) A body that ends short of its Content-Length is cut, as a
// client reads it over HTTP: its last read is io.ErrUnexpectedEOF.
type inProcessBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	left   int64 // what Content-Length says is still to come (-1: no length)
}

func (b *inProcessBody) Read(p []byte) (int, error) {
	n, err := b.pr.Read(p)
	if b.left >= 0 {
		b.left -= int64(n)
		if err == io.EOF && b.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

func (b *inProcessBody) Close() error {
	err := b.pr.Close()
	b.cancel()
	return err
}

// pipeWriter is the handler's http.ResponseWriter: the status and the
// headers are handed to RoundTrip when first written (ready), the body
// through a pipe the caller reads, unbuffered: each Write waits for the
// caller to read it, so a Flush has nothing left to do.
type pipeWriter struct {
	header http.Header
	pw     *io.PipeWriter

	once  sync.Once
	ready chan struct{} // closed once code and sent are set, or err
	code  int
	sent  http.Header // the headers as written
	wrote bool        // WriteHeader ran (code and sent set)
	err   error       // the call failed before its headers (with !wrote)
	// length is the body's Content-Length as the headers were written
	// (-1: none), and written what the handler wrote of it.
	length, written int64

	// The write deadline (SetWriteDeadline): a write still waiting for
	// the caller to read when it passes cuts the body, as a socket's
	// write deadline fails the write and net/http closes the connection.
	dmu      sync.Mutex
	deadline time.Time   // zero: none
	timer    *time.Timer // fires at deadline
	writing  bool        // a Write is waiting on the pipe
	expired  bool        // deadline passed with no Write waiting: the next one fails
	cut      bool        // the body was cut at a deadline
}

// errPipeWriteTimeout is a write to an in-process caller that did not
// read it within the gateway's write timeout (limits.write_timeout, or the
// stream's idle limit): it matches os.ErrDeadlineExceeded, as a socket's
// write that timed out does.
var errPipeWriteTimeout = fmt.Errorf("tokenwise/gateway: the in-process caller did not read the answer within the write timeout: %w", os.ErrDeadlineExceeded)

// SetWriteDeadline sets the deadline of the writes from now on (the
// zero time: none), as http.ResponseController sets a connection's: the
// gateway's write timeout holds in the process as over a socket, so that
// a caller that stops reading without closing the body does not hold its
// call for good.
func (w *pipeWriter) SetWriteDeadline(t time.Time) error {
	w.dmu.Lock()
	defer w.dmu.Unlock()
	w.deadline, w.expired = t, false
	if t.IsZero() {
		if w.timer != nil {
			w.timer.Stop()
		}
		return nil
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(time.Until(t), w.expire)
	} else {
		w.timer.Reset(time.Until(t))
	}
	return nil
}

// expire runs when the deadline passes: a write waiting on the caller is
// cut, else the next write fails. (A timer of a deadline since moved
// changes nothing.)
func (w *pipeWriter) expire() {
	w.dmu.Lock()
	if w.deadline.IsZero() || time.Now().Before(w.deadline) {
		w.dmu.Unlock()
		return
	}
	if !w.writing {
		w.expired = true
		w.dmu.Unlock()
		return
	}
	w.cut = true
	w.dmu.Unlock()
	_ = w.pw.CloseWithError(errPipeWriteTimeout)
}

// stopDeadline stops the deadline's timer: the handler returned.
func (w *pipeWriter) stopDeadline() {
	w.dmu.Lock()
	defer w.dmu.Unlock()
	w.deadline = time.Time{}
	if w.timer != nil {
		w.timer.Stop()
	}
}

// Header is the handler's header map. Until the headers are written it
// is the one the caller's response gets (handed over, not copied); from
// then on it is a map of its own, which nobody sends, as net/http's server
// ignores changes made after WriteHeader. (The gateway's handlers never
// change a map they got before WriteHeader after it: each change goes
// through a call of Header.)
func (w *pipeWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *pipeWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return // an informational answer (103 Early Hints): not the response
	}
	w.once.Do(func() {
		// The map is handed over: a copy cost three allocations a call.
		w.code, w.sent, w.wrote = code, w.header, true
		w.header = nil
		w.length = -1
		if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
			w.length = n
		}
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if len(p) == 0 {
		return 0, nil // (a pipe would wait for a read of nothing)
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		// More than the Content-Length the handler set: refused, as
		// net/http's server refuses it.
		return 0, http.ErrContentLength
	}
	w.dmu.Lock()
	if w.cut || w.expired {
		w.cut = true
		w.dmu.Unlock()
		_ = w.pw.CloseWithError(errPipeWriteTimeout)
		return 0, errPipeWriteTimeout
	}
	w.writing = true
	w.dmu.Unlock()
	n, err := w.pw.Write(p)
	w.dmu.Lock()
	w.writing = false
	if err != nil && w.cut {
		err = errPipeWriteTimeout
	}
	w.dmu.Unlock()
	w.written += int64(n)
	return n, err
}

// Flush implements http.Flusher: writes reach the caller as they are made.
func (w *pipeWriter) Flush() { w.WriteHeader(http.StatusOK) }

// finish ends the body when the handler returns (a handler that wrote
// nothing answered 200 with no body, as net/http's server sends).
func (w *pipeWriter) finish() {
	w.stopDeadline()
	w.WriteHeader(http.StatusOK)
	_ = w.pw.Close()
}

// fail ends the call with err: before its headers, RoundTrip returns err;
// after them, the caller's read of the body does.
func (w *pipeWriter) fail(err error) {
	w.stopDeadline()
	w.once.Do(func() {
		w.err = err
		close(w.ready)
	})
	_ = w.pw.CloseWithError(err)
}
