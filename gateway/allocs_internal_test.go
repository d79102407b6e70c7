package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStoredNoteIsItsCallsContext pins the chat call's storedNote as one
// allocation that is also its context (it was three: the note, the
// closure of its check and a context.WithValue), and that the context it
// is behaves as the one below it with the note as its storedKey value.
func TestStoredNoteIsItsCallsContext(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), other{}, "v"))
	s := &Server{}
	if n := testing.AllocsPerRun(100, func() { noteSink = withStoredNote(parent, s, "devops") }); n != 1 {
		t.Errorf("withStoredNote: %v allocations, want 1", n)
	}
	note := withStoredNote(parent, s, "devops")
	var ctx context.Context = note
	if got, _ := ctx.Value(storedKey{}).(*storedNote); got != note {
		t.Errorf("Value(storedKey{}) = %v, want the note", got)
	}
	if got := ctx.Value(other{}); got != "v" {
		t.Errorf("Value(other{}) = %v, want the parent's v", got)
	}
	if ctx.Done() != parent.Done() {
		t.Error("Done is not the parent's")
	}
	// A context below the note still finds the stored note, and ends
	// with the parent's.
	child, stop := context.WithCancel(ctx)
	defer stop()
	if got, _ := child.Value(storedKey{}).(*storedNote); got != note {
		t.Errorf("a child's Value(storedKey{}) = %v, want the note", got)
	}
	cancel()
	<-child.Done()
	if child.Err() != context.Canceled || ctx.Err() != context.Canceled {
		t.Errorf("after the parent's cancel: child %v, note %v", child.Err(), ctx.Err())
	}
	// A note without a Server checks nothing.
	if err := (&storedNote{}).check(t.Context(), nil); err != nil {
		t.Errorf("check without a Server: %v", err)
	}
}

// noteSink keeps what an allocation test makes from being optimized away.
var noteSink *storedNote

// deadlineWriter is a ResponseWriter that takes read and write deadlines
// (what timed arms), as net/http's does.
type deadlineWriter struct {
	h    http.Header
	rd   time.Time
	wd   time.Time
	code int
}

func (w *deadlineWriter) Header() http.Header               { return w.h }
func (w *deadlineWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (w *deadlineWriter) WriteHeader(code int)              { w.code = code }
func (w *deadlineWriter) SetReadDeadline(t time.Time) error { w.rd = t; return nil }
func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.wd = t
	return nil
}

// TestTimedCopiesTheRequestInItsWriter pins timed's allocations for a
// request with a body at one (the writer, with the request's copy and
// its timed body in it; the copy was a second, r.WithContext), and that
// the handler gets a copy of the request, not the server's own, with
// the same context and a body read under the deadline.
func TestTimedCopiesTheRequestInItsWriter(t *testing.T) {
	s := &Server{cfg: &Config{}}
	var got *http.Request
	h := s.timed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))
	w := &deadlineWriter{h: http.Header{}}
	body := io.NopCloser(strings.NewReader("{}"))
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://gw.test/v1/chat/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 1 {
		t.Errorf("timed: %v allocations a request with a body, want 1", n)
	}
	h.ServeHTTP(w, r)
	switch {
	case got == r:
		t.Error("the handler got the server's request, not a copy")
	case got.Context() != r.Context():
		t.Error("the copy has another context")
	case got.URL != r.URL || got.Method != r.Method || got.ContentLength != r.ContentLength:
		t.Errorf("the copy differs: %s %s %d", got.Method, got.URL, got.ContentLength)
	case r.Body != body:
		t.Error("the server's request's body was replaced")
	}
	if _, ok := got.Body.(*timedBody); !ok {
		t.Errorf("the copy's body is a %T, want the *timedBody", got.Body)
	}
	if w.rd.IsZero() || w.wd.IsZero() {
		t.Errorf("deadlines not armed: read %v, write %v", w.rd, w.wd)
	}
}

// TestStatusLineIsNetHTTPs checks statusLine against what it stands for
// for every three-digit code, and that 200's costs no allocation.
func TestStatusLineIsNetHTTPs(t *testing.T) {
	for code := 100; code < 1000; code++ {
		if got, want := statusLine(code), strconv.Itoa(code)+" "+http.StatusText(code); got != want {
			t.Errorf("statusLine(%d) = %q, want %q", code, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = statusLine(http.StatusOK) }); n != 0 {
		t.Errorf("statusLine(200): %v allocations, want 0", n)
	}
}

// TestInProcessRoundTripAllocations pins the in-process transport's own
// allocations for a call (a handler that answers a few bytes, read whole
// by the caller): the gateway's end and the body's cut are one
// context.AfterFunc on the gateway's context, not two (each costs three
// allocations), and the Status of a 200 is made once.
func TestInProcessRoundTripAllocations(t *testing.T) {
	base, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := &Server{baseCtx: base, handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	tr := s.Transport()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://tokenwise.invalid/v1/models", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	call := func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if resp.Status != "200 OK" || string(buf[:n]) != "ok" {
			t.Fatalf("got %q %q", resp.Status, buf[:n])
		}
	}
	n := testing.AllocsPerRun(200, call)
	t.Logf("%v allocations a call", n)
	if n > inProcessAllocs {
		t.Errorf("an in-process call: %v allocations, want at most %d", n, inProcessAllocs)
	}
	// The gateway's end still cuts a call whose answer has begun.
	block := make(chan struct{})
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		<-r.Context().Done()
		close(block)
	})
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	<-block // the handler's context ended with the gateway's
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("the body of a call the gateway's end cut read to its end")
	}
}

// inProcessAllocs is the most allocations TestInProcessRoundTripAllocations
// lets an in-process call make.
const inProcessAllocs = 23

// TestStoredNoteForwardsItsContext: the note answers Deadline, Err, Done,
// Value (any key but storedKey) and Cause exactly as the context below it
// does, before and after that context ends, and a context.AfterFunc or a
// context.WithoutCancel made on the note behaves as on the context below.
func TestStoredNoteForwardsItsContext(t *testing.T) {
	type other struct{}
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	cause := errors.New("the caller left")
	base, cancel := context.WithCancelCause(context.WithValue(t.Context(), other{}, "v"))
	parent, stop := context.WithDeadline(base, at)
	defer stop()
	note := withStoredNote(parent, &Server{}, "devops")
	check := func(when string) {
		t.Helper()
		d, ok := note.Deadline()
		pd, pok := parent.Deadline()
		if d != pd || ok != pok || !d.Equal(at) {
			t.Errorf("%s: Deadline %v %v, want %v %v", when, d, ok, pd, pok)
		}
		if note.Err() != parent.Err() || context.Cause(note) != context.Cause(parent) {
			t.Errorf("%s: Err %v, Cause %v, want %v, %v", when, note.Err(), context.Cause(note), parent.Err(), context.Cause(parent))
		}
		if note.Done() != parent.Done() {
			t.Errorf("%s: Done is not the parent's", when)
		}
		if note.Value(other{}) != "v" || note.Value("missing") != nil || note.Value(storedKey{}) != note {
			t.Errorf("%s: Value %v, %v, %v", when, note.Value(other{}), note.Value("missing"), note.Value(storedKey{}))
		}
		if got, _ := context.WithoutCancel(note).Value(storedKey{}).(*storedNote); got != note {
			t.Errorf("%s: WithoutCancel's Value(storedKey{}) = %v, want the note", when, got)
		}
	}
	check("before the end")
	fired := make(chan struct{})
	context.AfterFunc(note, func() { close(fired) })
	cancel(cause)
	<-fired
	check("after the end")
	if note.Err() != context.Canceled || context.Cause(note) != cause {
		t.Errorf("after the end: Err %v, Cause %v", note.Err(), context.Cause(note))
	}
}

// TestInProcessHandsItsHeadersOver pins the in-process writer handing
// its header map to the caller's response when the headers are written,
// instead of a copy (three allocations a call with a chat call's
// headers), and that a change the handler makes after WriteHeader still
// reaches nobody, as over net/http's server: neither a header set nor one
// deleted afterwards changes what the caller got.
func TestInProcessHandsItsHeadersOver(t *testing.T) {
	base, cancel := context.WithCancel(t.Context())
	defer cancel()
	ct, id, late := []string{"application/json"}, []string{"call-0123"}, []string{"1"}
	lateChanges := true
	s := &Server{baseCtx: base, handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"], h[CallIDHeader] = ct, id
		w.WriteHeader(http.StatusOK)
		if lateChanges {
			w.Header()["X-Late"] = late
			delete(w.Header(), CallIDHeader)
		}
		_, _ = io.WriteString(w, "ok")
	})}
	tr := s.Transport()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://tokenwise.invalid/v1/models", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	var got http.Header
	call := func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(buf[:n]) != "ok" {
			t.Fatalf("got %d %q", resp.StatusCode, buf[:n])
		}
		got = resp.Header
	}
	call()
	if len(got) != 2 || got.Get("Content-Type") != "application/json" || got.Get(CallIDHeader) != "call-0123" {
		t.Errorf("the caller got the headers %v, want Content-Type and %s only, as written", got, CallIDHeader)
	}
	// A handler that changes nothing after WriteHeader, as the chat
	// handler: the handler's headers cost the map's group, and the rest
	// is the call's (TestInProcessRoundTripAllocations).
	lateChanges = false
	n := testing.AllocsPerRun(200, call)
	t.Logf("%v allocations a call", n)
	if n > inProcessAllocs+1 {
		t.Errorf("an in-process call with two headers: %v allocations, want at most %d", n, inProcessAllocs+1)
	}
}

// TestInProcessSharesTheCallersHeaders pins the in-process transport
// handing the handler a shallow copy of the caller's request, not
// req.Clone's (which copied the header map and the URL: four
// allocations a call with three headers): the handler still reads the
// caller's headers as sent and a URL of its own (the path and query, as
// a server reads it), and the caller's request is as it was.
func TestInProcessSharesTheCallersHeaders(t *testing.T) {
	base, cancel := context.WithCancel(t.Context())
	defer cancel()
	var seen, seenURL string
	look := true // (the first call only: the handler's own allocations are not the transport's)
	s := &Server{baseCtx: base, handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if look {
			seen, seenURL = r.Header.Get("Authorization")+"|"+r.Header.Get(RunIDHeader)+"|"+r.Header.Get("Content-Type"), r.URL.String()
		}
		_, _ = io.WriteString(w, "ok")
	})}
	tr := s.Transport()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://tokenwise.invalid/v1/models?limit=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tw-test")
	req.Header.Set(RunIDHeader, "run-1")
	req.Header.Set("Content-Type", "application/json")
	buf := make([]byte, 8)
	call := func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(buf[:n]) != "ok" {
			t.Fatalf("got %d %q", resp.StatusCode, buf[:n])
		}
	}
	call()
	if seen != "Bearer tw-test|run-1|application/json" || seenURL != "/v1/models?limit=2" {
		t.Errorf("the handler read %q at %q", seen, seenURL)
	}
	if req.URL.String() != "http://tokenwise.invalid/v1/models?limit=2" || len(req.Header) != 3 {
		t.Errorf("the caller's request changed: %s, %v", req.URL, req.Header)
	}
	look = false
	n := testing.AllocsPerRun(200, call)
	t.Logf("%v allocations a call", n)
	// One more than TestInProcessRoundTripAllocations's call: the
	// request URI with a query (path?query) is made.
	if n > inProcessAllocs+1 {
		t.Errorf("an in-process call with three headers and a query: %v allocations, want at most %d", n, inProcessAllocs+1)
	}
}

// writeDeadlineWriter takes write deadlines only, as the in-process
// transport's writer does.
type writeDeadlineWriter struct {
	h  http.Header
	wd time.Time
}

func (w *writeDeadlineWriter) Header() http.Header                { return w.h }
func (w *writeDeadlineWriter) Write(p []byte) (int, error)        { return len(p), nil }
func (w *writeDeadlineWriter) WriteHeader(int)                    {}
func (w *writeDeadlineWriter) SetWriteDeadline(t time.Time) error { w.wd = t; return nil }

// unwrapWriter wraps a writer as a middleware's would, with Unwrap.
type unwrapWriter struct{ http.ResponseWriter }

func (w *unwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestTimedAsksNoReadDeadlineOfAWriterWithoutOne: a request with a body
// to a writer that takes write deadlines but no read deadline (the
// in-process transport's) costs timed one allocation, its writer (it
// cost three: http.ResponseController's error saying no is made by
// fmt.Errorf), and the handler gets the request as it came, its body
// unwrapped, as before; a read deadline is still found under a wrapper
// (Unwrap), as http.ResponseController finds it.
func TestTimedAsksNoReadDeadlineOfAWriterWithoutOne(t *testing.T) {
	s := &Server{cfg: &Config{}}
	var got *http.Request
	h := s.timed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))
	w := &writeDeadlineWriter{h: http.Header{}}
	body := io.NopCloser(strings.NewReader("{}"))
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://gw.test/v1/chat/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 1 {
		t.Errorf("timed: %v allocations a request with a body to a writer without read deadlines, want 1", n)
	}
	h.ServeHTTP(w, r)
	if got != r || got.Body != body {
		t.Error("the handler did not get the request as it came")
	}
	if w.wd.IsZero() {
		t.Error("the write deadline was not armed")
	}
	for _, c := range []struct {
		w    http.ResponseWriter
		want bool
	}{
		{w, false},
		{&unwrapWriter{w}, false},
		{&deadlineWriter{h: http.Header{}}, true},
		{&unwrapWriter{&unwrapWriter{&deadlineWriter{h: http.Header{}}}}, true},
	} {
		if got := takesReadDeadlines(c.w); got != c.want {
			t.Errorf("takesReadDeadlines(%T) = %v, want %v", c.w, got, c.want)
		}
		if got := http.NewResponseController(c.w).SetReadDeadline(time.Time{}) == nil; got != c.want {
			t.Errorf("ResponseController.SetReadDeadline of %T succeeded: %v, want %v", c.w, got, c.want)
		}
	}
}
