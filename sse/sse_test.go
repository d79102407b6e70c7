package sse_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decode(r *http.Request) (*middleware.Request, error) {
	q := r.URL.Query().Get("q")
	if q == "" {
		return nil, errors.New("missing q")
	}
	return &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: q}}}, nil
}

// events reads an SSE body into (event, data) pairs.
func events(t *testing.T, body io.Reader) (out [][2]string) {
	t.Helper()
	sc := bufio.NewScanner(body)
	var name string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out = append(out, [2]string{name, strings.Join(data, "\n")})
			name, data = "", nil
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		}
	}
	return out
}

func TestStreamsAnAnswer(t *testing.T) {
	t.Parallel()
	up := openaitest.New()
	up.On().Reply(openaitest.Reply{Content: "Line one.\nLine two.", ChunkSize: 4})
	h := sse.CallHandler(twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport())), decode)
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "?q=status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	ev := events(t, resp.Body)
	var text strings.Builder
	for _, e := range ev[:len(ev)-1] {
		if e[0] != "" {
			t.Fatalf("unexpected event %v", e)
		}
		text.WriteString(e[1])
	}
	if text.String() != "Line one.\nLine two." || ev[len(ev)-1] != [2]string{"", "[DONE]"} {
		t.Fatalf("events %q", ev)
	}
	if len(ev) < 4 {
		t.Fatalf("%d events: each chunk must be its own event", len(ev))
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	up := openaitest.New()
	up.On(openaitest.LastContains("cut")).Reply(openaitest.CutAfter(3))
	up.On(openaitest.LastContains("busy")).Reply(openaitest.Unavailable())
	h := sse.CallHandler(twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport())), decode)
	srv := httptest.NewServer(h)
	defer srv.Close()

	// Before the first event: an HTTP status.
	for q, want := range map[string]int{"busy": 503, "": 400} {
		resp, err := http.Get(srv.URL + "?q=" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("q=%q: status %d, want %d", q, resp.StatusCode, want)
		}
	}
	// After it: an error event, and no [DONE].
	resp, err := http.Get(srv.URL + "?q=cut")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev := events(t, resp.Body)
	last := ev[len(ev)-1]
	if len(ev) < 2 || last[0] != "error" || !strings.Contains(last[1], "stream cut") {
		t.Fatalf("events %q, want text then an error event", ev)
	}
	for _, e := range ev {
		if e[1] == "[DONE]" {
			t.Fatal("a cut stream ended with [DONE]")
		}
	}
}

// A client that disconnects stops the upstream call. The handler is served
// in memory (openaitest.NewTransport: a client's cancel or Close ends its
// request's context, as net/http's server does when a client goes), in a
// synctest bubble: its safety net is fake time.
func TestDisconnectStopsUpstream(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testDisconnectStopsUpstream)
}

func testDisconnectStopsUpstream(t *testing.T) {
	up := openaitest.New()
	up.On().Reply(openaitest.StallAfter(2))
	ended := make(chan error, 1)
	watch := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			resp, err := next.Handle(ctx, r)
			ended <- err
			return resp, err
		})
	}
	h := sse.CallHandler(middleware.Then(twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport())), watch), decode)
	client := &http.Client{Transport: openaitest.NewTransport(h)}

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://sse.test/?q=hi", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("upstream ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second): // a safety net for a hung test (fake time), not a timing assertion
		t.Fatal("the upstream call outlived the client")
	}
}
