package sendtrack_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/internal/sendtrack"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A request is sent when its transport wrote it whole: told by its body
// on any transport, by net/http's trace on net/http's Transport, whose
// dial may end the call before anything is written.
func TestTrackTellsWhetherTheRequestWasWritten(t *testing.T) {
	newReq := func() *http.Request {
		r, err := http.NewRequest(http.MethodPost, "http://upstream.test/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	refused := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("no connection") })
	r, tr := sendtrack.Track(refused, newReq())
	if _, err := refused.RoundTrip(r); err == nil || tr.Sent() {
		t.Fatalf("a transport that read nothing: sent %v", tr.Sent())
	}
	reads := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, err := io.Copy(io.Discard, r.Body)
		return nil, errors.Join(err, errors.New("no answer"))
	})
	r, tr = sendtrack.Track(reads, newReq())
	if _, _ = reads.RoundTrip(r); !tr.Sent() {
		t.Fatal("a transport that read the body whole: not sent")
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	for _, c := range []struct {
		name string
		dial func(ctx context.Context, network, addr string) (net.Conn, error)
		want bool
	}{
		{"reachable", (&net.Dialer{}).DialContext, true},
		{"unreachable", func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("connection refused") }, false},
	} {
		base := &http.Transport{DialContext: c.dial}
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		req, tr := sendtrack.Track(base, req)
		if resp, err := base.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
		base.CloseIdleConnections()
		if tr.Sent() != c.want {
			t.Errorf("net/http, %s: sent %v, want %v", c.name, tr.Sent(), c.want)
		}
	}
	if _, tr := sendtrack.Track(refused, &http.Request{Body: http.NoBody}); !tr.Sent() {
		t.Error("a request without a body is not tracked: sent")
	}
}
