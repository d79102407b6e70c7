package openai

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// referenceUpstreamHeader is how the upstream request's headers were made
// before upstreamHeader shared the caller's: a clone of them, changed.
func referenceUpstreamHeader(h http.Header, accept string, extra http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Del("Content-Length")
	h.Del("Accept-Encoding")
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{accept}
	for k, v := range extra {
		h[k] = append([]string(nil), v...)
	}
	return h
}

// randomCallerHeader returns the headers of a random caller's request:
// each of the headers upstreamHeader looks at absent, right, wrong or
// repeated, and others.
func randomCallerHeader(rng *rand.Rand) http.Header {
	if rng.IntN(10) == 0 {
		return nil
	}
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Accept", "Content-Length", "Accept-Encoding", "Authorization", "X-Custom"} {
		switch rng.IntN(8) {
		case 0, 1, 2: // absent
		case 3, 4:
			h[k] = []string{"application/json"}
		case 5:
			h[k] = []string{"text/event-stream"}
		case 6:
			h[k] = []string{"application/json", "text/plain"}
		case 7:
			h[k] = []string{}
		}
	}
	return h
}

// TestUpstreamHeaderIsTheChangedClone: over random caller headers, stream
// or not, with and without the Provider's own headers, the upstream
// request's headers are exactly the changed clone the provider used to
// send, the caller's map is never modified, and it is shared only when
// nothing would change.
func TestUpstreamHeaderIsTheChangedClone(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 17))
	shared := 0
	for range 5000 {
		var opts []Option
		if rng.IntN(4) == 0 {
			opts = append(opts, WithHeader("X-Team", "a"))
		}
		if rng.IntN(8) == 0 {
			opts = append(opts, WithHeader("Accept", "application/json"))
		}
		p := &Provider{cfg: newConfig(opts)}
		accept := []string{"application/json", "text/event-stream"}[rng.IntN(2)]
		h := randomCallerHeader(rng)
		before := h.Clone()
		got := p.upstreamHeader(h, accept)
		want := referenceUpstreamHeader(before, accept, p.cfg.header)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("caller %v, accept %s, provider %v:\ngot  %v\nwant %v", before, accept, p.cfg.header, got, want)
		}
		if !reflect.DeepEqual(h, before) {
			t.Fatalf("the caller's headers changed: %v, were %v", h, before)
		}
		if h != nil && reflect.ValueOf(got).UnsafePointer() == reflect.ValueOf(h).UnsafePointer() {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("the caller's headers were never shared")
	}
}

// TestUpstreamRequestOfATransportCall: the request a Transport's provider
// sends for a caller's request has the caller's URL, method POST, the
// changed headers and the given body, and leaves the caller's request as
// it was.
func TestUpstreamRequestOfATransportCall(t *testing.T) {
	for _, stream := range []bool{false, true} {
		caller, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions?api-key=k", http.NoBody)
		caller.Header.Set("Authorization", "Bearer k")
		caller.Header.Set("Content-Type", "application/json")
		caller.Header.Set("Accept-Encoding", "br")
		caller.TransferEncoding = []string{"chunked"}
		caller.Close = true
		callerURL := *caller.URL
		callerHeader := caller.Header.Clone()
		p := &Provider{cfg: newConfig(nil)}
		c := &call{owner: p, req: caller}
		body := []byte(`{"model":"m","messages":[]}`)
		type key struct{}
		ctx := context.WithValue(context.Background(), key{}, 1)
		hreq, _, err := p.newRequest(ctx, c, wireBody{parts: [][]byte{body}, n: len(body)}, stream, "m")
		if err != nil {
			t.Fatal(err)
		}
		accept := "application/json"
		if stream {
			accept = "text/event-stream"
		}
		if hreq.Method != http.MethodPost || hreq.URL.String() != callerURL.String() || hreq.Context().Value(key{}) != 1 ||
			hreq.TransferEncoding != nil || hreq.Close || hreq.ContentLength != int64(len(body)) {
			t.Fatalf("upstream request %+v", hreq)
		}
		if want := referenceUpstreamHeader(callerHeader, accept, nil); !reflect.DeepEqual(hreq.Header, want) {
			t.Fatalf("headers %v, want %v", hreq.Header, want)
		}
		for range 2 { // the body, and GetBody's
			got := make([]byte, 64)
			n, _ := hreq.Body.Read(got)
			if string(got[:n]) != string(body) {
				t.Fatalf("body %q", got[:n])
			}
			if hreq.Body, err = hreq.GetBody(); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(caller.Header, callerHeader) || *caller.URL != callerURL || !caller.Close || caller.TransferEncoding == nil {
			t.Fatal("the caller's request changed")
		}
	}
}

// TestAnswersOverTheBoundsAreMalformed: an answer larger than the provider
// reads, or a stream line longer, fails the call as malformed — with the
// length said or not, in one piece or in many — instead of growing the
// process's memory with what a broken or hostile server sends; answers
// within the bounds are read.
func TestAnswersOverTheBoundsAreMalformed(t *testing.T) {
	defer func(b int64, l int) { maxResponseBody, maxStreamLine = b, l }(maxResponseBody, maxStreamLine)
	maxResponseBody, maxStreamLine = 64<<10, 32<<10
	pad := func(n int) string { return strings.Repeat("x", n) }
	answer := func(content string) string {
		return `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` + content + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`
	}
	chunk := func(content string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":null}]}` + "\n\n"
	}
	for _, c := range []struct {
		name, body string
		stream     bool
		length     bool
		ok         bool
	}{
		{"answer within", answer(pad(60 << 10)), false, true, true},
		{"answer within, no length", answer(pad(60 << 10)), false, false, true},
		{"answer over", answer(pad(70 << 10)), false, true, false},
		{"answer over, no length", answer(pad(70 << 10)), false, false, false},
		{"stream line within", chunk(pad(30<<10)) + "data: [DONE]\n\n", true, false, true},
		{"stream line over", chunk(pad(40<<10)) + "data: [DONE]\n\n", true, false, false},
		{"endless stream line", "data: {\"choices\":[{\"delta\":{\"content\":\"" + pad(1<<20), true, false, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", map[bool]string{true: "text/event-stream", false: "application/json"}[c.stream])
			if c.length {
				w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
			}
			for b := c.body; len(b) > 0; { // in pieces of 4 KB, each flushed
				n := min(len(b), 4<<10)
				_, _ = io.WriteString(w, b[:n])
				w.(http.Flusher).Flush()
				b = b[n:]
			}
		}))
		p := NewProvider(srv.URL, "k")
		req := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}}}
		if c.stream {
			req.Stream = func(context.Context, middleware.Chunk) error { return nil }
		}
		resp, err := p.Handle(context.Background(), req)
		srv.Close()
		if c.ok && err != nil || !c.ok && !errors.Is(err, middleware.ErrMalformed) {
			t.Errorf("%s: %v, want %s", c.name, err, map[bool]string{true: "no error", false: "a malformed answer"}[c.ok])
		}
		// The provider produced the answer after its 2xx status, and
		// bills it: the Meter bills the attempt its estimate (a partial
		// answer, or an error that says the answer was billed), never $0.
		if _, billed := middleware.AnswerBilled(err); !c.ok && resp == nil && !billed {
			t.Errorf("%s: %v is not billed", c.name, err)
		}
	}
}
