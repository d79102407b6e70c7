package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// pipeListener is a net.Listener of in-memory connections (net.Pipe), so
// that a server and its clients run inside a synctest bubble.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, errors.New("connection refused")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// servePipe serves the gateway of the gateway file at cfgPath, whose
// upstream calls go to base, on a pipe listener (inside the caller's
// synctest bubble when it has one), logging to logger; it returns the
// gateway, a transport to it and what Serve returns when it ends.
func servePipe(t *testing.T, cfgPath string, base http.RoundTripper, logger *slog.Logger) (*gateway.Server, *http.Transport, chan error) {
	t.Helper()
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithBaseTransport(base), gateway.WithPolicyWatch(false), gateway.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	l := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	return srv, &http.Transport{DialContext: l.dial}, served
}

// drainEnv is a gateway served on a pipe listener, with an in-memory
// upstream, inside the caller's synctest bubble.
func drainEnv(t *testing.T, grace string) (*gateway.Server, *goopenai.Client, *http.Transport, chan error) {
	t.Helper()
	up := openaitest.New()
	// 20 chunks, one a second: a stream of 20 s (of the bubble's time).
	up.Default(openaitest.Reply{Content: strings.Repeat("x", 20), ChunkSize: 1, ChunkLatency: time.Second})
	cfgPath := writeFiles(t, up.URL, defaultPolicies, "limits: {shutdown_grace: "+grace+"}\n")
	srv, tr, served := servePipe(t, cfgPath, up.Transport(), slog.New(slog.DiscardHandler))
	c := goopenai.DefaultConfig(devopsKey)
	c.BaseURL = "http://gateway/v1"
	c.HTTPClient = &http.Client{Transport: tr}
	return srv, goopenai.NewClientWithConfig(c), tr, served
}

func readStream(st *goopenai.ChatCompletionStream) (string, error) {
	var b strings.Builder
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		for _, ch := range c.Choices {
			b.WriteString(ch.Delta.Content)
		}
	}
}

// A shutdown waits for the streams in flight, which finish whole (with
// [DONE]), while the gateway reports not ready and takes no new
// connection; a stream that outlives the deadline is cut with an error
// the client sees, never ended as if complete.
func TestGatewayDrainsStreamsOnShutdown(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Stream: true, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}

	t.Run("finish within the grace", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, client, tr, served := drainEnv(t, "30s")
			defer tr.CloseIdleConnections()
			st, err := client.CreateChatCompletionStream(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			start := time.Now()
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				shut <- srv.Shutdown(ctx)
			}()
			synctest.Wait()
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
			default:
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("readyz while draining: %d, want 503", rec.Code)
			}
			if _, err := client.CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}); err == nil {
				t.Errorf("a new request was served while draining")
			}
			got, err := readStream(st)
			if err != nil || got != strings.Repeat("x", 20) {
				t.Fatalf("drained stream: %q, %v; want the whole answer", got, err)
			}
			st.Close() // reads the end of the body (a pipe buffers nothing)
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if d := time.Since(start); d < 20*time.Second || d > 25*time.Second {
				t.Errorf("Shutdown took %v, want the stream's remaining 20-25s (a chunk a second)", d)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		})
	})

	t.Run("cut at the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, client, tr, served := drainEnv(t, "5s")
			defer tr.CloseIdleConnections()
			st, err := client.CreateChatCompletionStream(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(ctx) }()
			got, err := readStream(st)
			if err == nil {
				t.Fatalf("a stream cut by the shutdown ended as complete: %q", got)
			}
			if len(got) == 0 || len(got) >= 20 {
				t.Errorf("cut stream delivered %d of 20 pieces", len(got))
			}
			if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown: %v, want the deadline's error", err)
			}
			if d := time.Since(start); d < 5*time.Second || d > 7*time.Second {
				t.Errorf("Shutdown took %v, want its 5s deadline", d)
			}
			<-served
		})
	})
}
