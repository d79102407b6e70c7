package openai

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
	"github.com/tokenwise/tokenwise/middleware"
)

// Transport is an [http.RoundTripper] that runs OpenAI chat completion
// requests through a tokenwise chain. Give it to go-openai (ClientConfig.
// HTTPClient), to langchaingo's openai backend (openai.WithHTTPClient) or to
// any client of the OpenAI wire format, through [NewHTTPClient].
//
// POST requests to a path ending in "/chat/completions" are decoded into a
// [middleware.Request], served by the chain, whose innermost handler sends
// them to the original URL with the original headers, and rendered back in
// the wire format. Every other request goes to the base transport
// untouched; a billable one (the Responses API, legacy completions,
// embeddings, images, audio, Assistants runs) spends outside the chain's budget, which
// the Transport says once per endpoint in a warning (or refuses it, with
// [WithUnpolicedRefused]). A chat request whose body cannot be decoded (not JSON, or a
// member of the wrong type such as "temperature": "0.2") is refused with an
// OpenAI-shaped 400 error naming the member, before any layer or provider
// call: what the chain cannot read, it cannot police. A panic under the
// chain, streaming or not, becomes the error of that call (a
// [*middleware.PanicError]); it never reaches the process.
//
// A Transport is safe for concurrent use.
type Transport struct {
	base     http.RoundTripper
	provider *Provider
	handler  middleware.Handler
	memo     *msgMemo // messages decoded by earlier calls (see memo.go)
	refuse   bool     // WithUnpolicedRefused
	warned   sync.Map // billable endpoints passed through, warned about once each
	lastPart atomic.Pointer[partitionMemo]
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport that serves chat completions with chain
// (nil: none) around a [Provider] that talks to the requests' own upstream.
func NewTransport(chain middleware.Middleware, opts ...Option) *Transport {
	cfg := newConfig(opts)
	p := &Provider{cfg: cfg}
	var h middleware.Handler = p
	if chain != nil {
		h = chain(p)
	}
	return &Transport{base: cfg.base, provider: p, handler: h, memo: newMsgMemo(memoSlots, memoMaxBytes), refuse: cfg.refuseUnpoliced}
}

// billableEndpoints are the paths, by suffix, of the billable requests a
// Transport cannot run through its chain.
// Assistants and eval runs, under a path of ids, are matched by unpoliced.
var billableEndpoints = []string{"/responses", "/responses/compact", "/completions", "/embeddings", "/images/generations", "/images/edits",
	"/images/variations", "/audio/speech", "/audio/transcriptions", "/audio/translations", "/batches", "/videos", "/fine_tuning/jobs",
	"/realtime/sessions", "/realtime/client_secrets", "/realtime/transcription_sessions", "/containers"}

// unpoliced returns the billable endpoint r calls outside the chain, or "".
func unpoliced(r *http.Request) string {
	if r.URL == nil {
		return ""
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if strings.HasSuffix(path, "/realtime") && r.Header.Get("Upgrade") != "" {
		// A Realtime session: a GET upgraded to a WebSocket (a WebSocket
		// library's handshake through this client), whose model calls
		// the provider bills.
		return "/realtime"
	}
	if r.Method != http.MethodPost {
		return ""
	}
	for _, e := range billableEndpoints {
		if strings.HasSuffix(path, e) {
			return e
		}
	}
	// An Assistants run (a thread created and run, a run created, a run
	// given its tool outputs) calls its assistant's model, as an eval's
	// run calls its models; a run cancelled, read or given metadata costs
	// nothing.
	if _, rest, ok := cutLast(path, "/threads/"); ok {
		if rest == "runs" {
			return "/threads/runs"
		}
		if _, after, _ := strings.Cut(rest, "/"); after == "runs" {
			return "/threads/{thread_id}/runs"
		} else if run, ok := strings.CutPrefix(after, "runs/"); ok && strings.Count(run, "/") == 1 && strings.HasSuffix(run, "/submit_tool_outputs") {
			return "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"
		}
	}
	if _, rest, ok := cutLast(path, "/evals/"); ok {
		if _, after, _ := strings.Cut(rest, "/"); after == "runs" {
			return "/evals/{eval_id}/runs"
		}
	}
	return ""
}

// cutLast is strings.Cut at the last occurrence of sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// passUnpoliced sends a request that is not a chat completion to the base
// transport; a billable one is refused (WithUnpolicedRefused) or passed
// with a warning, once per endpoint: it spends outside the chain's
// budget, cache and limits.
func (t *Transport) passUnpoliced(r *http.Request) (*http.Response, error) {
	if e := unpoliced(r); e != "" {
		if t.refuse {
			if r.Body != nil {
				_ = r.Body.Close()
			}
			return refuseRequest(r, errors.New("tokenwise/openai: POST "+e+" is not run through the policy (only chat completions are): "+
				"refused, as this client was built with WithUnpolicedRefused; use chat completions, or the gateway (tokenwise serve, or in process gateway.Server.Transport), which polices the Responses API and embeddings")), nil
		}
		if _, loaded := t.warned.LoadOrStore(e, true); !loaded {
			slog.Warn("tokenwise/openai: a billable request is passed through without the policy: only chat completions are run through the chain "+
				"(budgets, cache, routing, limits); this spend is not counted (WithUnpolicedRefused refuses such requests)", "endpoint", e)
		}
	}
	return t.base.RoundTrip(r)
}

// NewHTTPClient returns an http.Client whose transport is
// NewTransport(chain, opts...). It has no timeout of its own: deadlines come
// from the caller's context and from the chain.
func NewHTTPClient(chain middleware.Middleware, opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(chain, opts...)}
}

// Do sends r as an http.Client using t would, except that the error of a
// chat completion is returned as is rather than wrapped in a *url.Error. It
// makes a Transport a Doer for clients that take one, such as langchaingo's
// openai.WithHTTPClient: langchaingo replaces every net.Error (which a
// *url.Error is) by a fixed message, so errors.Is(err, middleware.ErrBudget)
// only works through langchaingo with the Transport itself as the client.
// (Context errors it replaces in any case.)
func (t *Transport) Do(r *http.Request) (*http.Response, error) {
	if !isChat(r) {
		return (&http.Client{Transport: roundTripFunc(t.passUnpoliced)}).Do(r)
	}
	return t.RoundTrip(r)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func isChat(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody && r.URL != nil &&
		strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), chatSuffix)
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !isChat(r) {
		return t.passUnpoliced(r)
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	req, err := decodeRequestMemo(body, t.memo)
	if err != nil {
		// Not a request the chain can police: refused here, never passed
		// upstream behind the policy's back.
		return refuseRequest(r, err), nil
	}
	snap := req.Native.(*Wire).req
	snap.partition = t.partitionOf(r)
	if snap.stream {
		return t.stream(r, req, snap.includeUsage)
	}
	ctx, c := t.withCall(withCacheControl(r), r)
	c.model = req.Model
	if fixedDeployment(r.URL, req.Model) {
		ctx = middleware.WithFixedModel(ctx)
	}
	resp, err := middleware.SafeHandle(ctx, t.handler, req, "openai transport")
	if err != nil {
		return errorResponse(r, err, c.tries.Load() > 1)
	}
	if resp == nil {
		return nil, errors.New("tokenwise/openai: chain returned no response and no error")
	}
	var out []byte
	if w, ok := resp.Native.(*Wire); ok && w.resp != nil && sameResponse(resp, w.resp) {
		out = w.JSON // unchanged: the provider's bytes
	} else if out = storedBody(resp); out == nil {
		out = appendResponse(nil, resp, responseMeta(resp, req.Model))
	}
	h := jsonHeader(c.takeHeader(), len(out))
	if resp.FromCache {
		h.Set(CacheHeader, "hit")
	}
	return newBytesResponse(r, http.StatusOK, h, out), nil
}

// withCall returns ctx carrying the call of r for t's provider (see
// callKey), the two in one allocation.
func (t *Transport) withCall(ctx context.Context, r *http.Request) (context.Context, *call) {
	cc := &ctxval.Ctx[callKey, call]{Context: ctx}
	cc.Val.owner, cc.Val.req = t.provider, r
	return cc, &cc.Val
}

// withCacheControl returns r's context, carrying a no-store directive of
// its Cache-Control header (middleware.CacheControl NoStore: neither read
// nor write a response cache). no-cache is not honoured: SSE clients,
// go-openai among them, send it with every streaming request.
func withCacheControl(r *http.Request) context.Context {
	ctx := r.Context()
	if !NoStore(r.Header) {
		return ctx
	}
	c := middleware.CacheControlFrom(ctx)
	c.NoStore, c.Source = true, "cache-control no-store"
	return middleware.WithCacheControl(ctx, c)
}

// NoStore reports whether h's Cache-Control headers say no-store (a
// request that neither reads nor writes a response cache). The gateway
// reads its callers' requests to the Responses API with it too.
func NoStore(h http.Header) bool {
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

// CacheHeader is the response header that marks an answer served by a
// cache: "X-Tokenwise-Cache: hit".
const CacheHeader = "X-Tokenwise-Cache"

// storedBody returns the body of a response a cache kept
// (middleware.StoredNative of NativeFormat), when the chain did not change
// the answer: the provider's body as it was sent, every choice, logprobs,
// refusal, audio, annotations, system_fingerprint, service_tier and usage
// included (a hit's core Usage is zero, as nothing was spent; the body
// says what the answer cost when it was made). nil otherwise.
func storedBody(resp *middleware.Response) []byte {
	sn, ok := resp.Native.(*middleware.StoredNative)
	if !ok || sn.Format != NativeFormat {
		return nil
	}
	stored, _, err := decodeResponse(sn.Data)
	if err != nil || stored == nil {
		return nil
	}
	a := *resp
	if a.FromCache && a.Usage.IsZero() {
		a.Usage = stored.Usage
	}
	if !sameResponse(&a, stored) {
		return nil
	}
	return sn.Data
}

// readBody reads and closes a request's body, in one allocation when its
// length is known; a body of another length than its Content-Length is an
// error, as net/http's transport has it (a longer one was cut before).
//
// A body that writes itself out (io.WriterTo: a bytes.Buffer or
// bytes.Reader through http.NewRequest, as go-openai sends one) is copied
// by bodyWriter straight into a new slice that is not zeroed first (the
// copy fills it); any other is read into a zeroed one.
func readBody(r *http.Request) ([]byte, error) {
	defer r.Body.Close()
	if n := r.ContentLength; n > 0 && n < 64<<20 {
		if wt, ok := r.Body.(io.WriterTo); ok {
			return readBodyTo(wt, n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		var more [1]byte
		if k, _ := r.Body.Read(more[:]); k > 0 {
			return nil, errBodyTooLong
		}
		return body, nil
	}
	return io.ReadAll(r.Body)
}

var errBodyTooLong = errors.New("tokenwise/openai: the request body is longer than its Content-Length")

// readBodyTo is readBody of a body of Content-Length n that writes itself
// out, with the same results: the body when it is n bytes long (an error of
// the body after those n bytes ignored, as readBody's reads never see it),
// else errBodyTooLong, the body's own error, or io.ErrUnexpectedEOF (io.EOF
// when it is empty), as io.ReadFull has them.
func readBodyTo(wt io.WriterTo, n int64) ([]byte, error) {
	w := bodyWriter{n: n}
	_, err := wt.WriteTo(&w)
	switch {
	case w.long:
		return nil, errBodyTooLong
	case int64(len(w.b)) == n:
		return w.b, nil
	case err != nil:
		return nil, err
	case len(w.b) == 0:
		return nil, io.EOF
	}
	return nil, io.ErrUnexpectedEOF
}

// bodyWriter collects a body of at most n bytes: one written at once (the
// usual case) is appended to a nil slice, which copies it into a new
// allocation without zeroing it first; one written in pieces goes into a
// slice of capacity n. A write past n bytes fails (long).
type bodyWriter struct {
	b    []byte
	n    int64
	long bool
}

func (w *bodyWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.n-int64(len(w.b)) {
		w.long = true
		return 0, errBodyTooLong
	}
	if w.b == nil && int64(len(p)) < w.n {
		w.b = make([]byte, 0, w.n)
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// refuseRequest answers a request whose body cannot be decoded with an
// OpenAI-shaped 400 error naming the member at fault, which go-openai
// returns as its usual *openai.APIError.
func refuseRequest(r *http.Request, err error) *http.Response {
	var re *RequestError
	param, code, msg := "", "", err.Error()
	if errors.As(err, &re) && re.Param != "" {
		param, code = re.Param, "invalid_type"
	}
	if !strings.HasPrefix(msg, "tokenwise/") {
		msg = "tokenwise/openai: " + msg
	}
	body := appendErrorBody(nil, &middleware.ProviderError{Kind: middleware.ErrBadRequest, Type: "invalid_request_error",
		Code: code, Message: msg}, param)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return newBytesResponse(r, http.StatusBadRequest, h, body)
}

// responseMeta returns the id, model and creation time to render resp with.
func responseMeta(resp *middleware.Response, model string) chunkMeta {
	m := chunkMeta{id: resp.ID, model: resp.Model, created: time.Now().Unix()}
	if w, ok := resp.Native.(*Wire); ok {
		if wm := decodeMeta(w.JSON); wm.created != 0 {
			m.created = wm.created
		}
	}
	if m.id == "" {
		m.id = newID()
	}
	if m.model == "" {
		m.model = model
	}
	return m
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-tw" + hex.EncodeToString(b[:])
}

// responseHeader returns the headers to give the caller: the upstream's
// (rate limits, request id, ...) without those that described its body.
func responseHeader(upstream http.Header) http.Header {
	h := upstream.Clone()
	if h == nil {
		return http.Header{}
	}
	for _, k := range []string{"Content-Length", "Content-Encoding", "Transfer-Encoding", "Content-Type", "Etag", "Last-Modified"} {
		h.Del(k)
	}
	return h
}

// ownHeader is responseHeader for headers nobody else holds (the last
// upstream response of a call that is over, see call.takeHeader): it
// removes the headers that described the upstream body in place rather
// than copying the rest.
func ownHeader(upstream http.Header) http.Header {
	if upstream == nil {
		return http.Header{}
	}
	for _, k := range []string{"Content-Length", "Content-Encoding", "Transfer-Encoding", "Content-Type", "Etag", "Last-Modified"} {
		delete(upstream, k)
	}
	return upstream
}

// jsonHeader is ownHeader(upstream) with Content-Type application/json
// and the Content-Length n: the headers of a JSON answer of n bytes. The
// upstream's own values are kept when they say so already (an unchanged
// answer: the provider's body, whose length the upstream sent), which
// spares formatting the length and a slice for the two values.
func jsonHeader(upstream http.Header, n int) http.Header {
	var num [20]byte
	length := strconv.AppendInt(num[:0], int64(n), 10)
	if upstream != nil && onlyValue(upstream, "Content-Type", "application/json") && onlyValue(upstream, "Content-Length", string(length)) {
		for _, k := range []string{"Content-Encoding", "Transfer-Encoding", "Etag", "Last-Modified"} {
			delete(upstream, k)
		}
		return upstream
	}
	h := ownHeader(upstream)
	// The two values in one allocation (h is the caller's from now on).
	vals := []string{"application/json", string(length)}
	h["Content-Type"], h["Content-Length"] = vals[:1:1], vals[1:]
	return h
}

func newResponse(r *http.Request, status int, h http.Header, body io.ReadCloser, n int64) *http.Response {
	resp := &http.Response{}
	fillResponse(resp, r, status, h, body, n)
	return resp
}

// fillResponse sets resp to the HTTP/1.1 response of r with status, h and
// body of n bytes.
func fillResponse(resp *http.Response, r *http.Request, status int, h http.Header, body io.ReadCloser, n int64) {
	*resp = http.Response{
		Status:        statusLine(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          body,
		ContentLength: n,
		Request:       r,
	}
}

// newBytesResponse is newResponse for a body in memory: the response and
// its body reader in one allocation.
func newBytesResponse(r *http.Request, status int, h http.Header, body []byte) *http.Response {
	m := &bytesResponse{}
	m.body.Reset(body)
	fillResponse(&m.resp, r, status, h, &m.body, int64(len(body)))
	return &m.resp
}

type bytesResponse struct {
	resp http.Response
	body bytesBody
}

// bytesBody is a response body in memory; Close does nothing.
type bytesBody struct{ bytes.Reader }

func (*bytesBody) Close() error { return nil }

// statusLine returns the Status of an http.Response of status: "200 OK".
func statusLine(status int) string {
	if status == http.StatusOK {
		return "200 OK"
	}
	return strconv.Itoa(status) + " " + http.StatusText(status)
}

// errorResponse maps a chain failure for the caller: a provider error with
// an HTTP status becomes that HTTP response again (so go-openai returns its
// usual *openai.APIError); anything else (a budget, a run guard, a timeout,
// a cut stream, a network failure) is returned as the RoundTrip error, which
// http.Client wraps in a *url.Error that errors.Is and errors.As see through.
// retried says the chain sent the call more than once (its retries, a
// fallback, a hedge): the response then says x-should-retry: false, so
// that a client that retries on its own (openai-go retries 408, 409, 429
// and 5xx) does not multiply the attempts the policy allowed. So does the
// provider's spent quota (a 429 insufficient_quota), which no retry ever
// passes.
func errorResponse(r *http.Request, err error, retried bool) (*http.Response, error) {
	var pe *middleware.ProviderError
	if !errors.As(err, &pe) || pe.StatusCode < 400 {
		return nil, err
	}
	var he *HTTPError
	var body []byte
	var h http.Header
	if errors.As(pe, &he) && len(he.Body) > 0 {
		body = he.Body
		if e := unwrapErrorArray(body); e != nil {
			// Gemini's error in an array, which OpenAI clients cannot
			// decode: given as the error object it wraps.
			body = e
		}
		h = responseHeader(he.Header)
		if ct := he.Header.Get("Content-Type"); ct != "" {
			h.Set("Content-Type", ct)
		}
	} else {
		param := ""
		if he != nil {
			param = he.Param
		}
		body = appendErrorBody(nil, pe, param)
		h = http.Header{}
		retryAfterHeaders(h, pe.RetryAfter)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if retried || errors.Is(pe, middleware.ErrQuotaExceeded) {
		h.Set("X-Should-Retry", "false")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return newBytesResponse(r, pe.StatusCode, h, body), nil
}

// errBodyClosed is the cause of a stream's cancellation when the caller
// closes the response body before the end.
var errBodyClosed = errors.New("tokenwise/openai: response body closed by the caller")

// errStreamDone refuses chunks that arrive after the chain returned.
var errStreamDone = errors.New("tokenwise/openai: chunk after the end of the stream")

// stream serves a streaming request. The chain runs as a coroutine
// (iter.Pull) driven by the caller: RoundTrip runs it until its first
// chunk is rendered, and each Read of the body resumes it until the next
// one (or the next batch: several chunks the provider had already read,
// see sseWriter.send), whose events Read hands over without a copy in
// between. A chunk therefore costs no goroutine wake-up beyond the
// provider's own network read, and the chain never runs ahead of the
// caller but by a batch it could read without waiting (the timeout layer's
// idle clock stops while the caller holds a chunk, as it does while any
// stream function runs).
//
// Close, a done request context or the end of the stream stop the
// coroutine: a chunk waiting in the stream function returns the context's
// error, the chain unwinds and Close returns once it has. So does the end
// of the chunk's own context (the call's deadline, timeouts.total, the
// run's) while the caller holds its events without reading on: the chain
// unwinds with that deadline's error, releasing what it holds (a rate
// limit's slot, a budget reservation), and the caller's next Read returns
// the error (see streamBody.chunkDone).
func (t *Transport) stream(r *http.Request, req *middleware.Request, includeUsage bool) (*http.Response, error) {
	// A streamed hit whose stored answer is an OpenAI body is rendered
	// here, from that body (see appendRestream), rather than replayed by
	// the cache from the core answer: every choice, logprobs, the stored
	// id and model.
	ctx := withCacheControl(r)
	cc := middleware.CacheControlFrom(ctx)
	cc.ReplayFormat = NativeFormat
	ctx, cancel := context.WithCancelCause(middleware.WithCacheControl(ctx, cc))
	ctx, c := t.withCall(ctx, r)
	c.model = req.Model
	if fixedDeployment(r.URL, req.Model) {
		ctx = middleware.WithFixedModel(ctx)
	}
	body := &streamBody{cancel: cancel}
	sw := &sseWriter{ctx: ctx, body: body, includeUsage: includeUsage, model: req.Model, more: &c.more}
	var (
		resp *middleware.Response
		err  error
	)
	req.Stream = sw.send
	body.next, body.stop = iter.Pull(func(yield func([]byte) bool) {
		defer func() {
			body.unhook()
			body.unwatch()
			cancel(context.Canceled)
		}()
		sw.yield = yield
		resp, err = middleware.SafeHandle(ctx, t.handler, req, "openai transport stream")
		if !sw.finish() {
			return
		}
		if err != nil {
			body.err = streamError(err)
			return
		}
		yield(sseDone)
	})
	// A done context stops a chain the caller has stopped reading.
	body.unhook = context.AfterFunc(ctx, body.halt)
	body.mu.Lock()
	first, started := body.next()
	body.pending = first
	body.mu.Unlock()
	if started {
		h := responseHeader(c.upstreamHeader())
		if sw.hit {
			h.Set(CacheHeader, "hit")
		}
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		return newResponse(r, http.StatusOK, h, body, -1), nil
	}
	if err != nil {
		return errorResponse(r, err, c.tries.Load() > 1)
	}
	if resp == nil {
		return nil, errors.New("tokenwise/openai: chain returned no response and no error")
	}
	// The chain answered without streaming: replay its answer, a hit
	// from the stored body when nobody changed it (and from the core
	// answer when that body, which the provider's decoder read, does
	// not restream).
	var buf bytes.Buffer
	restreamed := false
	if stored := storedBody(resp); resp.FromCache && stored != nil {
		if b, err := appendRestream(nil, stored, includeUsage); err == nil {
			buf.Write(b)
			restreamed = true
		}
	}
	if !restreamed && resp.FromCache && storedChoices(resp) > 1 {
		// The core answer holds choice 0 only: replayed, it would drop
		// the others. The hit is a miss: the call goes upstream again,
		// whose answer replaces the stored one.
		cc := middleware.CacheControlFrom(r.Context())
		cc.NoCache, cc.Source = true, "tokenwise/openai: a stored answer of several choices that does not restream"
		return t.stream(r.WithContext(middleware.WithCacheControl(r.Context(), cc)), req, includeUsage)
	}
	if !restreamed {
		rw := &sseWriter{w: &buf, includeUsage: includeUsage, model: req.Model, meta: responseMeta(resp, req.Model), haveMeta: true}
		send := rw.send
		replayed := withStoredUsage(resp)
		if replayed.FromCache && replayed.Usage.IsZero() {
			// The stored answer reported no usage: no usage chunk of
			// zeros, which the first call did not have either.
			send = func(ctx context.Context, c middleware.Chunk) error {
				if c.Usage != nil && c.Usage.IsZero() {
					c.Usage = nil
				}
				return rw.send(ctx, c)
			}
		}
		if err := middleware.Replay(r.Context(), replayed, 0, send); err != nil {
			return nil, err
		}
	}
	buf.Write(sseDone)
	h := responseHeader(c.upstreamHeader())
	if resp.FromCache {
		h.Set(CacheHeader, "hit")
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	return newResponse(r, http.StatusOK, h, io.NopCloser(&buf), int64(buf.Len())), nil
}

// sseDone ends a stream.
var sseDone = []byte("data: [DONE]\n\n")

// withStoredUsage returns a hit with the usage of its stored OpenAI body
// (what the answer cost when it was made, which a streaming caller who
// asked for usage is given), or resp itself.
func withStoredUsage(resp *middleware.Response) *middleware.Response {
	sn, ok := resp.Native.(*middleware.StoredNative)
	if !resp.FromCache || !resp.Usage.IsZero() || !ok || sn.Format != NativeFormat {
		return resp
	}
	stored, _, err := decodeResponse(sn.Data)
	if err != nil || stored == nil {
		return resp
	}
	a := *resp
	a.Usage = stored.Usage
	return &a
}

// storedChoices returns the number of choices of a hit's stored OpenAI
// body; 0 when resp carries none.
func storedChoices(resp *middleware.Response) int {
	sn, ok := resp.Native.(*middleware.StoredNative)
	if !ok || sn.Format != NativeFormat {
		return 0
	}
	var b struct {
		Choices []json.RawMessage `json:"choices"`
	}
	if json.Unmarshal(sn.Data, &b) != nil {
		return 0
	}
	return len(b.Choices)
}

// streamError is the error a caller's read returns when the chain failed
// after the first chunk. It is never io.EOF, which would pass for the end.
func streamError(err error) error {
	if errors.Is(err, io.EOF) {
		return &middleware.ProviderError{Kind: middleware.ErrStreamCut, Message: "stream ended early", Err: io.ErrUnexpectedEOF}
	}
	return err
}

// streamBody is a streaming response's body: Read resumes the chain's
// coroutine for the next chunk's events; Close stops it and returns once
// the chain has returned, so that nothing outlives the call.
//
// The coroutine runs only inside next or stop, which are called with mu
// held: what it writes (parked, watched) is read under mu.
type streamBody struct {
	mu      sync.Mutex // serialises next and stop (Read, Close, halt, chunkDone)
	next    func() ([]byte, bool)
	stop    func()
	unhook  func() bool // unregisters halt from the context
	cancel  context.CancelCauseFunc
	pending []byte // events handed over, not yet read
	err     error  // the chain's error after the first chunk (nil: the stream ended)
	ended   bool   // the chain returned
	closed  bool

	// parked is the context of the chunk whose events the caller holds
	// while the chain waits for its next Read (nil while the chain runs,
	// and once it returned); watched is the last such context, whose end
	// calls chunkDone until unwatchCtx unregisters it.
	parked     context.Context
	watched    context.Context
	unwatchCtx func() bool
}

// park is called by the coroutine before it hands the caller the events
// of a chunk of ctx and waits: ctx ending while it waits stops the chain
// (chunkDone). One registration serves every chunk of a context (an
// attempt's chunks share one).
func (b *streamBody) park(ctx context.Context) {
	b.parked = ctx
	if ctx == b.watched {
		return
	}
	b.unwatch()
	b.watched, b.unwatchCtx = ctx, context.AfterFunc(ctx, b.chunkDone)
}

// unwatch unregisters chunkDone from the context it watches, if any.
func (b *streamBody) unwatch() {
	if b.unwatchCtx != nil {
		b.unwatchCtx()
		b.watched, b.unwatchCtx = nil, nil
	}
}

// chunkDone runs when the context of a chunk ends (see park): if the
// chain is waiting for the caller to read the events of a chunk whose
// context has ended, it is stopped, so that the chunk's stream function
// returns that context's error and the chain unwinds now rather than
// whenever the caller reads or closes. A context that ends while the
// chain runs, or after it returned (an attempt's deadline is released
// when it ends), stops nothing.
func (b *streamBody) chunkDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.parked; p != nil && p.Err() != nil && !b.closed && !b.ended {
		b.stop()
	}
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) == 0 {
		switch {
		case b.closed:
			return 0, io.ErrClosedPipe
		case b.ended:
			if b.err != nil {
				return 0, b.err
			}
			return 0, io.EOF
		}
		events, ok := b.next()
		if !ok {
			b.ended = true
		}
		b.pending = events
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// halt stops the chain: a chunk waiting in its stream function gets the
// context's error. The caller reads what was handed over, then that error.
func (b *streamBody) halt() {
	b.mu.Lock()
	b.stop()
	b.mu.Unlock()
}

func (b *streamBody) Close() error {
	b.unhook()
	b.cancel(errBodyClosed) // unblocks a chain waiting upstream for a Read
	b.mu.Lock()
	if !b.closed {
		b.closed, b.pending = true, nil
		b.stop()
	}
	b.mu.Unlock()
	return nil
}

// sseWriter renders chunks as server-sent events for the caller. Chunks
// the provider decoded and nobody changed go out as the provider's bytes;
// others are encoded. It is safe for concurrent use, though chunks arrive
// one at a time.
type sseWriter struct {
	w            io.Writer                // where events go, when yield is nil
	yield        func(events []byte) bool // hands events to the caller's Read (streamBody)
	body         *streamBody              // the body whose Read resumes yield (with yield)
	ctx          context.Context          // the stream's context, nil when w cannot fail
	includeUsage bool                     // the caller asked for the usage chunk
	model        string                   // the requested model, for chunks made from scratch
	more         *atomic.Bool             // set while the next chunk is already buffered upstream (call.more); nil: none

	mu       sync.Mutex
	started  bool // a chunk was written
	hit      bool // the first chunk was replayed by a cache
	finished bool
	halted   bool  // yield refused a chunk: the caller closed or gave up, or the chunk's context ended
	haltErr  error // the error of the chunks once halted
	role     bool  // the assistant role was announced
	meta     chunkMeta
	haveMeta bool
	last     *Wire  // the last provider chunk seen, for meta
	buf      []byte // events not yet handed over (with yield: a batch in the making)
}

// batchBytes bounds the events a batch holds back: what a caller's
// buffered reader takes in one Read (go-openai's and bufio's default).
const batchBytes = 4 << 10

// send writes one chunk; it is the request's StreamFunc.
func (s *sseWriter) send(ctx context.Context, c middleware.Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errStreamDone
	}
	if s.halted {
		return s.haltErr
	}
	if s.yield == nil {
		s.buf = s.buf[:0]
	}
	n := len(s.buf)
	s.buf = s.appendEvents(s.buf, &c)
	if len(s.buf) == 0 {
		return nil
	}
	if !s.started {
		s.started = true
		_, s.hit = c.Native.(middleware.CachedChunk)
	}
	if len(s.buf) > n {
		s.role = true
	}
	if s.yield != nil {
		if s.more != nil && s.more.Load() && len(s.buf) < batchBytes {
			// The next chunk is already read: these events go to the
			// caller with its, in one Read.
			if cap(s.buf) < batchBytes {
				s.buf = append(make([]byte, 0, batchBytes+batchBytes/4), s.buf...) // grown once
			}
			return nil
		}
		return s.handOver(ctx)
	}
	if _, err := s.w.Write(s.buf); err != nil {
		if s.ctx != nil && s.ctx.Err() != nil {
			return ctxError(s.ctx) // the caller closed the body or gave up
		}
		return err
	}
	return nil
}

// handOver gives the caller the events held in s.buf. The caller's Read
// takes s.buf as it is; it asks for the next chunk (which reuses s.buf)
// only once it has read all of it. ctx is the context of the chunk whose
// events these are: its end while the caller holds the events stops the
// chain (streamBody.park).
func (s *sseWriter) handOver(ctx context.Context) error {
	s.body.park(ctx)
	ok := s.yield(s.buf)
	s.body.parked = nil
	if !ok {
		s.halted = true
		s.haltErr = s.haltError(ctx)
		return s.haltErr
	}
	s.buf = s.buf[:0]
	return nil
}

// haltError is the error of a chunk the caller will not read: that of
// the chunk's context (ctx) when it ended (its deadline passed), else that
// of the stream's (the caller closed or gave up).
func (s *sseWriter) haltError(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if s.ctx != nil && s.ctx.Err() != nil {
		return ctxError(s.ctx)
	}
	return errBodyClosed
}

// finish marks the end of the chain, hands the caller the events held
// back for a batch, and reports whether a chunk was written.
func (s *sseWriter) finish() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
	if s.yield != nil && len(s.buf) > 0 && !s.halted {
		// The chain has returned: nothing to watch. A caller who
		// stopped reading stops the stream anyway.
		if s.yield(s.buf) {
			s.buf = s.buf[:0]
		} else {
			s.halted = true
		}
	}
	return s.started
}

func (s *sseWriter) appendEvents(dst []byte, c *middleware.Chunk) []byte {
	if w, ok := c.Native.(*Wire); ok && w.isChunk {
		s.last = w
		if sameChunk(c, &w.chunk.c) {
			var usage span // to cut
			if !s.includeUsage {
				if w.chunk.usageOnly {
					return dst // the caller did not ask for it
				}
				usage = w.chunk.usageCut()
			}
			if usage.end == 0 && w.chunk.errEnd == 0 {
				return appendEvent(dst, w.JSON)
			}
			dst = append(dst, "data: "...)
			dst = appendCut(dst, w.JSON, usage, w.chunk.errCut())
			return append(dst, "\n\n"...)
		}
	}
	if !s.haveMeta {
		s.haveMeta = true
		if s.last != nil {
			s.meta = decodeMeta(s.last.JSON)
		}
		if s.meta.id == "" {
			s.meta.id = newID()
		}
		if s.meta.model == "" {
			s.meta.model = s.model
		}
		if s.meta.created == 0 {
			s.meta.created = time.Now().Unix()
		}
	}
	if c.Content != "" || c.Reasoning != "" || c.Refusal != "" || len(c.ToolCalls) > 0 || c.FinishReason != "" {
		dst = append(dst, "data: "...)
		dst = appendChunkJSON(dst, c, s.meta, !s.role)
		dst = append(dst, "\n\n"...)
	}
	if c.Usage != nil && s.includeUsage {
		dst = append(dst, "data: "...)
		dst = appendUsageChunkJSON(dst, *c.Usage, s.meta)
		dst = append(dst, "\n\n"...)
	}
	return dst
}

func appendEvent(dst, data []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// partitionOf names what of r, outside its body, decides its answer (see
// Wire.CachePartition): the endpoint (scheme, host and path: an Azure
// deployment is in the path) and a hash of the query (api-version, a key),
// the OpenAI-Organization and OpenAI-Project headers and the credential
// (Authorization, Api-Key), so that no credential is ever in a cache key.
// The last one is remembered: a client's calls repeat it.
func (t *Transport) partitionOf(r *http.Request) string {
	u, h := r.URL, r.Header
	// (Canonical names: Get of another spelling allocates its canonical
	// form on every call.)
	org, project, auth, apiKey := h.Get("Openai-Organization"), h.Get("Openai-Project"), h.Get("Authorization"), h.Get("Api-Key")
	if m := t.lastPart.Load(); m != nil && m.scheme == u.Scheme && m.host == u.Host && m.path == u.Path && m.query == u.RawQuery &&
		m.org == org && m.project == project && m.auth == auth && m.apiKey == apiKey {
		return m.out
	}
	m := &partitionMemo{scheme: u.Scheme, host: u.Host, path: u.Path, query: u.RawQuery, org: org, project: project, auth: auth, apiKey: apiKey}
	d := sha256.New()
	for _, s := range [...]string{m.query, m.org, m.project, m.auth, m.apiKey} {
		_, _ = d.Write(binary.AppendUvarint(nil, uint64(len(s))))
		_, _ = io.WriteString(d, s)
	}
	m.out = m.scheme + "://" + m.host + m.path + "#" + hex.EncodeToString(d.Sum(nil)[:16])
	t.lastPart.Store(m)
	return m.out
}

// partitionMemo is what partitionOf made last, and of what.
type partitionMemo struct {
	scheme, host, path, query, org, project, auth, apiKey string
	out                                                   string
}
