package langchaingo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/tokenwise/tokenwise/internal/redact"
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
func NewTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	slot, _ := req.Context().Value(failureKey{}).(*httpFailure)
	if slot == nil {
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(body), resp.Body), c: resp.Body}
	if rerr != nil {
		body = nil
	}
	secrets := redact.Secrets(req.Header)
	for k, vs := range req.URL.Query() {
		if k := strings.ToLower(k); strings.Contains(k, "key") || strings.Contains(k, "token") {
			secrets = append(secrets, vs...)
		}
	}
	f := failure{status: resp.StatusCode, header: redact.Header(resp.Header, secrets...), secrets: secrets}
	f.typ, f.code, f.message = parseErrorBody(body)
	f.message = redact.Mask(f.message, secrets...)
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
	message string   // masked
	secrets []string // the request's credentials, for classify to mask
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
