package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// tcpUpstream serves h on loopback and counts the connections it accepted.
func tcpUpstream(t *testing.T, h http.HandlerFunc) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), &conns
}

func testSyncTransport(t *testing.T) *syncTransport {
	t.Helper()
	std := http.DefaultTransport.(*http.Transport).Clone()
	tr := newSyncTransport(std)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func post(t *testing.T, rt http.RoundTripper, ctx context.Context, u, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// The synchronous transport answers every response shape (length known,
// chunked, delimited by the close; empty to 200 KB; any status; HEAD) as
// net/http's Transport does, byte for byte, and keeps the connection of
// every answer that allows it.
func TestSyncTransportMatchesNetHTTP(t *testing.T) {
	type shape struct {
		status int
		size   int
		mode   int // 0: Content-Length, 1: chunked, 2: until close
	}
	rnd := rand.New(rand.NewPCG(19, 2026))
	var shapes []shape
	for range 60 {
		shapes = append(shapes, shape{
			status: []int{200, 201, 204, 400, 429, 500, 503}[rnd.IntN(7)],
			size:   []int{0, 1, 17, 4095, 4096, 16 << 10, 200 << 10}[rnd.IntN(7)],
			mode:   rnd.IntN(3),
		})
	}
	u, _ := tcpUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		s := shapes[i]
		if s.status == http.StatusNoContent {
			s.size = 0
		}
		unit := fmt.Appendf(nil, "%d:%s|", i, in)
		body := bytes.Repeat(unit, s.size/len(unit)+1)[:s.size]
		w.Header().Set("X-Shape", strconv.Itoa(i))
		switch s.mode {
		case 0:
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		case 2:
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(s.status)
		if r.Method == http.MethodHead {
			return
		}
		if s.mode == 1 && len(body) > 1 {
			_, _ = w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			body = body[len(body)/2:]
		}
		_, _ = w.Write(body)
	})
	sync := testSyncTransport(t)
	std := http.DefaultTransport.(*http.Transport).Clone()
	defer std.CloseIdleConnections()
	for i, s := range shapes {
		for _, method := range []string{http.MethodPost, http.MethodHead} {
			var got [2]*http.Response
			var bodies [2][]byte
			for j, rt := range []http.RoundTripper{std, sync} {
				req, _ := http.NewRequest(method, u+"/chat/completions?i="+strconv.Itoa(i), strings.NewReader("prompt-"+strconv.Itoa(i)))
				req.Header.Set("Accept-Encoding", "identity") // net/http would ask for gzip otherwise
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("%d %+v %s, transport %d: %v", i, s, method, j, err)
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					t.Fatalf("%d %+v %s: %v", i, s, method, err)
				}
				got[j], bodies[j] = resp, b
			}
			if got[0].StatusCode != got[1].StatusCode || got[0].ContentLength != got[1].ContentLength ||
				got[0].Header.Get("X-Shape") != got[1].Header.Get("X-Shape") || !bytes.Equal(bodies[0], bodies[1]) ||
				fmt.Sprint(got[0].TransferEncoding) != fmt.Sprint(got[1].TransferEncoding) || got[0].Close != got[1].Close {
				t.Fatalf("%d %+v %s: net/http %d %d %v %q, sync %d %d %v %q", i, s, method,
					got[0].StatusCode, got[0].ContentLength, got[0].TransferEncoding, bodies[0],
					got[1].StatusCode, got[1].ContentLength, got[1].TransferEncoding, bodies[1])
			}
		}
	}
}

// Sequential calls share one connection; a call whose body is closed
// unread, or whose answer says Connection: close, does not give its
// connection back, and the next call dials a new one and succeeds.
func TestSyncTransportReusesConnections(t *testing.T) {
	u, conns := tcpUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		if r.URL.Query().Has("close") {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write(bytes.Repeat(in, 1000))
	})
	tr := testSyncTransport(t)
	for i := range 20 {
		_, b := post(t, tr, context.Background(), u+"/x", strconv.Itoa(i))
		if want := strings.Repeat(strconv.Itoa(i), 1000); string(b) != want {
			t.Fatalf("call %d: got %d bytes, want %d", i, len(b), len(want))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential calls opened %d connections, want 1", n)
	}
	// Closed before its end: the connection cannot carry another call.
	req, _ := http.NewRequest(http.MethodPost, u+"/x", strings.NewReader("abc"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var two [2]byte
	if _, err := io.ReadFull(resp.Body, two[:]); err != nil || string(two[:]) != "ab" {
		t.Fatalf("read %q, %v", two, err)
	}
	_ = resp.Body.Close()
	if _, err := resp.Body.Read(two[:]); !errors.Is(err, errBodyClosed) {
		t.Fatalf("a read after Close: %v, want errBodyClosed", err)
	}
	if _, b := post(t, tr, context.Background(), u+"/x", "z"); string(b) != strings.Repeat("z", 1000) {
		t.Fatalf("after an early close: %q", b)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("after an early close: %d connections, want 2", n)
	}
	if resp, _ := post(t, tr, context.Background(), u+"/x?close", "c"); !resp.Close {
		t.Fatal("Connection: close not seen")
	}
	post(t, tr, context.Background(), u+"/x", "d")
	if n := conns.Load(); n != 3 {
		t.Fatalf("after Connection: close: %d connections, want 3", n)
	}
}

// A streamed answer reaches the caller event by event (the upstream
// writes the next one only once the caller has read the previous), and
// its connection is reused after the stream ends.
func TestSyncTransportStreams(t *testing.T) {
	read := make(chan struct{})
	u, conns := tcpUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-read
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	tr := testSyncTransport(t)
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, u+"/s", strings.NewReader("{}"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 3 {
			line, err := br.ReadString('\n')
			if err != nil || line != fmt.Sprintf("data: %d\n", i) {
				t.Fatalf("event %d: %q, %v", i, line, err)
			}
			_, _ = br.ReadString('\n')
			read <- struct{}{}
		}
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "data: [DONE]\n\n" {
			t.Fatalf("the end: %q, %v", rest, err)
		}
		_ = resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("two streams opened %d connections, want 1", n)
	}
}

// A context cancelled while the upstream has not answered, or in the
// middle of a stream, ends the call at once with the context's error,
// and its connection is not reused.
func TestSyncTransportCancels(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	arrived := make(chan struct{}, 1)
	u, conns := tcpUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		if r.URL.Query().Has("stream") {
			fmt.Fprint(w, "data: 0\n\n")
			w.(http.Flusher).Flush()
		}
		if !r.URL.Query().Has("fast") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, "data: 1\n\n")
	})
	tr := testSyncTransport(t)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/wait", strings.NewReader("{}"))
		_, err := tr.RoundTrip(req)
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before the answer: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/wait?stream", strings.NewReader("{}"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 0\n" {
		t.Fatalf("%q, %v", line, err)
	}
	_, _ = br.ReadString('\n')
	<-arrived
	cancel()
	if _, err := io.ReadAll(br); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in the stream: %v, want context.Canceled", err)
	}
	_ = resp.Body.Close()

	if _, b := post(t, tr, context.Background(), u+"/x?fast", "{}"); string(b) != "data: 1\n\n" {
		t.Fatalf("after the cancellations: %q", b)
	}
	<-arrived
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (one per cancelled call, one new): a cancelled call's connection was reused", n)
	}
}

// A call past its context's deadline ends with DeadlineExceeded, while
// the upstream has not answered or in the middle of its answer.
func TestSyncTransportDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := make(chan struct{})
		var wg sync.WaitGroup
		tr := newSyncTransport(nil)
		tr.dial = func(context.Context, string, string) (net.Conn, error) {
			c, s := net.Pipe()
			wg.Go(func() {
				defer s.Close()
				req, err := http.ReadRequest(bufio.NewReader(s))
				if err != nil {
					return
				}
				if req.URL.Path == "/half" {
					_, _ = io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!")
				}
				<-hang
			})
			return c, nil
		}
		for _, path := range []string{"/none", "/half"} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.test"+path, strings.NewReader("{}"))
			resp, err := tr.RoundTrip(req)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				if string(b) != "half!" {
					t.Errorf("%s: read %q before the deadline", path, b)
				}
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: %v, want context.DeadlineExceeded", path, err)
			}
			cancel()
		}
		close(hang)
		wg.Wait()
	})
}

// A connection the upstream closed while it was idle is found closed
// before it is used, and the call goes over a new one instead of failing.
func TestSyncTransportDropsConnectionsClosedByTheUpstream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	var accepted atomic.Int64
	var wg sync.WaitGroup
	defer func() { _ = l.Close(); wg.Wait() }()
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			// One answer per connection, which is then closed by the
			// upstream (as an idle timeout would).
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			_ = c.Close()
			closed <- struct{}{}
		}
	})
	tr := testSyncTransport(t)
	tr.checkAfter = 0 // check at every reuse
	u := "http://" + l.Addr().String()
	for i := range 3 {
		if _, b := post(t, tr, context.Background(), u+"/x", "{}"); string(b) != "ok" {
			t.Fatalf("call %d: %q", i, b)
		}
		<-closed
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

// pipeUpstream is an upstream reached over net.Pipe (for synctest): each
// dial waits for a token on gate, then serves HTTP/1.1 keep-alive with
// answer.
type pipeUpstream struct {
	gate            chan struct{}
	dialing, dialed atomic.Int64
	maxDialing      atomic.Int64
	wg              sync.WaitGroup
}

func (p *pipeUpstream) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	n := p.dialing.Add(1)
	defer p.dialing.Add(-1)
	for {
		m := p.maxDialing.Load()
		if n <= m || p.maxDialing.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-p.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.dialed.Add(1)
	c, s := net.Pipe()
	p.wg.Go(func() {
		defer s.Close()
		br := bufio.NewReader(s)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			in, _ := io.ReadAll(req.Body)
			if _, err := fmt.Fprintf(s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(in), in); err != nil {
				return
			}
		}
	})
	return c, nil
}

// When calls outnumber the connections, at most maxDials dials run at
// once, and the calls waiting take the connections the finished ones give
// back rather than each dialing its own.
func TestSyncTransportBoundsDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &pipeUpstream{gate: make(chan struct{})}
		tr := newSyncTransport(nil)
		tr.dial = up.dial
		tr.maxDials = 2
		const calls = 10
		var done atomic.Int64
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, "http://upstream.test/chat", strings.NewReader("call-"+strconv.Itoa(i)))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(b) != "call-"+strconv.Itoa(i) {
					t.Errorf("call %d: %q, %v", i, b, err)
				}
				done.Add(1)
			})
		}
		synctest.Wait()
		if n := up.dialing.Load(); n != 2 {
			t.Fatalf("%d dials running with 10 calls waiting, want 2 (maxDials)", n)
		}
		// One dial completes: its call, then every call still waiting,
		// go over that connection while the other dial still hangs; one
		// waiting call took the freed dial slot.
		up.gate <- struct{}{}
		synctest.Wait()
		if d, n := done.Load(), up.dialing.Load(); d != calls-2 || n != 2 {
			t.Fatalf("after one dial: %d calls done, %d dials running; want %d and 2", d, n, calls-2)
		}
		close(up.gate)
		wg.Wait()
		if d, m, n := done.Load(), up.maxDialing.Load(), up.dialed.Load(); d != calls || m != 2 || n != 3 {
			t.Fatalf("%d calls done, at most %d dials at once, %d connections; want %d, 2, 3", d, m, n, calls)
		}
		tr.CloseIdleConnections()
		up.wg.Wait()
	})
}

// Idle connections: at most maxIdle are kept; one idle longer than
// idleTimeout (or, where the upstream's close cannot be seen without a
// read, than checkAfter) is closed instead of used, and the oldest is
// closed when a connection is given back past its idleTimeout.
func TestSyncTransportIdleBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &pipeUpstream{gate: make(chan struct{})}
		close(up.gate)
		tr := newSyncTransport(nil)
		tr.dial = up.dial
		tr.maxIdle = 3
		tr.checkAfter = time.Hour // a pipe cannot be checked: alive() is false
		tr.idleTimeout = 2 * time.Hour
		hp := tr.host("upstream.test")
		open := func() *http.Response {
			req, _ := http.NewRequest(http.MethodPost, "http://upstream.test/chat", strings.NewReader("x"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		finish := func(resp *http.Response) {
			if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "x" {
				t.Fatalf("%q, %v", b, err)
			}
			_ = resp.Body.Close()
		}
		// Five calls at once: five connections, of which three stay idle.
		var resps []*http.Response
		for range 5 {
			resps = append(resps, open())
		}
		for _, r := range resps {
			finish(r)
		}
		if n, d := len(hp.idle), up.dialed.Load(); n != 3 || d != 5 {
			t.Fatalf("%d idle connections after %d dials, want 3 (maxIdle) after 5", n, d)
		}
		finish(open())
		if n := up.dialed.Load(); n != 5 {
			t.Fatalf("a call with idle connections dialed: %d dials", n)
		}
		// Past checkAfter: the three idle connections are closed, not used.
		time.Sleep(90 * time.Minute)
		finish(open())
		if n, d := len(hp.idle), up.dialed.Load(); n != 1 || d != 6 {
			t.Fatalf("past checkAfter: %d idle, %d dials; want 1, 6", n, d)
		}
		// Past idleTimeout (checked first): closed too.
		tr.checkAfter = 24 * time.Hour
		time.Sleep(3 * time.Hour)
		a := open()
		if d := up.dialed.Load(); d != 7 {
			t.Fatalf("past idleTimeout: %d dials, want 7", d)
		}
		b := open()
		finish(a)
		time.Sleep(3 * time.Hour)
		finish(b) // a's connection, idle 3 h, is closed by this put
		if n := len(hp.idle); n != 1 {
			t.Fatalf("%d idle connections, want 1 (the oldest closed past idleTimeout)", n)
		}
		tr.CloseIdleConnections()
		up.wg.Wait()
	})
}

// Requests the synchronous path is not built for go to net/http's
// Transport: https, a proxy, a protocol upgrade.
func TestSyncTransportFallsBack(t *testing.T) {
	var fellBack []string
	tr := newSyncTransport(nil)
	tr.fallback = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fellBack = append(fellBack, r.URL.String())
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	proxied := "http://proxied.test/x"
	tr.proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.String() == proxied {
			return url.Parse("http://proxy.test:3128")
		}
		return nil, nil
	}
	tr.dial = func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("dialed")
	}
	for _, c := range []struct {
		url, upgrade string
		fallback     bool
	}{
		{"https://api.openai.test/v1/chat/completions", "", true},
		{proxied, "", true},
		{"http://upstream.test/v1/realtime", "websocket", true},
		{"http://upstream.test/v1/chat/completions", "", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		if c.upgrade != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", c.upgrade)
		}
		_, err := tr.RoundTrip(req)
		if got := len(fellBack) > 0 && fellBack[len(fellBack)-1] == c.url; got != c.fallback {
			t.Fatalf("%s (upgrade %q): fallback %v, want %v (err %v)", c.url, c.upgrade, got, c.fallback, err)
		}
		if !c.fallback && (err == nil || !strings.Contains(err.Error(), "dialed")) {
			t.Fatalf("%s: %v, want the dial's error", c.url, err)
		}
	}
}

// A request body that fails to read fails the call with its own error (as
// net/http's Transport returns it), e.g. the gateway's size limit.
func TestSyncTransportReturnsBodyErrors(t *testing.T) {
	u, _ := tcpUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
	tr := testSyncTransport(t)
	req, _ := http.NewRequest(http.MethodPost, u+"/x", http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), 10))
	req.ContentLength = -1
	_, err := tr.RoundTrip(req)
	if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
		t.Fatalf("%v, want the body's *http.MaxBytesError", err)
	}
	if _, b := post(t, tr, context.Background(), u+"/x", "after"); len(b) != 0 {
		t.Fatalf("the next call: %q", b)
	}
}

// countingConn counts the writes on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A request of known length goes out in one write with its headers
// (while it fits the buffer), whatever reader its body is; one of unknown
// length is sent chunked. The upstream receives every body whole.
func TestSyncTransportWritesARequestOnce(t *testing.T) {
	u, _ := tcpUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %x", len(b), r.TransferEncoding, sha(b))
	})
	tr := testSyncTransport(t)
	var writes atomic.Int64
	dial := tr.dial
	tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	for _, size := range []int{1, 100, 10 << 10, 15 << 10, 100 << 10, 1 << 20} {
		for _, known := range []bool{true, false} {
			body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			// Two pieces: a reader net/http does not know to be in memory.
			r := io.MultiReader(bytes.NewReader(body[:size/2]), bytes.NewReader(body[size/2:]))
			req, _ := http.NewRequest(http.MethodPost, u+"/x", r)
			if known {
				req.ContentLength = int64(size)
			}
			w0 := writes.Load()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			te := "[]"
			if !known {
				te = "[chunked]"
			}
			if want := fmt.Sprintf("%d %s %x", size, te, sha(body)); string(got) != want {
				t.Fatalf("%d bytes, known %v: the upstream got %q, want %q", size, known, got, want)
			}
			if n := writes.Load() - w0; known && n > int64(size/upstreamBufSize+1) {
				t.Fatalf("%d bytes of known length: %d writes, want at most %d", size, n, size/upstreamBufSize+1)
			}
		}
	}
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// BenchmarkUpstreamTransport is the gateway's upstream hop alone: chat
// requests to an instant loopback upstream through net/http's Transport
// (as the gateway had it) and through the synchronous transport, from
// GOMAXPROCS×4 goroutines. cpu-ns/op is this process's CPU per call
// (client and upstream), the firmer figure on a shared machine.
//
//	go test -run '^$' -bench UpstreamTransport -count 6 -benchmem ./gateway
func BenchmarkUpstreamTransport(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Restart the pod."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":5,"total_tokens":45}}`)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = w.Write(answer)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	u := "http://" + l.Addr().String() + "/v1/chat/completions"
	body := []byte(`{"model":"gpt-4o-mini","max_tokens":200,"messages":[{"role":"system","content":"You are an SRE assistant."},{"role":"user","content":"Pod web-1 is crash-looping. What should I do?"}]}`)
	std := http.DefaultTransport.(*http.Transport).Clone()
	std.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{{"net-http", std}, {"sync", newSyncTransport(std.Clone())}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetParallelism(4)
			c0 := procCPUSelf()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 1024)
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, u, io.NopCloser(bytes.NewReader(body)))
					req.ContentLength = int64(len(body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := c.rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						if _, err := resp.Body.Read(buf); err != nil {
							break
						}
					}
					_ = resp.Body.Close()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(procCPUSelf()-c0)/float64(b.N), "cpu-ns/op")
		})
		if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
			ci.CloseIdleConnections()
		}
	}
}

// Close from another goroutine ends a Read waiting for a stalled upstream
// at once (as net/http's bodies do), and the connection is not reused.
func TestSyncTransportCloseEndsAWaitingRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stall := make(chan struct{})
		var dials atomic.Int64
		var wg sync.WaitGroup
		tr := newSyncTransport(nil)
		tr.dial = func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			c, s := net.Pipe()
			wg.Go(func() {
				defer s.Close()
				br := bufio.NewReader(s)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n"); err != nil {
						return
					}
					if req.URL.Path == "/stall" {
						<-stall
						return
					}
					_, _ = io.WriteString(s, "0\r\n\r\n")
				}
			})
			return c, nil
		}
		req, _ := http.NewRequest(http.MethodPost, "http://upstream.test/stall", strings.NewReader("{}"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "data: 0\n\n" {
			t.Fatalf("%q, %v", buf[:n], err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := resp.Body.Read(buf) // waits: the upstream sends nothing more
			errc <- err
		}()
		synctest.Wait() // the Read is blocked on the connection
		_ = resp.Body.Close()
		if err := <-errc; !errors.Is(err, errBodyClosed) {
			t.Fatalf("the waiting Read: %v, want errBodyClosed", err)
		}
		req, _ = http.NewRequest(http.MethodPost, "http://upstream.test/x", strings.NewReader("{}"))
		resp, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "data: 0\n\n" {
			t.Fatalf("next call: %q, %v", b, err)
		}
		_ = resp.Body.Close()
		if n := dials.Load(); n != 2 {
			t.Fatalf("%d connections, want 2: the closed body's connection was reused", n)
		}
		close(stall)
		tr.CloseIdleConnections()
		wg.Wait()
	})
}
