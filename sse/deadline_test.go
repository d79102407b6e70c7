package sse_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/sse"
)

// pipeListener is a net.Listener of in-memory connections (net.Pipe),
// which a synctest bubble can hold: a server on it and its clients run in
// the bubble. A net.Pipe buffers nothing: a client that stops reading
// blocks the server's next write at once.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// serveInBubble serves h in the caller's bubble; it returns a connection
// to it, on which a GET / was sent, and the response's headers.
func serveInBubble(t *testing.T, h http.Handler) (*http.Response, func()) {
	t.Helper()
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(l) }()
	c, s := net.Pipe()
	l.conns <- s
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: sse\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, func() {
		_ = c.Close()
		_ = srv.Close()
		<-served
	}
}

// A client that stops reading a stream, keeping its connection open, ends
// the run within the write timeout (the write fails, the run's context
// ends, and with it an upstream call), as a client that hangs up does:
// without a write deadline the run's next Send blocked for good.
func TestAClientThatStopsReadingEndsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ended := make(chan time.Time, 1)
		h := sse.Handler(func(ctx context.Context, _ *http.Request, s *sse.Stream) error {
			defer func() { ended <- time.Now() }()
			for {
				if err := s.Send(strings.Repeat("x", 1000)); err != nil {
					if ctx.Err() == nil {
						t.Errorf("Send failed (%v), and the run's context goes on", err)
					}
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		}, sse.WithWriteTimeout(2*time.Second))
		resp, closeAll := serveInBubble(t, h)
		defer closeAll()
		if _, err := io.ReadFull(resp.Body, make([]byte, 10_000)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// The client reads no more.
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case at := <-ended:
			if d := at.Sub(start); d > 3*time.Second {
				t.Errorf("the run ended %v after its client stopped reading, want within the write timeout (2s)", d)
			}
		default:
			t.Fatalf("a minute after its client stopped reading, the run still streams (write timeout 2s); began %v ago", time.Since(start))
		}
	})
}

// The write deadline is armed again for every event: a client that reads
// slowly but steadily (1,000 bytes every 500ms) a stream that takes it
// 100s, fifty times the write timeout, gets it whole.
func TestAWriteTimeoutSparesASlowSteadyReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := sse.Handler(func(_ context.Context, _ *http.Request, s *sse.Stream) error {
			for range 100 {
				if err := s.Send(strings.Repeat("x", 1000)); err != nil {
					return err
				}
			}
			return nil
		}, sse.WithWriteTimeout(2*time.Second))
		resp, closeAll := serveInBubble(t, h)
		defer closeAll()
		start := time.Now()
		var got []byte
		for {
			b := make([]byte, 1000)
			n, err := resp.Body.Read(b)
			got = append(got, b[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if d := time.Since(start); d < 50*time.Second {
			t.Errorf("read in %v: want much longer than the write timeout", d)
		}
		if n := strings.Count(string(got), "x"); n != 100_000 || !strings.HasSuffix(string(got), "data: [DONE]\n\n") {
			t.Errorf("got %d x's, ending %q: want the whole stream", n, got[max(0, len(got)-40):])
		}
	})
}
