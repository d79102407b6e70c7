package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// syncTransport is the gateway's default transport to its plain-HTTP
// upstreams: HTTP/1.1 keep-alive where the request's goroutine writes the
// request and reads the answer itself. net/http's Transport hands every
// request to two goroutines per connection (a write loop and a read loop)
// and back, three wake-ups a call; under load those hand-offs and their
// connection goroutines cost the gateway about a fifth of its CPU. The
// answer is parsed by net/http itself (ReadResponse), the request written
// by Request.Write, or for the gateway's own requests by writeRequest,
// which sends the same bytes without Request.Write's allocations: only
// the connection handling is this file's.
//
// Connections are pooled per host (most recently used first, at most
// maxIdle idle, closed after idleTimeout idle). At most maxDials dials
// run at once per host: when a stall holds many calls back, the waiting
// ones take the connections the finished ones give back instead of each
// dialing its own (a dial storm, whose new connections the stall then has
// to serve too). A context cancelled or past its deadline closes the
// call's connection, which ends a blocked write or read at once.
//
// Everything it is not built for goes to fallback (net/http's Transport):
// https (TLS, where HTTP/2 is negotiated), a proxy from the environment,
// and protocol upgrades.
type syncTransport struct {
	fallback    http.RoundTripper
	proxy       func(*http.Request) (*url.URL, error)
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxDials    int
	maxIdle     int
	idleTimeout time.Duration
	// checkAfter is how long a connection that cannot be checked for a
	// close by the upstream (a read that does not wait: see alive) may
	// have been idle and still be used again. One that can be is checked
	// at every reuse: an upstream may close a connection right after its
	// answer without saying so (a server shutting down closes its idle
	// keep-alive connections), and a request written on it fails.
	checkAfter time.Duration
	// maxHeader bounds an answer's status line and headers (each 1xx
	// answer's too), as net/http's Transport bounds them
	// (MaxResponseHeaderBytes).
	maxHeader int64
	now       func() time.Time

	mu    sync.Mutex
	hosts map[string]*hostPool
}

// Defaults of the synchronous transport.
const (
	defaultMaxDials    = 16
	defaultIdleTimeout = 90 * time.Second
	defaultCheckAfter  = 250 * time.Millisecond
	upstreamBufSize    = 16 << 10
	// defaultMaxHeader is net/http's Transport's default
	// MaxResponseHeaderBytes.
	defaultMaxHeader = 10 << 20
	// max1xx bounds the informational answers before the answer, as
	// net/http's Transport does.
	max1xx = 5
)

func newSyncTransport(fallback *http.Transport) *syncTransport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t := &syncTransport{
		dial:        d.DialContext,
		maxDials:    defaultMaxDials,
		maxIdle:     maxIdleConnsPerUpstream,
		idleTimeout: defaultIdleTimeout,
		checkAfter:  defaultCheckAfter,
		maxHeader:   defaultMaxHeader,
		now:         time.Now,
		hosts:       map[string]*hostPool{},
	}
	if fallback != nil {
		t.fallback, t.proxy = fallback, fallback.Proxy
		if fallback.MaxResponseHeaderBytes > 0 {
			t.maxHeader = fallback.MaxResponseHeaderBytes
		}
	}
	return t
}

// errUnexpectedUpgrade is a 101 answer to a request that asked for no
// upgrade.
var errUnexpectedUpgrade = errors.New("tokenwise/gateway: the upstream switched protocols unasked")

// errTooMany1xx is an upstream that sent more than max1xx informational
// answers before its answer.
var errTooMany1xx = errors.New("tokenwise/gateway: the upstream sent too many 1xx informational answers")

// RoundTrip implements http.RoundTripper.
func (t *syncTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	hp := t.host(req.URL.Host)
	pc, err := hp.get(ctx, t)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	stop := context.AfterFunc(ctx, pc.closeFn)
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	out := req
	var body *readErrBody
	if req.Body != nil && req.Body != http.NoBody {
		// A failed read of the body is returned as itself (Request.Write
		// wraps it in a type that does not unwrap), as net/http's
		// Transport returns it: e.g. an *http.MaxBytesError. The
		// connection's own wrapper serves: the body is read and closed
		// within the write, and a connection carries one call at a time.
		pc.rb = readErrBody{ReadCloser: req.Body}
		body = &pc.rb
		r := *req
		r.Body = body
		out = &r
	}
	// A body of known length is written with its headers in one write
	// (Request.Write flushes the headers of a body it does not know to be
	// in memory first when given a *bufio.Writer: a second write, and a
	// second wake-up of the upstream, per call). A body of unknown length
	// is sent chunk by chunk as net/http sends it.
	// (writeRequest writes the gateway's own requests without fmt.)
	if out.ContentLength > 0 && len(out.TransferEncoding) == 0 {
		err = writeRequest(&pc.fw, out)
	} else {
		err = out.Write(pc.bw)
	}
	if body != nil {
		if err != nil && body.err != nil {
			err = body.err
		}
		pc.rb = readErrBody{} // keeps nothing of the call
	}
	if err == nil {
		err = pc.bw.Flush()
	}
	reset := false
	if err != nil {
		// An upstream that answers from the headers alone (a 401 for a
		// wrong key, a 413 for a body over its limit) and closes without
		// reading the body resets the connection under the write: its
		// answer, sent before the reset, is the call's answer, as
		// net/http's Transport, which reads while it writes, passes it.
		// A reset connection has nothing more to send, so the read ends
		// at once.
		if body != nil && body.err != nil || !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) || ctx.Err() != nil {
			return fail(err)
		}
		reset = true
	}
	resp, rerr := t.readAnswer(pc, req)
	if rerr != nil {
		if reset {
			return fail(err) // no answer before the reset: the write's error says why
		}
		return fail(rerr)
	}
	reuse := !reset && !resp.Close && !req.Close
	b := &syncBody{t: t, hp: hp, pc: pc, ctx: ctx, stop: stop, src: resp.Body, reuse: reuse}
	resp.Body = b
	if resp.ContentLength == 0 || req.Method == http.MethodHead {
		// Nothing to read: the connection is free now.
		b.release(true, io.EOF)
	}
	return resp, nil
}

// readAnswer reads the answer to req on pc, after the 1xx informational
// answers (at most max1xx of them).
func (t *syncTransport) readAnswer(pc *syncConn, req *http.Request) (*http.Response, error) {
	for n1xx := 0; ; n1xx++ {
		// The status line and the headers are read within maxHeader
		// bytes: an upstream whose headers do not end (or that sends
		// garbage without a line break) fails the call, never grows the
		// gateway's memory for as long as it sends.
		pc.lr.left = t.maxHeader
		resp, err := http.ReadResponse(pc.br, req)
		if pc.lr.left <= 0 {
			err = fmt.Errorf("tokenwise/gateway: the upstream's answer headers exceed %d bytes", t.maxHeader)
		}
		pc.lr.left = math.MaxInt64
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			return resp, nil
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errUnexpectedUpgrade
		}
		// 1xx: informational, the answer follows (within max1xx of them).
		if n1xx >= max1xx {
			return nil, errTooMany1xx
		}
	}
}

// readErrBody records the error of a failed read of a request's body.
type readErrBody struct {
	io.ReadCloser
	err error
}

func (b *readErrBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// handles reports whether req is for the synchronous path.
func (t *syncTransport) handles(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		return false
	}
	if req.Header.Get("Upgrade") != "" || strings.Contains(strings.ToLower(req.Header.Get("Connection")), "upgrade") {
		return false
	}
	if t.proxy != nil {
		if p, err := t.proxy(req); p != nil || err != nil {
			return false
		}
	}
	return true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

func (t *syncTransport) host(addr string) *hostPool {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr += ":80"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	hp := t.hosts[addr]
	if hp == nil {
		hp = &hostPool{addr: addr, dials: make(chan struct{}, max(1, t.maxDials)), handoff: make(chan *syncConn)}
		t.hosts[addr] = hp
	}
	return hp
}

// CloseIdleConnections closes the idle connections of both paths.
func (t *syncTransport) CloseIdleConnections() {
	t.mu.Lock()
	pools := make([]*hostPool, 0, len(t.hosts))
	for _, hp := range t.hosts {
		pools = append(pools, hp)
	}
	t.mu.Unlock()
	for _, hp := range pools {
		hp.mu.Lock()
		idle := hp.idle
		hp.idle = nil
		hp.mu.Unlock()
		for _, pc := range idle {
			pc.close()
		}
	}
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// hostPool is the connections to one host.
type hostPool struct {
	addr string
	// dials holds a token for each dial running.
	dials chan struct{}
	// handoff passes a connection given back straight to a call waiting
	// for one.
	handoff chan *syncConn

	mu   sync.Mutex
	idle []*syncConn // the most recently used last
}

// syncConn is one upstream connection.
type syncConn struct {
	nc        net.Conn
	lr        limitedConn // nc, read through br
	br        *bufio.Reader
	bw        *bufio.Writer
	fw        oneWrite // bw, for a request written in one write
	idleSince time.Time
	closeOnce sync.Once
	closeFn   func() // close, made once: each call's context.AfterFunc takes it
	rb        readErrBody

	// raw and peekFn check the connection for a close (alive; nil when it
	// cannot be checked); peekBuf and peekOpen are the check's.
	raw      syscall.RawConn
	peekFn   func(fd uintptr) bool
	peekBuf  [1]byte
	peekOpen bool
}

func (pc *syncConn) close() { pc.closeOnce.Do(func() { _ = pc.nc.Close() }) }

// limitedConn reads a connection at most left bytes more (an answer's
// headers are read within a bound; its body is not).
type limitedConn struct {
	nc   net.Conn
	left int64
}

// errReadLimit is a read of a connection past its limit.
var errReadLimit = errors.New("tokenwise/gateway: read limit exhausted")

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errReadLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.nc.Read(p)
	l.left -= int64(n)
	return n, err
}

// get returns an idle connection, else a new one, else (when maxDials
// dials are running) the first connection given back or dialed.
func (hp *hostPool) get(ctx context.Context, t *syncTransport) (*syncConn, error) {
	for {
		if pc := hp.popIdle(t); pc != nil {
			return pc, nil
		}
		select {
		case hp.dials <- struct{}{}:
			pc, err := t.dialConn(ctx, hp.addr)
			<-hp.dials
			return pc, err
		case pc := <-hp.handoff:
			return pc, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// popIdle returns the most recently used idle connection that is still
// open, closing those found closed or idle too long.
func (hp *hostPool) popIdle(t *syncTransport) *syncConn {
	for {
		hp.mu.Lock()
		n := len(hp.idle)
		if n == 0 {
			hp.mu.Unlock()
			return nil
		}
		pc := hp.idle[n-1]
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		hp.mu.Unlock()
		idle := t.now().Sub(pc.idleSince)
		if idle >= t.idleTimeout {
			pc.close()
			continue
		}
		if open, checked := pc.alive(); checked && !open || !checked && idle >= t.checkAfter {
			pc.close()
			continue
		}
		return pc
	}
}

// put gives a connection back: to a call waiting for one, else to the
// idle pool (closing it when the pool is full, and the oldest idle one
// when it has been idle too long).
func (hp *hostPool) put(t *syncTransport, pc *syncConn) {
	select {
	case hp.handoff <- pc:
		return
	default:
	}
	now := t.now()
	pc.idleSince = now
	var stale *syncConn
	hp.mu.Lock()
	if len(hp.idle) > 0 && now.Sub(hp.idle[0].idleSince) >= t.idleTimeout {
		stale = hp.idle[0]
		hp.idle = append(hp.idle[:0], hp.idle[1:]...)
	}
	full := len(hp.idle) >= t.maxIdle
	if !full {
		hp.idle = append(hp.idle, pc)
	}
	hp.mu.Unlock()
	if stale != nil {
		stale.close()
	}
	if full {
		pc.close()
	}
}

func (t *syncTransport) dialConn(ctx context.Context, addr string) (*syncConn, error) {
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("tokenwise/gateway: dial upstream: %w", err)
	}
	pc := &syncConn{nc: nc, lr: limitedConn{nc: nc, left: math.MaxInt64}, bw: bufio.NewWriterSize(nc, upstreamBufSize)}
	pc.br = bufio.NewReaderSize(&pc.lr, upstreamBufSize)
	pc.fw.bw = pc.bw
	pc.closeFn = pc.close
	pc.initPeek()
	return pc, nil
}

// oneWrite buffers a request in its bufio.Writer without ever flushing
// before the buffer is full: it is not a *bufio.Writer, so Request.Write
// does not flush the headers before the body, and its ReadFrom copies the
// body into the buffer (a *net.TCPConn's ReadFrom would write it apart).
type oneWrite struct{ bw *bufio.Writer }

func (w *oneWrite) Write(p []byte) (int, error)       { return w.bw.Write(p) }
func (w *oneWrite) WriteString(s string) (int, error) { return w.bw.WriteString(s) }
func (w *oneWrite) WriteByte(c byte) error            { return w.bw.WriteByte(c) }

// ReadFrom reads r into the buffer, flushing it when full, until r ends.
func (w *oneWrite) ReadFrom(r io.Reader) (int64, error) { return w.readN(r, math.MaxInt64) }

// syncBody is an answer's body: its connection goes back to the pool once
// the body is read to its end, and is closed when the body is closed
// before (or its context ends). Close may come from another goroutine
// while a Read waits for the upstream: it closes the connection, which
// ends that Read.
type syncBody struct {
	t     *syncTransport
	hp    *hostPool
	pc    *syncConn
	ctx   context.Context
	stop  func() bool
	src   io.ReadCloser
	reuse bool

	// released is set once the connection is given back or closed.
	released atomic.Bool
	mu       sync.Mutex
	// after is what a Read returns once released: io.EOF after the
	// whole answer, errBodyClosed after Close, the error that ended the
	// answer otherwise.
	after error
}

// errBodyClosed is a Read after (or during) Close.
var errBodyClosed = errors.New("tokenwise/gateway: read on a closed response body")

func (b *syncBody) Read(p []byte) (int, error) {
	if b.released.Load() {
		return 0, b.afterErr()
	}
	n, err := b.src.Read(p)
	switch {
	case err == io.EOF:
		b.release(true, io.EOF)
	case err != nil:
		if b.ctx.Err() != nil {
			err = b.ctx.Err()
		}
		if !b.release(false, err) {
			err = b.afterErr() // closed meanwhile: the error is the close's
		}
	}
	return n, err
}

// Close closes the body; its connection is closed unless the body was
// read to its end.
func (b *syncBody) Close() error {
	b.release(false, errBodyClosed)
	return nil
}

func (b *syncBody) afterErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.after
}

// release gives the connection back once (to the pool after a whole
// answer on a connection both sides keep open with nothing else
// buffered, else closed) and reports whether this call did.
func (b *syncBody) release(eof bool, after error) bool {
	b.mu.Lock()
	if b.released.Load() {
		b.mu.Unlock()
		return false
	}
	b.after = after
	b.released.Store(true)
	b.mu.Unlock()
	stopped := b.stop()
	if eof && stopped && b.reuse && b.pc.br.Buffered() == 0 {
		b.hp.put(b.t, b.pc)
		return true
	}
	b.pc.close()
	return true
}
