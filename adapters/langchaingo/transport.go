package langchaingo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/tokenwise/tokenwise/middleware"
)

// maxErrorBody bounds how much of an error response NewTransport reads.
const maxErrorBody = 64 << 10

// NewTransport returns an [http.RoundTripper] for the HTTP client of an
// inner langchaingo model, e.g.
//
//	strong, _ := openai.New(openai.WithModel("gpt-4o"),
//		openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
//
// langchaingo's backends turn a provider's HTTP error into text and drop
// its headers. With this transport installed, the adapter sees the status,
// the provider's error type and code, and the Retry-After headers of a
// failed call, so the error it returns is a [middleware.ProviderError]
// with RetryAfter set, classified without reading error text. It only
// reads error responses (status 400 and above) of calls made through a
// [Model]; the body the client reads is unchanged. base nil means
// [http.DefaultTransport]. It is safe for concurrent use.
//
// It also checks the server-sent events of a streamed answer as the
// backend reads them: a data line that is not JSON (which langchaingo's
// openai backend would skip, returning a shortened answer as a success)
// fails the read with a [middleware.ErrMalformed] error, and a stream that
// ends without "data: [DONE]" with a [middleware.ErrStreamCut] error, so
// that the call fails (and is neither cached nor settled as complete).
func NewTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	slot, _ := req.Context().Value(failureKey{}).(*httpFailure)
	if slot == nil {
		return resp, nil
	}
	if resp.StatusCode < 400 {
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			resp.Body = &checkedStream{rc: resp.Body}
		}
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(body), resp.Body), c: resp.Body}
	if rerr != nil {
		body = nil
	}
	f := failure{status: resp.StatusCode, header: resp.Header.Clone()}
	f.typ, f.code, f.message = parseErrorBody(body)
	slot.set(f)
	return resp, nil
}

type replayBody struct {
	io.Reader
	c io.Closer
}

func (b *replayBody) Close() error { return b.c.Close() }

// parseErrorBody reads the error object of OpenAI-style bodies
// ({"error":{"message","type","code"}}), Anthropic's ({"type":"error",
// "error":{"type","message"}}) and Google's ({"error":{"code":429,
// "status":"RESOURCE_EXHAUSTED","message"}}).
func parseErrorBody(body []byte) (typ, code, message string) {
	var b struct {
		Error struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
			Status  string          `json:"status"`
		} `json:"error"`
	}
	if len(body) == 0 || json.Unmarshal(body, &b) != nil {
		return "", "", strings.TrimSpace(string(body))
	}
	typ = b.Error.Type
	if typ == "" {
		typ = b.Error.Status
	}
	var s string
	if json.Unmarshal(b.Error.Code, &s) == nil {
		code = s
	}
	return typ, code, b.Error.Message
}

type failureKey struct{}

// failure is what NewTransport saw of a failed HTTP call.
type failure struct {
	status  int
	header  http.Header
	typ     string
	code    string
	message string
}

// httpFailure is the per-call slot NewTransport fills; the last failure of
// the call wins.
type httpFailure struct {
	mu sync.Mutex
	f  *failure
}

func (h *httpFailure) set(f failure) {
	h.mu.Lock()
	h.f = &f
	h.mu.Unlock()
}

func (h *httpFailure) get() (failure, bool) {
	if h == nil {
		return failure{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return failure{}, false
	}
	return *h.f, true
}

// failureContext is the context of an inner call: its parent plus the slot
// NewTransport fills, in one allocation.
type failureContext struct {
	context.Context
	slot httpFailure
}

func (c *failureContext) Value(key any) any {
	if key == (failureKey{}) {
		return &c.slot
	}
	return c.Context.Value(key)
}

// checkedStream checks an event stream line by line as it is read.
type checkedStream struct {
	rc   io.ReadCloser
	line []byte // the current line, up to a bounded length
	over bool   // the current line is longer than the bound
	done bool   // "data: [DONE]" was read
	err  error
}

// maxCheckedLine bounds the part of a line kept for checking: a longer data
// line is checked by its prefix only (its end is not kept).
const maxCheckedLine = 1 << 20

func (s *checkedStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.rc.Read(p)
	for _, b := range p[:n] {
		if b != '\n' {
			if len(s.line) < maxCheckedLine {
				s.line = append(s.line, b)
			} else {
				s.over = true
			}
			continue
		}
		if cerr := s.check(); cerr != nil {
			s.err = cerr
			return 0, cerr
		}
	}
	if err == io.EOF {
		if len(s.line) > 0 {
			if cerr := s.check(); cerr != nil {
				s.err = cerr
				return 0, cerr
			}
		}
		if !s.done {
			s.err = &streamFault{kind: middleware.ErrStreamCut, msg: "the stream ended without [DONE]", cause: io.ErrUnexpectedEOF}
			return n, s.err
		}
	}
	return n, err
}

// check checks the line just completed.
func (s *checkedStream) check() error {
	line := bytes.TrimRight(s.line, "\r")
	over := s.over
	s.line, s.over = s.line[:0], false
	payload, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return nil
	}
	payload = bytes.TrimSpace(payload)
	switch {
	case len(payload) == 0, over:
		return nil
	case string(payload) == "[DONE]":
		s.done = true
		return nil
	case !json.Valid(payload):
		return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line is not JSON"}
	}
	return nil
}

func (s *checkedStream) Close() error { return s.rc.Close() }

// streamFault is what checkedStream fails a read with; classify makes it a
// ProviderError of its kind.
type streamFault struct {
	kind  error // middleware.ErrMalformed or middleware.ErrStreamCut
	msg   string
	cause error
}

func (e *streamFault) Error() string        { return e.kind.Error() + ": " + e.msg }
func (e *streamFault) Is(target error) bool { return target == e.kind }
func (e *streamFault) Unwrap() error        { return e.cause }
