package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestInProcessTransportAsAServer: the in-process transport delivers what
// a handler writes as net/http's server would deliver it to a client over
// HTTP, for the handlers' edge cases: a body short of its Content-Length
// is cut (io.ErrUnexpectedEOF); one longer is refused to the handler
// (http.ErrContentLength) and the client reads the declared length; a
// handler's panic fails the call before its headers, and cuts its body
// after them; an informational 103 is not the answer; a handler that
// writes nothing answers 200 with an empty body; an empty write does not
// wait for a read; a HEAD request's answer has no body.
func TestInProcessTransportAsAServer(t *testing.T) {
	type result struct {
		status int
		body   string
		err    error // RoundTrip's, else the body's read
	}
	var longWrite error // what the handler's write past Content-Length returned
	for _, c := range []struct {
		name    string
		method  string
		handler http.HandlerFunc
		check   func(r result) bool
	}{
		{"short", "GET", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
		}, func(r result) bool {
			return r.status == 200 && r.body == "12345" && errors.Is(r.err, io.ErrUnexpectedEOF)
		}},
		{"long", "GET", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, "123")
			_, longWrite = io.WriteString(w, "45")
		}, func(r result) bool { return r.status == 200 && r.body == "123" && r.err == nil }},
		{"panic before the headers", "GET", func(http.ResponseWriter, *http.Request) { panic("boom") },
			func(r result) bool { return r.status == 0 && r.err != nil && strings.Contains(r.err.Error(), "boom") }},
		{"panic after the headers", "GET", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		}, func(r result) bool { return r.status == 200 && r.body == "partial" && r.err != nil }},
		{"early hints", "GET", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "tea")
		}, func(r result) bool { return r.status == http.StatusTeapot && r.body == "tea" && r.err == nil }},
		{"nothing written", "GET", func(http.ResponseWriter, *http.Request) {},
			func(r result) bool { return r.status == 200 && r.body == "" && r.err == nil }},
		{"empty write", "GET", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write(nil)
			_, _ = io.WriteString(w, "ok")
		}, func(r result) bool { return r.status == http.StatusAccepted && r.body == "ok" && r.err == nil }},
		{"head", "HEAD", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "not sent")
		}, func(r result) bool { return r.status == 200 && r.body == "" && r.err == nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &Server{handler: c.handler, baseCtx: ctx}
			req, _ := http.NewRequestWithContext(t.Context(), c.method, "http://tokenwise.invalid/x", nil)
			var r result
			resp, err := s.Transport().RoundTrip(req)
			if err != nil {
				r.err = err
			} else {
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				r = result{resp.StatusCode, string(b), err}
			}
			if !c.check(r) {
				t.Errorf("got status %d, body %q, error %v", r.status, r.body, r.err)
			}
		})
	}
	if !errors.Is(longWrite, http.ErrContentLength) {
		t.Errorf("a write past Content-Length returned %v, want http.ErrContentLength", longWrite)
	}
}

// TestInProcessTransportKeepsAnAnswerMadeAtOnce: a handler that answers
// and returns before RoundTrip looks (a status and no body: 8 goroutines
// × 2,000 calls, so that some handlers run to their end before their
// RoundTrip wakes) has its answer delivered: its return ends the call's
// context, which must not be read as the call ending before its answer.
// (Under -race, as the project's tests run, the code before the fix
// failed here in every run.)
func TestInProcessTransportKeepsAnAnswerMadeAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Server{handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }), baseCtx: ctx}
	rt := s.Transport()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://tokenwise.invalid/x", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Errorf("%v, want the handler's 204", err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Errorf("%d, want 204", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
}
