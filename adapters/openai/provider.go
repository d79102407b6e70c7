package openai

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/internal/redact"
	"github.com/tokenwise/tokenwise/internal/sendtrack"
	"github.com/tokenwise/tokenwise/internal/ssesniff"
	"github.com/tokenwise/tokenwise/middleware"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// Provider is the innermost handler of a chain: it serves core requests
// with an OpenAI-compatible Chat Completions endpoint, over HTTP.
//
// It encodes the request (losslessly, see the package doc), posts it,
// decodes the answer into a [middleware.Response] and, for a streaming
// request, calls [middleware.Request.Stream] once per chunk. It always asks
// for usage on streams. Failures are [*middleware.ProviderError]s; see the
// package doc for the error kinds and for the partial response returned
// with a failure after the first chunk.
//
// A Provider is safe for concurrent use.
type Provider struct {
	cfg    config
	url    string // the chat completions endpoint; "" in a Transport
	apiKey string
	// noUsage holds the endpoints (scheme, host and path) that refused a
	// stream's stream_options (Azure OpenAI before api-version
	// 2024-09-01-preview): their streams are sent without it. anyNoUsage
	// is set once it holds one (no lookup until then).
	noUsage    sync.Map
	anyNoUsage atomic.Bool
	// noCompletionCap holds the endpoints (with their query: an Azure
	// api-version) that refused an injected max_completion_tokens (Azure
	// OpenAI's "Unrecognized request argument supplied"): a cap the chain
	// sets goes to them as max_tokens. anyNoCompletionCap says whether
	// there is any.
	noCompletionCap    sync.Map
	anyNoCompletionCap atomic.Bool
}

var _ middleware.Handler = (*Provider)(nil)

// NewProvider returns a Provider for the OpenAI-compatible API at baseURL
// (e.g. "https://api.openai.com/v1"; requests go to baseURL +
// "/chat/completions", a query of baseURL — an Azure deployment's
// ?api-version= — kept after the path), authenticating with apiKey as a bearer token when
// it is not empty.
func NewProvider(baseURL, apiKey string, opts ...Option) *Provider {
	return &Provider{
		cfg:    newConfig(opts),
		url:    chatURL(baseURL),
		apiKey: apiKey,
	}
}

const chatSuffix = "/chat/completions"

// chatURL is the chat completions URL of the API at baseURL: its path
// with chatSuffix, its query (an Azure deployment's api-version) kept
// after it.
func chatURL(baseURL string) string {
	base, query, ok := strings.Cut(baseURL, "?")
	if !ok {
		return strings.TrimRight(baseURL, "/") + chatSuffix
	}
	return strings.TrimRight(base, "/") + chatSuffix + "?" + query
}

// callKey keys the *call of a request that came through a Transport.
type callKey struct{}

// call is one request intercepted by a Transport: its provider sends the
// chain's request to the original URL with the original headers.
type call struct {
	owner *Provider
	req   *http.Request
	model string // the model of the caller's request

	mu     sync.Mutex
	header http.Header // the last upstream response's headers

	// tries counts the provider's attempts at the call: more than one
	// when the chain retried it, fell back or hedged.
	tries atomic.Int32

	// more is set by the provider while it hands a chunk to the chain
	// when the next event is already read from the network (complete in
	// its buffer): the transport's writer may then hold the chunk's
	// events back and hand them to the caller with the next chunk's, one
	// Read for several chunks, without delaying any of them behind a
	// network wait.
	more atomic.Bool
}

func (c *call) setHeader(h http.Header) {
	c.mu.Lock()
	c.header = h
	c.mu.Unlock()
}

func (c *call) upstreamHeader() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.header
}

// takeHeader returns the last upstream response's headers and forgets
// them: the caller owns the map (a call's chain is over, and the provider
// keeps nothing of a response it has read).
func (c *call) takeHeader() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.header
	c.header = nil
	return h
}

// Handle serves req upstream. A failure's message, body and headers are
// masked (see [redactError]) before the error leaves the Provider.
func (p *Provider) Handle(ctx context.Context, req *middleware.Request) (_ *middleware.Response, err error) {
	if ctx.Err() != nil {
		return nil, &middleware.NotSentError{Err: ctxError(ctx)}
	}
	c, _ := ctx.Value(callKey{}).(*call)
	if c != nil && c.owner != p {
		c = nil // a call of another Transport: not ours to redirect
	}
	if c != nil {
		c.tries.Add(1)
	}
	stream := req.Stream != nil
	enc := p.cfg.enc
	var hreq *http.Request
	var hresp *http.Response
	defer func() {
		if err != nil && hreq != nil {
			err = p.redactError(err, hreq)
		}
	}()
	for {
		body := encodeRequestBody(req, enc)
		var sent *sendtrack.Tracker
		if hreq, sent, err = p.newRequest(ctx, c, body, stream, req.Model); err != nil {
			return nil, err
		}
		asked := stream && !enc.noStreamUsage
		if asked && p.anyNoUsage.Load() {
			if _, refused := p.noUsage.Load(endpointOf(hreq)); refused {
				enc.noStreamUsage = true
				continue
			}
		}
		capped := injectsMaxCompletion(req, enc)
		if capped && p.anyNoCompletionCap.Load() {
			if _, refused := p.noCompletionCap.Load(capEndpointOf(hreq)); refused {
				enc.legacyMaxTokens = true
				continue
			}
		}
		hresp, err = p.cfg.base.RoundTrip(hreq)
		if err == nil {
			hreq, hresp, err = p.follow(hreq, hresp)
		}
		if err != nil {
			if ctx.Err() != nil {
				if !sent.Sent() {
					// Ended while connecting or before the body was
					// written: the provider never had the request.
					return nil, &middleware.NotSentError{Err: ctxError(ctx)}
				}
				return nil, ctxError(ctx)
			}
			return nil, p.fail(middleware.ErrNetwork, req, "", err)
		}
		if capped && refusesCompletionCap(hresp) {
			// A server that does not know max_completion_tokens (Azure
			// OpenAI before its newer api-versions) refused the cap the
			// chain set: the call goes again with max_tokens, and so do
			// the endpoint's later capped calls.
			hresp.Body.Close()
			p.noCompletionCap.Store(capEndpointOf(hreq), true)
			p.anyNoCompletionCap.Store(true)
			enc.legacyMaxTokens = true
			continue
		}
		if !asked || !refusesStreamOptions(hresp) {
			break
		}
		// A server that does not know stream_options (which the stream
		// was sent with to learn its usage) refused it: the stream goes
		// again without it, as the caller wrote it, and so do the
		// endpoint's later streams. Their usage is then estimated, as
		// that of any stream that reports none.
		hresp.Body.Close()
		p.noUsage.Store(endpointOf(hreq), true)
		p.anyNoUsage.Store(true)
		enc.noStreamUsage = true
	}
	defer hresp.Body.Close()
	if middleware.Observing(ctx) {
		// Rate limits learn from the provider's own account of its limits.
		if l, ok := httperr.ParseRateLimitHeaders(hresp.Header, hresp.StatusCode, time.Now()); ok {
			l.Model = req.Model
			middleware.Emit(ctx, l)
		}
	}
	// The headers go to the call last: once there, the Transport may take
	// the map (call.takeHeader) and nothing here reads it again.
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		err := p.statusError(ctx, req, hresp)
		if c != nil {
			c.setHeader(hresp.Header)
		}
		return nil, err
	}
	sse := stream && !strings.HasPrefix(hresp.Header.Get("Content-Type"), "application/json")
	if c != nil {
		c.setHeader(hresp.Header)
	}
	if stream && !sse {
		// A stream labelled application/json (a mislabelling proxy or
		// server): go-openai reads the body as events whatever its type,
		// and so does the provider when the body begins as an event
		// stream does. An answer in one piece is read as such.
		br := bufio.NewReader(hresp.Body)
		sse = ssesniff.Sniff(br)
		hresp.Body = struct {
			io.Reader
			io.Closer
		}{br, hresp.Body}
	}
	if sse {
		return p.readStreamOf(ctx, req, hresp.Body, c)
	}
	data, err := readResponseBody(hresp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		if err == errResponseTooLarge {
			// Produced after a 2xx status, and billed: the attempt is
			// billed its estimated input (its output, unread, is not
			// counted).
			return nil, p.fail(middleware.ErrMalformed, req, "", &middleware.AnswerMalformedError{StatusCode: hresp.StatusCode, Err: err})
		}
		// The provider answered 2xx and the body was lost mid-read: it
		// produced the answer, and bills it (the Meter and the budget
		// bill the attempt an estimate).
		return nil, p.fail(middleware.ErrNetwork, req, "reading the response",
			&middleware.AnswerCutError{StatusCode: hresp.StatusCode, Read: int64(len(data)), Err: err})
	}
	resp, apiErr, err := decodeResponse(data)
	switch {
	case apiErr != nil:
		return nil, p.embeddedError(req, apiErr)
	case err != nil:
		// A whole answer the provider produced, and bills: the Meter and
		// the budget bill the attempt the usage it counts (an answer
		// without choices, returned with the error), else its estimated
		// input.
		msg := ""
		if strings.HasPrefix(hresp.Header.Get("Content-Type"), "text/event-stream") {
			// What went wrong, for a call that asked for no stream.
			msg = "the server answered with an event stream (Content-Type: text/event-stream), not the JSON answer the call asked for"
		}
		cause := &middleware.AnswerMalformedError{StatusCode: hresp.StatusCode, Err: err}
		if resp != nil {
			// The cause carries the usage too, for a caller that gets the
			// error alone (the Transport's: twlc.NewTransport over it).
			cause.Model, cause.Usage = resp.Model, resp.Usage
		}
		return resp, p.fail(middleware.ErrMalformed, req, msg, cause)
	case resp.FinishReason == "error":
		// OpenRouter's finish_reason for a provider that failed
		// mid-answer: a failure, returned with the answer, whose usage
		// the Meter bills.
		return resp, p.embeddedError(req, &apiError{Message: `the answer finished with finish_reason "error"`})
	}
	if stream { // the upstream answered a streaming request in one piece
		if err := middleware.Replay(ctx, resp, 0, req.Stream); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// endpointOf names the endpoint hreq is sent to.
func endpointOf(hreq *http.Request) string {
	return hreq.URL.Scheme + "://" + hreq.URL.Host + hreq.URL.Path
}

// refusesStreamOptions reports whether hresp refuses a request for its
// stream_options member: a 400 or 422 whose error names it. The body is
// peeked at (up to maxErrorBody) and put back.
func refusesStreamOptions(hresp *http.Response) bool {
	body, ok := peekRefusal(hresp)
	return ok && bytes.Contains(body, []byte("stream_options"))
}

// refusesCompletionCap reports whether hresp refuses a request for its
// max_completion_tokens member as one the server does not know: a 400 or
// 422 whose error names the member as unrecognized, unknown, unsupported
// or an extra input (not one that says its value is too large). The body
// is peeked at and put back.
func refusesCompletionCap(hresp *http.Response) bool {
	body, ok := peekRefusal(hresp)
	if !ok || !bytes.Contains(body, []byte("max_completion_tokens")) {
		return false
	}
	lower := bytes.ToLower(body)
	for _, w := range []string{"unrecognized", "unknown", "unsupported", "not supported", "extra inputs", "not permitted"} {
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	return false
}

// peekRefusal returns the body of hresp when it is a 400 or 422, read up
// to maxErrorBody and put back for whoever reads it next.
func peekRefusal(hresp *http.Response) ([]byte, bool) {
	if hresp.StatusCode != http.StatusBadRequest && hresp.StatusCode != http.StatusUnprocessableEntity {
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(hresp.Body, maxErrorBody))
	hresp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), hresp.Body), hresp.Body}
	return body, err == nil
}

// capEndpointOf names the endpoint hreq is sent to with its query (an
// Azure api-version decides which members the endpoint knows).
func capEndpointOf(hreq *http.Request) string {
	return endpointOf(hreq) + "?" + hreq.URL.RawQuery
}

// readerSent is what newRequest allocates for a request: its tracker and
// the reader of a body in one piece.
type readerSent struct {
	sent sendtrack.Tracker
	r    bytes.Reader
}

func (p *Provider) newRequest(ctx context.Context, c *call, body wireBody, stream bool, model string) (*http.Request, *sendtrack.Tracker, error) {
	// sent records that the base transport wrote the request whole: a
	// call that ends before never reached the provider
	// (middleware.NotSentError). net/http's Transport sends a body it
	// knows to be in memory with its headers, in one write, which a
	// wrapper would cost: it is told by the Transport's trace instead.
	// The tracker and, of a body in one piece, its reader, in one
	// allocation.
	rs := &readerSent{}
	sent := &rs.sent
	r := body.readerIn(p.cfg.join, &rs.r)
	_, mem := r.(*bytes.Reader)
	traced := mem && p.cfg.netHTTP
	if traced {
		ctx = sent.Context(ctx)
	}
	accept := "application/json"
	if stream {
		accept = "text/event-stream"
	}
	var hreq *http.Request
	if c != nil {
		// A shallow copy: the URL and the other members are only read,
		// by this package and by the base transport (a RoundTripper does
		// not modify its request), and the caller leaves them alone until
		// it closes the response body (as http.RoundTripper asks).
		hreq = c.req.WithContext(ctx)
		hreq.Method = http.MethodPost
		hreq.TransferEncoding = nil
		hreq.Close = false
		hreq.Header = p.upstreamHeader(c.req.Header, accept)
		if p.cfg.route != nil {
			if u, h, ok := p.cfg.route(model); ok {
				routeTo(hreq, u, h)
			}
		}
		if model != c.model && hreq.URL == c.req.URL {
			// Moved to another model (a route, a fallback) on the
			// caller's URL: an Azure deployment's URL names the model
			// that serves the call, whatever the body says.
			u, err := deploymentURL(c.req.URL, c.model, model)
			if err != nil {
				return nil, nil, &middleware.NotSentError{Err: &middleware.ProviderError{Kind: middleware.ErrBadRequest,
					Provider: p.cfg.name, Model: model, Message: err.Error()}}
			}
			if u != nil {
				hreq.URL = u
			}
		}
	} else {
		if p.url == chatSuffix {
			return nil, nil, errors.New("tokenwise/openai: Provider has no base URL")
		}
		var err error
		hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, p.url, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("tokenwise/openai: %w", redact.Error(err, p.apiKey)) // the URL may hold a key
		}
		if p.apiKey != "" {
			hreq.Header.Set("Authorization", "Bearer "+p.apiKey)
		}
	}
	if traced {
		hreq.Body = io.NopCloser(r)
		hreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body.reader(p.cfg.join)), nil }
	} else {
		hreq.Body = sent.Body(io.NopCloser(r), int64(body.n))
		hreq.GetBody = func() (io.ReadCloser, error) {
			return sent.Body(io.NopCloser(body.reader(p.cfg.join)), int64(body.n)), nil
		}
	}
	hreq.ContentLength = int64(body.n)
	if c == nil {
		setHeader(hreq.Header, "Content-Type", "application/json")
		setHeader(hreq.Header, "Accept", accept)
		for k, v := range p.cfg.header {
			hreq.Header[k] = append([]string(nil), v...)
		}
	}
	return hreq, sent, nil
}

// routeTo sends hreq (the Provider's own copy of the caller's request) to
// u with the headers of h set, and those of h without a value removed
// (WithUpstream): the header map is replaced, not modified (it may be the
// caller's), and only when a header differs.
func routeTo(hreq *http.Request, u *url.URL, h http.Header) {
	if u != nil {
		hreq.URL, hreq.Host = u, ""
	}
	cloned := false
	for k, v := range h {
		if cur, ok := hreq.Header[k]; len(v) == 0 && !ok || len(v) > 0 && slices.Equal(cur, v) {
			continue
		}
		if !cloned {
			hreq.Header, cloned = hreq.Header.Clone(), true
			if hreq.Header == nil {
				hreq.Header = http.Header{}
			}
		}
		if len(v) == 0 {
			delete(hreq.Header, k) // a header this upstream must not get (another's key)
		} else {
			hreq.Header[k] = v
		}
	}
}

// upstreamHeader returns the headers to send a caller's request upstream
// with: the caller's, without Content-Length and Accept-Encoding (the
// base transport negotiates compression: the body is decoded here), with
// Content-Type JSON, Accept accept, and the Provider's own headers. It is
// the caller's map itself, unchanged, when that already says so (as
// go-openai's does): the upstream request only reads it.
func (p *Provider) upstreamHeader(h http.Header, accept string) http.Header {
	if h != nil && len(p.cfg.header) == 0 && onlyValue(h, "Content-Type", "application/json") && onlyValue(h, "Accept", accept) {
		_, length := h["Content-Length"]
		_, encoding := h["Accept-Encoding"]
		if !length && !encoding {
			return h
		}
	}
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	delete(h, "Content-Length")
	delete(h, "Accept-Encoding")
	setHeader(h, "Content-Type", "application/json")
	setHeader(h, "Accept", accept)
	for k, v := range p.cfg.header {
		h[k] = append([]string(nil), v...)
	}
	return h
}

// onlyValue reports whether h has v as the one value of the canonical key k.
func onlyValue(h http.Header, k, v string) bool {
	old := h[k]
	return len(old) == 1 && old[0] == v
}

// setHeader sets the canonical key k of h to v alone, unless it is so
// already (as the caller's request usually has it: no new slice then).
func setHeader(h http.Header, k, v string) {
	if onlyValue(h, k, v) {
		return
	}
	h[k] = []string{v}
}

// The bounds of what the provider reads of an answer: a server that sends
// more (a broken or hostile one, an endless line) fails the call as
// malformed instead of growing the process's memory without end. Far
// above any real answer (a chat completion with n choices and their
// logprobs is megabytes; a stream's chunk, kilobytes). Variables for the
// tests.
var (
	maxResponseBody int64 = 256 << 20
	maxStreamLine         = 64 << 20
)

var (
	errResponseTooLarge = errors.New("the answer is larger than the provider reads (256 MiB)")
	errStreamLineLong   = errors.New("a line of the stream is longer than the provider reads (64 MiB)")
)

// readResponseBody reads a response's body, in one allocation when its
// length is known (and believable: a body longer than it says is still
// read whole). On a failure to read, data is what was read before it
// (errResponseTooLarge: nil).
func readResponseBody(hresp *http.Response) ([]byte, error) {
	n := hresp.ContentLength
	if n > maxResponseBody {
		return nil, errResponseTooLarge
	}
	if n <= 0 || n > 64<<20 {
		data, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBody+1))
		if err == nil && int64(len(data)) > maxResponseBody {
			return nil, errResponseTooLarge
		}
		return data, err
	}
	data := make([]byte, n, n+1) // one spare byte: EOF is seen without growing
	if k, err := io.ReadFull(hresp.Body, data); err != nil {
		return data[:k], err
	}
	var one [1]byte
	for {
		k, err := hresp.Body.Read(one[:])
		switch {
		case k > 0:
			rest, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBody-n))
			if err != nil {
				return append(append(data, one[0]), rest...), err
			}
			if n+1+int64(len(rest)) > maxResponseBody {
				return nil, errResponseTooLarge
			}
			return append(append(data, one[0]), rest...), nil
		case err == io.EOF:
			return data, nil
		case err != nil:
			return data, err
		}
	}
}

// fail returns a ProviderError of kind without an HTTP status.
func (p *Provider) fail(kind error, req *middleware.Request, msg string, err error) *middleware.ProviderError {
	return &middleware.ProviderError{Kind: kind, Provider: p.cfg.name, Model: req.Model, Message: msg, Err: err}
}

// statusError classifies a non-2xx answer.
func (p *Provider) statusError(ctx context.Context, req *middleware.Request, hresp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(hresp.Body, maxErrorBody))
	if err != nil && ctx.Err() != nil {
		return ctxError(ctx)
	}
	he := &HTTPError{StatusCode: hresp.StatusCode, Header: hresp.Header.Clone(), Body: body}
	pe := &middleware.ProviderError{
		Provider:   p.cfg.name,
		Model:      req.Model,
		StatusCode: hresp.StatusCode,
		RetryAfter: httperr.ParseRetryAfter(hresp.Header, time.Now()),
		Err:        he,
	}
	if pe.RetryAfter == 0 {
		pe.RetryAfter = httperr.BodyRetryDelay(body) // Gemini's RetryInfo
	}
	if e := decodeError(body); e != nil {
		pe.Message, pe.Type, pe.Code, pe.Param, he.Param = e.Message, e.Type, e.Code, e.Param, e.Param
	}
	pe.Kind = httperr.Classify(hresp.StatusCode, pe.Code, pe.Type)
	return pe
}

// redactError masks the credentials in a failure the provider built: its
// message, code, type, and its cause — the body and headers of an
// *HTTPError, the text of any other cause (a network error may quote a URL
// with a key in its query). What is looked for: the request's own
// credentials (the Provider's key, or the Authorization and API-key headers
// and key query values of the caller's request) and key-shaped strings, as
// internal/redact documents. A *ProviderError is changed in place (it was
// made by this call); other errors come from the chain and pass unchanged.
func (p *Provider) redactError(err error, hreq *http.Request) error {
	var pe *middleware.ProviderError
	if !errors.As(err, &pe) {
		return err
	}
	secrets := redact.Secrets(hreq.Header)
	if p.apiKey != "" {
		secrets = append(secrets, p.apiKey)
	}
	for k, vs := range hreq.URL.Query() {
		if k := strings.ToLower(k); strings.Contains(k, "key") || strings.Contains(k, "token") {
			secrets = append(secrets, vs...)
		}
	}
	pe.Message = redact.Mask(pe.Message, secrets...)
	pe.Code = redact.Mask(pe.Code, secrets...)
	pe.Type = redact.Mask(pe.Type, secrets...)
	pe.Param = redact.Mask(pe.Param, secrets...)
	var he *HTTPError
	if errors.As(pe.Err, &he) {
		he.Body = redact.Bytes(he.Body, secrets...)
		he.Header = redact.Header(he.Header, secrets...)
		he.Param = redact.Mask(he.Param, secrets...)
	} else {
		pe.Err = redact.Error(pe.Err, secrets...)
	}
	return err
}

// embeddedError classifies an error object found in a 2xx body or in a
// stream's data: there is no HTTP status, so the error type stands for it.
func (p *Provider) embeddedError(req *middleware.Request, e *apiError) error {
	status := httperr.EmbeddedStatus(e.Code, e.Type)
	return &middleware.ProviderError{
		Kind:     httperr.Classify(status, e.Code, e.Type),
		Provider: p.cfg.name,
		Model:    req.Model,
		Type:     e.Type,
		Code:     e.Code,
		Param:    e.Param,
		Message:  e.Message,
	}
}

// readStream reads server-sent events until "data: [DONE]", passing each
// chunk to req.Stream. After the first chunk every return carries the
// partial response assembled so far.
func (p *Provider) readStream(ctx context.Context, req *middleware.Request, body io.Reader) (*middleware.Response, error) {
	return p.readStreamOf(ctx, req, body, nil)
}

// readStreamOf is readStream for the call of a Transport (nil: none),
// whose more flag it keeps (see call.more).
func (p *Provider) readStreamOf(ctx context.Context, req *middleware.Request, body io.Reader, call *call) (*middleware.Response, error) {
	br := bufio.NewReaderSize(body, 8<<10)
	var (
		mem      chunkArena
		acc      middleware.Accumulator
		meta     chunkMeta
		haveMeta bool
		long     []byte
		keep     = middleware.KeepNative(ctx)
		merged   streamedBody // the response's Native, merged as chunks arrive
		pc       plainChunk
		tmpl     chunkTemplate
		done     bool
		readErr  error
		// carried: a chunk carried something (a choice's delta member
		// other than its role, logprobs, a finish reason, usage).
		carried bool
	)
	// A byte order mark before the first line (.NET's StreamWriter with
	// Encoding.UTF8 writes one) is not part of it, as the SSE spec says.
	if b, _ := br.Peek(len(utf8BOM)); string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	r := getReader(nil)
	defer putReader(r)
	if keep {
		merged.merged = new(merger)
		r.plain = &pc
		defer func() { r.plain = nil }()
	}
	r.collectOthers = true // the choices after the first, for an estimate of a cut stream's output
	var tier string        // the last service_tier a chunk named
	partial := func() *middleware.Response {
		resp := acc.Response()
		resp.ID, resp.Model = meta.id, meta.model
		if resp.Usage.IsZero() || !done {
			// Estimated (a stream without usage, or one cut after a
			// usage that may lag behind it): every choice's output
			// counts.
			resp.OtherChoices = r.others.choices()
		}
		if !resp.Usage.IsZero() && resp.Usage.ServiceTier == "" {
			// The tier the provider billed the stream at, also when its
			// usage chunk does not repeat it.
			resp.Usage.ServiceTier = tier
		}
		return resp
	}
	for !done && readErr == nil {
		var line []byte
		line, long, readErr = readLine(br, long[:0])
		if bytes.IndexByte(line, '\r') >= 0 {
			// A CR inside a line is whitespace to the JSON decoder, but
			// ends a line for a client reading events as the SSE spec
			// says: a chunk passed on as it came would reach it cut in
			// two. (Inside a string a CR is invalid JSON.)
			line = bytes.ReplaceAll(line, []byte{'\r'}, []byte{' '})
		}
		payload, ok := dataPayload(line)
		if !ok {
			continue
		}
		if string(payload) == "[DONE]" {
			done = true
			break
		}
		var (
			data   []byte
			c      middleware.Chunk
			m      chunkMeta
			apiErr *apiError
			err    error
			same   bool
		)
		if haveMeta { // the template's chunk carries no meta
			c, pc, same = tmpl.match(&mem, payload)
		}
		if same {
			data = c.Native.(*Wire).JSON
		} else {
			data = mem.copy(payload) // Native must outlive the reader's buffer
			// The meta comes from the first chunks that carry it (Azure's
			// first chunk, its prompt filter results, has none).
			w := mem.wire()
			c, m, apiErr, err = r.chunk(w, data, !haveMeta)
			switch {
			case apiErr != nil:
				return partial(), p.embeddedError(req, apiErr)
			case errors.Is(err, errNoChoices):
				// An event of no choices and no usage (a server's
				// metadata or keep-alive object): go-openai hands it to
				// its caller as an empty chunk; there is nothing in it
				// to pass on.
				continue
			case err != nil && readErr != nil:
				// The connection ended inside this line (no line break
				// after it): the chunk was cut, not malformed. The cut is
				// reported below, as any other (retried before a chunk
				// reached the caller); an unterminated event is dropped,
				// as the SSE spec says.
				continue
			case err != nil:
				return partial(), p.fail(middleware.ErrMalformed, req, fmt.Sprintf("chunk %d", acc.Chunks()+1), err)
			}
			if haveMeta && m.choices <= 1 {
				// (A chunk of several choices is no template: its other
				// choices would be taken as the same in every match.)
				tmpl.learn(data, &c, &w.chunk, &pc)
			}
			tier = cmp.Or(m.tier, tier)
		}
		if c.FinishReason == "error" {
			// OpenRouter's failure of the provider behind it, when it
			// sends no error object with it (the langchaingo adapter
			// reads it so too): a failure, never a finished answer.
			return partial(), p.embeddedError(req, &apiError{Message: `the stream finished with finish_reason "error"`})
		}
		if !haveMeta {
			meta.id, meta.model, meta.created = cmp.Or(meta.id, m.id), cmp.Or(meta.model, m.model), cmp.Or(meta.created, m.created)
			haveMeta = meta.id != "" && meta.model != "" && meta.created != 0
		}
		acc.Add(c)
		if !carried && c.Content == "" && c.Reasoning == "" && c.Refusal == "" && len(c.ToolCalls) == 0 && c.FinishReason == "" && c.Usage == nil {
			// A chunk the accumulator reads nothing of may still carry a
			// member it does not model: an audio part, a legacy
			// function_call, logprobs, another choice's text.
			carried = chunkCarries(data)
		} else {
			carried = true
		}
		if keep && merged.mergeErr == nil {
			merged.size += len(data)
			if pc.ok {
				merged.merged.plain(&c, m, &pc)
			} else {
				r.src, r.pos, r.stack, r.err = data, 0, r.stack[:0], nil
				merged.mergeErr = merged.merged.chunk(r)
			}
		}
		if call != nil {
			call.more.Store(nextEventBuffered(br))
		}
		err = req.Stream(ctx, c)
		if call != nil {
			call.more.Store(false)
		}
		if err != nil {
			return partial(), err
		}
	}
	if !done && readErr == io.EOF && ctx.Err() == nil && completeWithoutDone(req, &acc) {
		// Servers that never send [DONE] (some llama.cpp forks, older
		// TGI and text-generation-webui) end a finished stream by closing
		// it: a clean end after the choice's finish_reason is the end the
		// official SDKs and go-openai read; a stream closed before it is
		// still cut.
		done = true
		if _, ok := acc.Usage(); !ok {
			// Nor did the usage chunk the stream was asked for come: it
			// may have been cut just before it. The answer is whole to
			// this call, but not kept by a cache (a hit would have no
			// usage).
			middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
				f.Unkeepable = "the stream ended without [DONE] and without its usage"
			})
		}
	}
	if errors.Is(readErr, errStreamLineLong) {
		return partial(), p.fail(middleware.ErrMalformed, req, "", readErr)
	}
	if !done {
		if ctx.Err() != nil {
			return partial(), ctxError(ctx)
		}
		pe := p.fail(middleware.ErrStreamCut, req, fmt.Sprintf("stream ended after %d chunks without [DONE]", acc.Chunks()), readErr)
		if readErr == io.EOF {
			pe.Err = nil
		}
		return partial(), pe
	}
	if acc.Chunks() == 0 {
		return partial(), p.fail(middleware.ErrMalformed, req, "stream has no chunks", nil)
	}
	resp := partial()
	if !carried && carriesNothing(resp) {
		// Chunks of no choices or empty deltas, then [DONE]: no text, tool
		// call, finish reason or usage. It is no answer, as a whole body
		// without choices is none (the answer the provider produced, and
		// bills its input, was malformed), never an empty success.
		return resp, p.fail(middleware.ErrMalformed, req, fmt.Sprintf("stream of %d chunks carried no answer (no content, tool call, finish reason or usage)", acc.Chunks()),
			&middleware.AnswerMalformedError{StatusCode: http.StatusOK, Err: errEmptyStream})
	}
	if keep {
		resp.Native = &merged
	}
	return resp, nil
}

// errEmptyStream is what is wrong with a stream whose chunks carried
// nothing (carriesNothing).
var errEmptyStream = errors.New("the stream's chunks carried no answer")

// chunkCarries reports whether data, a chunk's JSON, carries anything of
// an answer: a choice whose delta has a member other than its role whose
// value is not empty ("", null, [] or {}), a choice's logprobs or finish
// reason, or usage.
func chunkCarries(data []byte) bool {
	var c struct {
		Choices []struct {
			Delta        map[string]json.RawMessage `json:"delta"`
			Logprobs     json.RawMessage            `json:"logprobs"`
			FinishReason json.RawMessage            `json:"finish_reason"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil {
		return false
	}
	for _, ch := range c.Choices {
		if !emptyJSON(ch.Logprobs) || !emptyJSON(ch.FinishReason) {
			return true
		}
		for k, v := range ch.Delta {
			if k != "role" && !emptyJSON(v) {
				return true
			}
		}
	}
	return !emptyJSON(c.Usage)
}

// emptyJSON reports whether v is absent or an empty value: null, "", [] or
// {} (with any white space).
func emptyJSON(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	switch len(v) {
	case 0:
		return true
	case 2:
		return string(v) == `""` || string(v) == "[]" || string(v) == "{}"
	}
	if string(v) == "null" {
		return true
	}
	if v[0] == '[' || v[0] == '{' {
		var inner []json.RawMessage
		if json.Unmarshal(v, &inner) == nil {
			return len(inner) == 0
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) == nil {
			return len(m) == 0
		}
	}
	return false
}

// carriesNothing reports whether resp, a stream's answer, got nothing from
// its chunks: no content, reasoning, refusal, tool or function call, part
// (audio), finish reason or usage in any choice.
func carriesNothing(resp *middleware.Response) bool {
	m := &resp.Message
	return m.Content == "" && m.Reasoning == "" && resp.Refusal == "" && m.Refusal == "" && len(m.ToolCalls) == 0 && m.FunctionCall == nil &&
		len(m.Parts) == 0 && resp.FinishReason == "" &&
		resp.Usage.IsZero() && len(resp.OtherChoices) == 0
}

// completeWithoutDone reports whether a stream that ended cleanly without
// [DONE] had finished: it carried chunks and its choice's finish_reason,
// for a request of one choice (with n > 1 the other choices' ends are not
// tracked: such a stream needs its [DONE]).
func completeWithoutDone(req *middleware.Request, acc *middleware.Accumulator) bool {
	return req.N <= 1 && acc.Chunks() > 0 && acc.FinishReason() != ""
}

// chunkArena hands out the memory of a stream's chunks (their JSON and
// their Wire) from blocks, to spare one allocation per chunk. Blocks are
// never reused: what a chunk references stays valid and unchanged for as
// long as anyone holds the chunk.
type chunkArena struct {
	data  []byte
	wires []Wire
}

func (a *chunkArena) copy(b []byte) []byte {
	if len(b) > 2<<10 {
		return bytes.Clone(b)
	}
	if cap(a.data)-len(a.data) < len(b) {
		a.data = make([]byte, 0, 16<<10)
	}
	n := len(a.data)
	a.data = append(a.data, b...)
	return a.data[n:len(a.data):len(a.data)]
}

func (a *chunkArena) wire() *Wire {
	if len(a.wires) == 0 {
		a.wires = make([]Wire, 32)
	}
	w := &a.wires[0]
	a.wires = a.wires[1:]
	return w
}

// nextEventBuffered reports whether br holds, complete, the next line that
// is not blank and it is a data line: reading the next event then does not
// wait for the network.
func nextEventBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered()) // never fails: no more than is buffered
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return len(b) > 5 && string(b[:5]) == "data:" && bytes.IndexByte(b, '\n') >= 0
}

// utf8BOM is the UTF-8 encoding of the byte order mark, U+FEFF.
const utf8BOM = ssesniff.BOM

// readLine reads one line without its line ending. Lines longer than the
// reader's buffer are gathered in long, which is returned for reuse.
func readLine(br *bufio.Reader, long []byte) (line, buf []byte, err error) {
	line, err = br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long = append(long, line...)
		for err == bufio.ErrBufferFull {
			if len(long) > maxStreamLine {
				return nil, long[:0], errStreamLineLong
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	for n := len(line); n > 0 && (line[n-1] == '\n' || line[n-1] == '\r'); n-- {
		line = line[:n-1]
	}
	return line, long, err
}

// dataPayload returns the payload of an SSE "data:" line. Every data line
// is one event, as OpenAI sends them (and as go-openai reads them). A data
// line indented by white space is one too: go-openai trims each line
// before it looks for "data:" (the SSE spec would take " data" for another
// field, and drop the event: a different answer, silently).
func dataPayload(line []byte) ([]byte, bool) {
	if len(line) < 5 || string(line[:5]) != "data:" {
		if len(line) == 0 || line[0] != ' ' && line[0] != '\t' && line[0] != '\v' && line[0] != '\f' && line[0] < utf8.RuneSelf {
			return nil, false
		}
		if line = bytes.TrimLeftFunc(line, unicode.IsSpace); len(line) < 5 || string(line[:5]) != "data:" {
			return nil, false
		}
	}
	rest := line[5:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	for n := len(rest); n > 0 && (rest[n-1] == ' ' || rest[n-1] == '\t'); n-- {
		rest = rest[:n-1]
	}
	return rest, len(rest) > 0
}

// ctxError returns the error of a done context so that it matches both
// ctx.Err() (context.Canceled or context.DeadlineExceeded) and its cause.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	cause := context.Cause(ctx)
	switch {
	case cause == nil || cause == err:
		return err
	case errors.Is(cause, err):
		return cause
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// HTTPError is the cause ([middleware.ProviderError].Err) of a failure the
// upstream answered with an HTTP error status: the response as received,
// which a [Transport] gives back to its caller unchanged.
type HTTPError struct {
	StatusCode int
	Header     http.Header
	Body       []byte // at most 1 MiB of it
	Param      string // the error object's "param", e.g. "messages"
}

func (e *HTTPError) Error() string {
	body := e.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, bytes.TrimSpace(body))
}

// maxRedirects is how many redirects a call follows (as net/http's
// client).
const maxRedirects = 10

// follow follows the provider's 307 and 308 redirects to the same host
// (another path, http to https), as net/http's client follows them for a
// bare go-openai client: the same method, body and headers. Another
// status, a redirect to another host (which the upstream's key is not
// sent to), or one past maxRedirects is answered as it came. It returns
// the request that got the answer.
func (p *Provider) follow(hreq *http.Request, hresp *http.Response) (*http.Request, *http.Response, error) {
	for hops := 0; hops < maxRedirects; hops++ {
		if hresp.StatusCode != http.StatusTemporaryRedirect && hresp.StatusCode != http.StatusPermanentRedirect {
			break
		}
		loc := hresp.Header.Get("Location")
		if loc == "" || hreq.GetBody == nil {
			break
		}
		u, err := hreq.URL.Parse(loc)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Hostname(), hreq.URL.Hostname()) {
			break
		}
		body, err := hreq.GetBody()
		if err != nil {
			break
		}
		next := hreq.Clone(hreq.Context())
		next.URL, next.Host, next.Body = u, "", body
		_, _ = io.Copy(io.Discard, io.LimitReader(hresp.Body, 4<<10)) // the connection kept for reuse
		hresp.Body.Close()
		r, err := p.cfg.base.RoundTrip(next)
		if err != nil {
			return next, nil, err
		}
		hreq, hresp = next, r
	}
	return hreq, hresp, nil
}

// azureDeployments precedes the deployment's name in an Azure OpenAI URL.
const azureDeployments = "/openai/deployments/"

// deploymentURL returns u with the Azure OpenAI deployment it names
// (".../openai/deployments/{name}/chat/completions") moved from the
// deployment of model from to that of model to, or nil when u names no
// deployment. Azure serves a call by the deployment its URL names,
// whatever the body's "model": a call the chain moved to another model
// must go to that model's deployment. A deployment named as its model, or
// as go-openai's Azure client names it (DefaultAzureConfig: without ":",
// and without "." for a 3.5 model, gpt-35-turbo), has its twin named the
// same way; one named otherwise names no other model's, an error: the call
// is not sent to a deployment that would serve another model than the one
// policed and billed.
func deploymentURL(u *url.URL, from, to string) (*url.URL, error) {
	start, n := deploymentAt(u)
	if n <= 0 {
		return nil, nil
	}
	dep := u.Path[start : start+n]
	name := twinDeployment(dep, from, to)
	if name == "" {
		return nil, fmt.Errorf("tokenwise/openai: the chain moved the call from model %q to %q, but the request's URL names the Azure deployment %q, "+
			"which is not named as %q: %q's deployment is unknown, and Azure would serve the call by %q; not sent "+
			"(name each deployment as its model, as go-openai's Azure client does, or route a deployment's calls to no other model)", from, to, dep, from, to, dep)
	}
	v := *u
	v.Path = u.Path[:start] + name + u.Path[start+n:]
	v.RawPath = ""
	return &v, nil
}

// deploymentAt returns where the Azure OpenAI deployment u names starts
// in its path, and its length; 0 when u names none.
func deploymentAt(u *url.URL) (start, n int) {
	i := strings.LastIndex(u.Path, azureDeployments)
	if i < 0 {
		return 0, 0
	}
	start = i + len(azureDeployments)
	return start, max(strings.IndexByte(u.Path[start:], '/'), 0)
}

// twinDeployment returns the deployment of model to named as dep, the
// deployment of model from, is (as its model, or as go-openai's Azure
// client names it); "" when dep is named otherwise.
func twinDeployment(dep, from, to string) string {
	var name string
	switch {
	case from == "":
	case dep == from:
		name = to
	case dep == goOpenAIDeployment(from):
		name = goOpenAIDeployment(to)
	}
	if strings.ContainsAny(name, "/?#%") {
		return ""
	}
	return name
}

// fixedDeployment reports whether u names an Azure OpenAI deployment that
// is named neither as model nor as go-openai's Azure client names model's
// deployment: the deployment of another model cannot be known, so a call
// to it is not moved to another model (middleware.WithFixedModel).
func fixedDeployment(u *url.URL, model string) bool {
	if u == nil {
		return false
	}
	start, n := deploymentAt(u)
	return n > 0 && twinDeployment(u.Path[start:start+n], model, model) == ""
}

// goOpenAIDeployment is the deployment go-openai's DefaultAzureConfig
// names for model: without ":", and without "." for a 3.5 model.
func goOpenAIDeployment(model string) string {
	model = strings.ReplaceAll(model, ":", "")
	if strings.Contains(model, "3.5") {
		model = strings.ReplaceAll(model, ".", "")
	}
	return model
}
