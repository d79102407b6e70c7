package openai_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// countingConn counts the writes of a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countingTransport is a fresh base transport whose connections count
// their writes.
func countingTransport(t *testing.T, writes *atomic.Int64) *http.Transport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	var d net.Dialer
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, writes}, nil
	}
	return base
}

// routeModel is a layer that changes the model: the body goes upstream
// patched (in pieces).
func routeModel(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		r := req.Clone()
		r.Model = "gpt-4o"
		r.MaxTokens = 512
		return next.Handle(ctx, r)
	})
}

// writesPerRequest sends calls requests with a size-byte message through
// go-openai's raw client and through a transport with chain mw, each over
// a fresh base transport that counts its connections' writes (the
// transport's through wrap, e.g. twopenai.BaseFrom), and returns the
// writes of each side.
func writesPerRequest(t *testing.T, calls, size int, mw middleware.Middleware, wrap func(*http.Transport) http.RoundTripper) (raw, tw int64) {
	t.Helper()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "ok"})
	req := chatRequest(false)
	req.Messages[1].Content = strings.Repeat("x", size)
	var rawWrites, twWrites atomic.Int64
	rawc := clientFor(srv, &http.Client{Transport: countingTransport(t, &rawWrites)})
	twc := clientFor(srv, twopenai.NewHTTPClient(mw, twopenai.WithBaseTransport(wrap(countingTransport(t, &twWrites)))))
	for range calls {
		for _, c := range []*openai.Client{rawc, twc} {
			if _, err := c.CreateChatCompletion(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
	}
	return rawWrites.Load(), twWrites.Load()
}

// The chains of the writes tests: the body goes upstream as the caller
// sent it, or patched by a layer (in pieces).
var writeChains = []struct {
	name string
	mw   middleware.Middleware
}{{"unchanged", middleware.Chain(pass)}, {"patched", middleware.Chain(routeModel)}}

// TestUpstreamRequestTakesNoMoreWrites: the transport sends each upstream
// request in no more writes to the connection than go-openai's own client
// does with the same base transport, whether the body goes as the caller
// sent it or patched by a layer, small (where net/http writes headers and
// body at once) or large.
func TestUpstreamRequestTakesNoMoreWrites(t *testing.T) {
	same := func(b *http.Transport) http.RoundTripper { return b }
	for _, size := range []int{200, 6000} {
		for _, chain := range writeChains {
			raw, tw := writesPerRequest(t, 5, size, chain.mw, same)
			if raw == 0 || tw > raw {
				t.Errorf("%d-byte message, %s: %d writes through the transport, %d by the raw client", size, chain.name, tw, raw)
			}
		}
	}
}

// TestDefaultBaseSendsARequestInOneWrite: the default base transport (a
// clone of net/http's with a 64 KiB write buffer) sends a request of up to
// tens of kilobytes, headers and body, in one write to the connection,
// whether the body goes as the caller sent it or patched in pieces; the
// raw client over net/http's default buffer takes more than one for the
// larger ones, the first 4 KiB then the rest.
func TestDefaultBaseSendsARequestInOneWrite(t *testing.T) {
	const calls = 3
	for _, size := range []int{200, 6000, 40000} {
		for _, chain := range writeChains {
			raw, tw := writesPerRequest(t, calls, size, chain.mw, twopenai.BaseFrom)
			if tw != calls {
				t.Errorf("%d-byte message, %s: %d writes for %d requests, want one each", size, chain.name, tw, calls)
			}
			if size > 4096 && raw <= calls {
				t.Errorf("%d-byte message: the raw client took %d writes for %d requests: the comparison shows nothing", size, raw, calls)
			}
		}
	}
}

// TestClientsOfTheDefaultBaseShareItsConnections: clients that keep the
// default base transport share one pool of connections (it is made once
// per process), so a client made per request still reuses a connection.
func TestClientsOfTheDefaultBaseShareItsConnections(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "ok"})
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	for range 4 {
		cfg := openai.DefaultConfig("sk-test")
		cfg.BaseURL = ts.URL + "/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(middleware.Chain(pass))
		if _, err := openai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), chatRequest(false)); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("4 clients opened %d connections, want 1", n)
	}
}

// countingRoundTripper counts the requests it passes to next.
type countingRoundTripper struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestAReplacedDefaultTransportIsTheDefaultBase: a program (or an HTTP
// mock in its tests) that replaced http.DefaultTransport gets its own as
// the base of the clients made while it is in place, and the shared
// clone of net/http's again once it is put back.
func TestAReplacedDefaultTransportIsTheDefaultBase(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "ok"})
	orig := http.DefaultTransport
	t.Cleanup(func() { http.DefaultTransport = orig })
	var seen atomic.Int64
	call := func() {
		t.Helper()
		c := clientFor(srv, twopenai.NewHTTPClient(middleware.Chain(pass)))
		if _, err := c.CreateChatCompletion(context.Background(), chatRequest(false)); err != nil {
			t.Fatal(err)
		}
	}
	http.DefaultTransport = countingRoundTripper{next: orig, n: &seen}
	call()
	if seen.Load() != 1 || twopenai.DefaultBaseTransport() != http.DefaultTransport {
		t.Fatalf("the replaced http.DefaultTransport carried %d requests, want 1", seen.Load())
	}
	http.DefaultTransport = orig
	call()
	if seen.Load() != 1 {
		t.Fatalf("the replaced http.DefaultTransport carried a request after it was put back")
	}
	if b, ok := twopenai.DefaultBaseTransport().(*http.Transport); !ok || b == orig || b.WriteBufferSize != 64<<10 {
		t.Fatalf("the default base is %T, want the clone of http.DefaultTransport with a 64 KiB write buffer", twopenai.DefaultBaseTransport())
	}
}
