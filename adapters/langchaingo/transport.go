package langchaingo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/internal/redact"
	"github.com/tokenwise/tokenwise/internal/sendtrack"
	"github.com/tokenwise/tokenwise/internal/ssesniff"
	"github.com/tokenwise/tokenwise/middleware"
)

// maxErrorBody bounds how much of an error response NewTransport reads.
const maxErrorBody = 64 << 10

// The bounds of what NewTransport reads of an answer, those of the OpenAI
// adapter's provider: a server that sends more (a broken or hostile one,
// a line that never ends) fails the call as malformed instead of growing
// the process's memory without end. Far above any real answer.
// Variables for the tests.
var (
	maxStreamLine       = 64 << 20
	maxAnswerBody int64 = 256 << 20
)

const (
	errLineTooLong  = "a line of the stream is longer than the transport reads (64 MiB)"
	errBodyTooLarge = "the answer is larger than the transport reads (256 MiB)"
)

// NewTransport returns an [http.RoundTripper] for the HTTP client of an
// inner langchaingo model, e.g.
//
//	strong, err := openai.New(openai.WithModel("gpt-4o"),
//		openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
//
// langchaingo's backends turn a provider's HTTP error into text and drop
// its headers. With this transport installed, the adapter sees the status,
// the provider's error type and code, and the Retry-After headers of a
// failed call, so the error it returns is a [middleware.ProviderError]
// with RetryAfter set, classified without reading error text. It reads
// error responses (status 400 and above) of calls made through a [Model]
// and gives the client their body unchanged. base nil means the OpenAI
// adapter's default base transport (twopenai.DefaultBaseTransport: one
// clone of [http.DefaultTransport] per process with a 64 KiB write
// buffer, so that a request of tens of kilobytes goes out in one write
// with its headers). It is safe for concurrent use.
//
// It also checks the server-sent events of a streamed answer as the
// backend reads them, and puts them in the shape langchaingo's openai
// backend assembles correctly (see checkedStream): a data line that is not
// a valid chunk (which the backend would skip, returning a shortened
// answer as a success) fails the read with a [middleware.ErrMalformed]
// error, and so does a "data: [DONE]" before any chunk (no answer, never an
// empty one as a success), a stream that ends without "data: [DONE]" with a
// [middleware.ErrStreamCut] error, and tool-call fragments in any order
// are merged by index and delivered whole before the finish reason. An
// error object a server sends with status 200, in the stream (OpenRouter,
// vLLM, OpenAI) or as the body of a plain answer, fails the call with a
// [middleware.ProviderError] classified from the error's code or type, as
// the OpenAI adapter classifies it; so does a finish_reason "error". The
// body of a plain answer lost after its 2xx status fails with a
// [middleware.AnswerCutError] as the error's cause, and a whole one that
// is malformed (not JSON, no choices, a member of the wrong type) with a
// [middleware.AnswerMalformedError], so that the call is billed (the
// provider produced, and bills, the answer). What it reads is bounded as
// the OpenAI adapter's provider bounds it: a line of a stream longer than
// 64 MiB, or a plain answer longer than 256 MiB (a server that never ends
// one), fails the read with a [middleware.ErrMalformed] error instead of
// being gathered in memory for as long as it comes. A usage count written as a
// float (12.0, which several OpenAI-compatible servers send) or as a string
// ("7000", as vLLM behind some proxies writes it), or a created
// time as a string, which the backend cannot decode into its Go types, is
// put in those types, in a stream as in a plain answer (see
// normalizeAnswer): the provider's count is billed; an answer the backend
// decodes is passed on byte for byte. Give it as the base of the other (twlc.NewTransport(twopenai.NewTransport(
// chain))) to use both.
func NewTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = twopenai.DefaultBaseTransport()
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	slot, _ := req.Context().Value(failureKey{}).(*httpFailure)
	var sent *sendtrack.Tracker
	if slot != nil {
		// A call that ends before its request was written whole never
		// reached the provider (NotSentError).
		req, sent = sendtrack.Track(t.base, req)
		slot.setTracker(sent)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		// The backend turns any error of its client into a fixed text
		// ("network error: failed to reach API server"): a core error of
		// the base (the go-openai Transport's malformed or cut answer)
		// is kept for the adapter to return (see classifyError).
		slot.setRoundTripErr(err)
		return resp, err
	}
	if resp.StatusCode < 400 {
		switch {
		case strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
			if resp.StatusCode/100 == 2 {
				slot.setEventStream(resp.StatusCode)
			}
			resp.Body = &checkedStream{rc: resp.Body, slot: slot}
		case resp.StatusCode/100 == 2 && strings.HasSuffix(req.URL.Path, "/chat/completions"):
			resp.Body = &checkedBody{rc: resp.Body, status: resp.StatusCode, slot: slot}
		}
		return resp, nil
	}
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
	f := failure{status: resp.StatusCode, header: redact.Header(resp.Header, secrets...), secrets: secrets,
		bodyRetryAfter: httperr.BodyRetryDelay(body)}
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
// "status":"RESOURCE_EXHAUSTED","message"}}), which Gemini's
// OpenAI-compatible endpoint wraps in an array ([{"error":{...}}]: its
// first element is read).
func parseErrorBody(body []byte) (typ, code, message string) {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		var elems []map[string]json.RawMessage
		if json.Unmarshal(t, &elems) == nil && len(elems) > 0 && elems[0]["error"] != nil {
			body = elems[0]["error"]
			body = append(append([]byte(`{"error":`), body...), '}')
		}
	}
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
	// bodyRetryAfter is the wait the body names (Gemini's RetryInfo),
	// for an answer whose headers name none.
	bodyRetryAfter time.Duration
}

// httpFailure is the per-call slot NewTransport fills; the last failure of
// the call wins. It also records that a stream of the call ended with its
// "data: [DONE]" (see sawDone).
type httpFailure struct {
	mu       sync.Mutex
	f        *failure
	done     bool
	answered int // the status of a whole 2xx answer checkedBody read (0: none)
	// eventStream is the status of a 2xx answer sent as an event stream
	// (0: none).
	eventStream int
	// others accumulate what the choices after the first streamed
	// (index i at i-1; nil: none yet), which checkedStream drops.
	others []*middleware.Accumulator
	// tracker tells whether the call's request was written whole: a call
	// that ended before never reached the provider (read by the adapter,
	// which may give up on the call at its deadline before the transport
	// returns).
	tracker *sendtrack.Tracker
	// tier is the service_tier the answer named (a stream's last chunk
	// that named one), which the backend does not decode: the tier the
	// provider billed the tokens at.
	tier string
	// model is the model the answer named (a stream's last chunk that
	// named one), which the backend does not return: the model the
	// provider billed the call as (a dated snapshot may have its own
	// price, middleware.BilledModel).
	model string
	// usage is the last usage a chunk of the stream reported (vLLM's and
	// Gemini's, cumulative in every chunk), which a cut stream's partial
	// answer is billed, as through the go-openai transport: the backend
	// returns none with its error.
	usage middleware.Usage
	// unconfirmed: the stream ended after its finish_reason without
	// [DONE] (a server that never sends it, or a cut just before its
	// usage chunk and its [DONE]).
	unconfirmed bool
	// cached and written are the input tokens a provider's prompt cache
	// served and was written, where the backend does not read them (see
	// setOtherCached).
	cached, written int64
	// rtErr is the core error (a *middleware.ProviderError, DeadlineError
	// or NotSentError) the base transport returned, if any.
	rtErr error
}

// setRoundTripErr keeps err, the base transport's error, if it is a core
// error: the backend would return it as an untyped network failure.
func (h *httpFailure) setRoundTripErr(err error) {
	if h == nil {
		return
	}
	var pe *middleware.ProviderError
	var de *middleware.DeadlineError
	var ne *middleware.NotSentError
	if !errors.As(err, &pe) && !errors.As(err, &de) && !errors.As(err, &ne) {
		return
	}
	h.mu.Lock()
	h.rtErr = err
	h.mu.Unlock()
}

// roundTripErr returns the core error the base transport returned, or nil.
func (h *httpFailure) roundTripErr() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rtErr
}

// setOtherCached records the input tokens a provider's prompt cache
// served, or was written, that the usage object raw (an answer's or a
// chunk's) counts where the backend does not read them: served, where
// servers other than OpenAI's put them beside the prompt's count
// (DeepSeek's prompt_cache_hit_tokens, Moonshot's (Kimi's) cached_tokens);
// written, in prompt_tokens_details.cache_write_tokens (OpenRouter's, of
// Anthropic's models) or cache_creation_tokens. The backend reads only
// prompt_tokens_details.cached_tokens; the call is billed them at their
// rates, as through the go-openai transport (otherCached).
func (h *httpFailure) setOtherCached(raw []byte) {
	if h == nil || !bytes.Contains(raw, []byte(`"prompt_cache_hit_tokens"`)) && !bytes.Contains(raw, []byte(`"cached_tokens"`)) &&
		!bytes.Contains(raw, []byte(`"cache_write_tokens"`)) && !bytes.Contains(raw, []byte(`"cache_creation_tokens"`)) {
		return
	}
	var a struct {
		Usage *struct {
			Hit     *float64 `json:"prompt_cache_hit_tokens"`
			Cached  *float64 `json:"cached_tokens"` // beside the prompt's count, not in its details
			Details *struct {
				Write    *float64 `json:"cache_write_tokens"`
				Creation *float64 `json:"cache_creation_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if json.Unmarshal(raw, &a) != nil || a.Usage == nil {
		return
	}
	largest := func(vs ...*float64) int64 {
		var n float64
		for _, v := range vs {
			if v != nil && *v > n && *v < 1<<53 {
				n = *v
			}
		}
		return int64(math.Ceil(n))
	}
	var written int64
	if d := a.Usage.Details; d != nil {
		written = largest(d.Write, d.Creation)
	}
	h.mu.Lock()
	h.cached, h.written = largest(a.Usage.Hit, a.Usage.Cached), written
	h.mu.Unlock()
}

// otherCached returns u with the cached and written input tokens
// setOtherCached recorded, each when u (the backend's reading) counts
// none: OpenAI's prompt_tokens_details.cached_tokens wins when it counts
// any.
func (h *httpFailure) otherCached(u middleware.Usage) middleware.Usage {
	if h == nil {
		return u
	}
	h.mu.Lock()
	cached, written := h.cached, h.written
	h.mu.Unlock()
	if u.CachedInputTokens == 0 {
		u.CachedInputTokens = min(cached, u.InputTokens)
	}
	if u.CacheWriteTokens == 0 {
		u.CacheWriteTokens = min(written, u.InputTokens-u.CachedInputTokens)
	}
	return u
}

// setUsage records u, a chunk's usage, unless it is no count (negative)
// or counts nothing.
func (h *httpFailure) setUsage(u *lcUsage) {
	if h == nil || u == nil {
		return
	}
	c := u.core()
	if c.Implausible() || c.IsZero() {
		return
	}
	c = h.otherCached(c) // (see setOtherCached)
	h.mu.Lock()
	h.usage = c
	h.mu.Unlock()
}

// streamedUsage is the usage setUsage recorded last (zero: none).
func (h *httpFailure) streamedUsage() middleware.Usage {
	if h == nil {
		return middleware.Usage{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usage
}

// setTier records the service_tier member raw of an answer or chunk (a
// string; anything else, or a name longer than any real one, is none).
func (h *httpFailure) setTier(raw json.RawMessage) {
	if h == nil || len(raw) == 0 || raw[0] != '"' {
		return
	}
	var t string
	if json.Unmarshal(raw, &t) != nil || t == "" || len(t) > 32 {
		return
	}
	h.mu.Lock()
	h.tier = t
	h.mu.Unlock()
}

// setModel records the model an answer or chunk named (a name longer
// than any real one is none).
func (h *httpFailure) setModel(m string) {
	if h == nil || m == "" || len(m) > 256 {
		return
	}
	h.mu.Lock()
	h.model = m
	h.mu.Unlock()
}

// answeredModel is the model setModel recorded ("" when none).
func (h *httpFailure) answeredModel() string {
	if h == nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.model
}

// setTracker records the tracker of the call's request.
func (h *httpFailure) setTracker(t *sendtrack.Tracker) {
	h.mu.Lock()
	h.tracker = t
	h.mu.Unlock()
}

// wasNotSent reports whether the call's request, which NewTransport
// began to send, was not written whole (ended so, or still under way).
func (h *httpFailure) wasNotSent() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tracker != nil && !h.tracker.Sent()
}

// serviceTier is the tier setTier recorded ("" when none).
func (h *httpFailure) serviceTier() string {
	if h == nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tier
}

// maxOtherChoices bounds the choices besides the first an httpFailure
// keeps (OpenAI's n is at most 128).
const maxOtherChoices = 128

// addOther adds the delta c of the choice of index i (not 0) of a stream
// to what the call's other choices streamed (see otherChoices).
func (h *httpFailure) addOther(i float64, c middleware.Chunk) {
	if h == nil || i < 1 || i > maxOtherChoices || i != math.Trunc(i) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.others) < int(i) {
		h.others = append(h.others, nil)
	}
	a := h.others[int(i)-1]
	if a == nil {
		a = &middleware.Accumulator{}
		h.others[int(i)-1] = a
	}
	a.Add(c)
}

// otherChoices returns what the choices after the first (n > 1) of the
// call's stream delivered, in index order: langchaingo's backend reads the
// first alone, and the partial output of a cut stream, which the provider
// bills, counts them all (middleware.Response.OtherChoices).
func (h *httpFailure) otherChoices() []middleware.Choice {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.others) == 0 {
		return nil
	}
	out := make([]middleware.Choice, len(h.others))
	for i, a := range h.others {
		if a != nil {
			r := a.Response()
			out[i] = middleware.Choice{Message: r.Message, Refusal: r.Refusal, FinishReason: r.FinishReason}
		}
	}
	return out
}

// otherDelta is the chunk of a delta of a choice other than the first.
func otherDelta(content, reasoningContent string, reasoning *string, calls []*lcToolCall) middleware.Chunk {
	c := middleware.Chunk{Content: content, Reasoning: reasoningContent}
	if reasoning != nil {
		c.Reasoning += *reasoning
	}
	for i, d := range calls {
		if d == nil {
			continue
		}
		td := middleware.ToolCallDelta{Index: i}
		if d.Index != nil && *d.Index >= 0 && *d.Index < middleware.MaxToolCalls {
			td.Index = int(*d.Index)
		}
		if d.ID != nil {
			td.ID = *d.ID
		}
		if d.Function != nil {
			if d.Function.Name != nil {
				td.Name = *d.Function.Name
			}
			if d.Function.Arguments != nil {
				td.Arguments = *d.Function.Arguments
			}
		}
		c.ToolCalls = append(c.ToolCalls, td)
	}
	return c
}

// setAnswered records that checkedBody read a whole answer of status (2xx)
// that is JSON with choices: a failure to decode it is a malformed answer
// the provider billed.
func (h *httpFailure) setAnswered(status int) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.answered = status
	h.mu.Unlock()
}

// setEventStream records that the answer, of status (2xx), is an event
// stream: one the backend fails to decode as JSON is a call that did not
// ask for a stream answered with one (see classifyError).
func (h *httpFailure) setEventStream(status int) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.eventStream = status
	h.mu.Unlock()
}

// eventStreamStatus is the status setEventStream recorded (0: none).
func (h *httpFailure) eventStreamStatus() int {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.eventStream
}

// answeredStatus is the status setAnswered recorded (0: none).
func (h *httpFailure) answeredStatus() int {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.answered
}

// setDone records that checkedStream read a stream's "data: [DONE]".
func (h *httpFailure) setDone() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.done = true
	h.mu.Unlock()
}

// setUnconfirmed records that checkedStream ended a stream after its
// finish_reason without its [DONE].
func (h *httpFailure) setUnconfirmed() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.unconfirmed = true
	h.mu.Unlock()
}

// unkeepable reports whether the call's stream ended after its
// finish_reason without [DONE] and without a usage: whole to the call, but
// it may have been cut just before its usage chunk, and a cache does not
// keep it (middleware.CallFacts.Unkeepable).
func (h *httpFailure) unkeepable() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unconfirmed && h.usage.IsZero()
}

// sawDone reports whether NewTransport, installed, read the call's stream
// to its "data: [DONE]": a stream that ended so is complete, with or
// without a finish_reason (as go-openai and the OpenAI adapter read it).
func (h *httpFailure) sawDone() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.done
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

// checkedStream checks an event stream as langchaingo's openai backend
// reads it, and puts it in the one shape that backend assembles correctly:
//
//   - a data line that is not JSON, or whose fields have the wrong type
//     (both of which the backend skips), fails the read with a
//     middleware.ErrMalformed error, unless the connection ended inside
//     it (see cutInside): it is then dropped; a stream that ends without
//     "data: [DONE]" fails it with middleware.ErrStreamCut, unless it
//     was closed after choice 0's finish_reason (servers that never send
//     [DONE]): it then ends with a "data: [DONE]" of its own;
//   - tool-call fragments are held back and merged by index (as the
//     official SDKs do: any order, ids and names in any fragment, a new id at
//     a used index is a new call), and delivered as one complete delta per
//     call just before the finish_reason: the backend appends untyped
//     fragments to its last call, so it mis-assembles interleaved ones; a
//     fragment whose index is negative, not an integer, or not below
//     middleware.MaxToolCalls fails the read with middleware.ErrMalformed
//     (the merge would drop its call);
//   - choices other than index 0 are dropped (the backend reads
//     choices[0] of every chunk, whatever its index) — what they
//     delivered is kept in the call's slot, for the partial output of a
//     cut stream to count every choice's (httpFailure.otherChoices) —,
//     and "reasoning" is
//     renamed "reasoning_content", the name the backend reads;
//   - the last usage a chunk reported (vLLM's and Gemini's, cumulative in
//     every chunk) is kept in the call's slot: a stream cut after it is
//     billed that count, the provider's, as through the go-openai
//     transport, not an estimate (httpFailure.streamedUsage);
//   - a choice-0 entry after choice 0's finish_reason that has none
//     (Azure's asynchronous content filter annotation, a usage chunk with
//     an empty choice) gets the finish_reason read last: the backend
//     keeps the finish_reason of the last entry, null included, and the
//     adapter would take the complete answer for a cut one;
//   - Groq's usage in its x_groq member (the call's, in the last chunk of
//     a stream that did not ask for include_usage), which the backend
//     does not read, is given to it as the chunk's usage: the provider's
//     count is billed, never an estimate;
//   - a usage count (in "usage" or Groq's x_groq) or a created time the
//     backend cannot decode into its types (a count of 12.0, a created
//     time as a string) is rewritten into them (see normalizeAnswer): the
//     backend would skip the chunk, its usage with it; a count in
//     "usage" that is no count (negative, beyond int range) fails the
//     read with middleware.ErrMalformed (one in x_groq is not read);
//   - an error object in a data line (an "error" member that is not null
//     or empty, vLLM's {"object":"error"}) fails the read with the
//     provider's error (see embeddedError), and so does choice 0's
//     finish_reason "error": the backend would skip the one and take the
//     other for a finish.
//
// Lines that need none of this pass unchanged.
type checkedStream struct {
	rc       io.ReadCloser
	slot     *httpFailure // the call's, told of the [DONE] read; nil: none
	br       *bufio.Reader
	out      []byte // transformed bytes not yet read
	line     []byte
	acc      middleware.Accumulator // the held-back tool calls
	held     bool                   // acc holds calls not yet delivered
	sent     bool                   // the calls were delivered
	begun    bool                   // a line was read
	done     bool                   // "data: [DONE]" was read
	chunked  bool                   // a chunk (a data line of JSON) was read
	finished bool                   // choice 0's finish_reason was read
	reason   string                 // choice 0's last finish_reason
	err      error
}

func (s *checkedStream) Read(p []byte) (int, error) {
	if s.br == nil {
		s.br = bufio.NewReaderSize(s.rc, 16<<10)
	}
	for len(s.out) == 0 && s.err == nil {
		s.step()
	}
	if len(s.out) > 0 {
		n := copy(p, s.out)
		s.out = s.out[n:]
		return n, nil
	}
	return 0, s.err
}

// step reads one line and appends what it becomes to out, or sets err.
func (s *checkedStream) step() {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(s.line) > maxStreamLine {
				// A line that does not end (a broken or hostile server):
				// failed, never gathered for as long as it comes.
				s.out, s.line, s.err = nil, nil, &streamFault{kind: middleware.ErrMalformed, msg: errLineTooLong}
				return
			}
			line, err = s.br.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if len(line) > 0 {
		if ferr := s.transform(line); ferr != nil && !cutInside(line, err, ferr) {
			s.out, s.err = nil, ferr
			return
		}
	}
	switch {
	case err == io.EOF && !s.done && s.finished:
		// Servers that never send [DONE] (some llama.cpp forks, older TGI
		// and text-generation-webui) end a finished stream by closing it:
		// closed after choice 0's finish_reason, it is complete, and ends
		// as the backend expects.
		s.done = true
		s.out = append(s.out, "data: [DONE]\n\n"...)
		s.err = io.EOF
		s.slot.setUnconfirmed()
	case err == io.EOF && !s.done:
		s.err = &streamFault{kind: middleware.ErrStreamCut, msg: "the stream ended without [DONE]", cause: io.ErrUnexpectedEOF}
	case err != nil:
		s.err = err
	}
}

// cutInside reports whether the stream ended inside line: the read ended
// with err before the line's break, and what there is of the line is not
// whole JSON (transform failed with ferr for that). Such a line is
// discarded, as the SSE spec discards an unterminated event, and the end of
// the stream is handled as for any other (a cut, unless choice 0 had
// finished): it is not a malformed chunk, which is not retried.
func cutInside(line []byte, err, ferr error) bool {
	var serr *json.SyntaxError
	return err != nil && line[len(line)-1] != '\n' && errors.As(ferr, &serr)
}

// transform appends what one line (with its line ending) becomes to out.
func (s *checkedStream) transform(line []byte) error {
	if !s.begun {
		// A byte order mark before the first line is not part of it (the
		// SSE spec): the backend would skip the line, and its event.
		s.begun = true
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	if len(line) > 0 && line[0] != 'd' {
		// A data line indented by white space is one for go-openai, which
		// trims each line: the backend, which would skip it, is given it
		// unindented, never a shorter answer.
		if t := bytes.TrimLeftFunc(line, unicode.IsSpace); bytes.HasPrefix(t, dataPrefix) {
			line = t
		}
	}
	text := bytes.TrimRight(line, "\r\n")
	payload, ok := bytes.CutPrefix(text, dataPrefix)
	if !ok {
		s.out = append(s.out, line...)
		return nil
	}
	payload = bytes.TrimSpace(payload)
	switch {
	case len(payload) == 0:
		s.out = append(s.out, line...)
		return nil
	case string(payload) == "[DONE]":
		if !s.chunked {
			// Not one chunk before it: no answer (the backend would
			// return an empty one as a success).
			return &streamFault{kind: middleware.ErrMalformed, msg: "stream has no chunks"}
		}
		s.done = true
		s.slot.setDone()
		s.flushCalls()
		s.out = append(s.out, line...)
		return nil
	}
	s.chunked = true
	var c lcChunk
	normalized := false
	if err := json.Unmarshal(payload, &c); err != nil {
		// A usage count of 12.0, a created time as a string: put in the
		// types the backend holds (see normalizeAnswer), or malformed.
		var terr *json.UnmarshalTypeError
		fixed, changed, nerr := normalizeAnswer(payload, true)
		if !errors.As(err, &terr) || nerr != nil || !changed {
			return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line is not a valid chunk", cause: err}
		}
		c = lcChunk{}
		if err := json.Unmarshal(fixed, &c); err != nil {
			return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line is not a valid chunk", cause: err}
		}
		payload, normalized = fixed, true
	}
	if len(c.Error) > 0 || string(c.Object) == `"error"` {
		if f := embeddedError(payload); f != nil {
			return f
		}
	}
	s.slot.setTier(c.ServiceTier)
	s.slot.setModel(c.Model)
	rewrite, finish, wasFinished := false, false, s.finished
	groq := c.groqUsage()
	if c.Usage != nil {
		s.slot.setOtherCached(payload)
		s.slot.setUsage(c.Usage)
	} else if groq != nil {
		var u lcUsage
		if json.Unmarshal(groq, &u) == nil {
			s.slot.setUsage(&u)
		}
	}
	rewrite = groq != nil || normalized
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			// Dropped for the backend, kept for the bill: the partial
			// output of a cut stream counts every choice's.
			s.slot.addOther(ch.Index, otherDelta(ch.Delta.Content, ch.Delta.ReasoningContent, ch.Delta.Reasoning, ch.Delta.ToolCalls))
			rewrite = true
			continue
		}
		if wasFinished && (ch.FinishReason == nil || *ch.FinishReason == "") {
			// A choice-0 entry after the finish with no finish_reason
			// (Azure's asynchronous content filter annotation, a usage
			// chunk's empty choice): the backend copies every entry's
			// finish_reason, so it would forget the finish.
			rewrite = true
		}
		if ch.Delta.Reasoning != nil || len(ch.Delta.ToolCalls) > 0 {
			rewrite = true
		}
		for i, d := range ch.Delta.ToolCalls {
			if d == nil {
				return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed tool call is null"}
			}
			td := middleware.ToolCallDelta{Index: i}
			if d.Index != nil {
				x := *d.Index
				if x < 0 || x >= middleware.MaxToolCalls || x != math.Trunc(x) {
					// The Accumulator would drop the call: an error, never
					// an answer without it.
					return &streamFault{kind: middleware.ErrMalformed, msg: fmt.Sprintf("a streamed tool call's index %v is out of range", x)}
				}
				td.Index = int(x)
			}
			if td.Index >= middleware.MaxToolCalls {
				return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed chunk has too many tool calls"}
			}
			if d.ID != nil {
				td.ID = *d.ID
			}
			if d.Function != nil {
				if d.Function.Name != nil {
					td.Name = *d.Function.Name
				}
				if d.Function.Arguments != nil {
					td.Arguments = *d.Function.Arguments
				}
			}
			s.acc.Add(middleware.Chunk{ToolCalls: []middleware.ToolCallDelta{td}})
			s.held = true
		}
		if ch.FinishReason != nil && *ch.FinishReason == "error" {
			// OpenRouter's failure of the provider behind it, when it
			// sends no error object with it: no finish, a failure.
			return &streamFault{kind: httperr.Classify(httperr.EmbeddedStatus("", ""), "", ""),
				msg: `the stream finished with finish_reason "error"`}
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			finish, s.finished, s.reason = true, true, *ch.FinishReason
		}
	}
	if finish {
		s.flushCalls()
	}
	if !rewrite {
		s.out = append(s.out, line...)
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line is not a valid chunk", cause: err}
	}
	choices, _ := m["choices"].([]any)
	kept := choices[:0]
	for _, ch := range choices {
		cm, _ := ch.(map[string]any)
		if cm == nil || fmt.Sprint(cm["index"]) != "0" && cm["index"] != nil {
			continue
		}
		if r, _ := cm["finish_reason"].(string); wasFinished && r == "" {
			cm["finish_reason"] = s.reason
		}
		if delta, _ := cm["delta"].(map[string]any); delta != nil {
			delete(delta, "tool_calls")
			if r, ok := delta["reasoning"]; ok {
				delete(delta, "reasoning")
				if _, has := delta["reasoning_content"]; !has {
					delta["reasoning_content"] = r
				}
			}
		}
		kept = append(kept, cm)
	}
	m["choices"] = kept
	if groq != nil {
		// The provider's count, where the backend reads a usage: billed,
		// never an estimate.
		m["usage"] = groq
	}
	b, err := json.Marshal(m)
	if err != nil {
		return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line cannot be re-encoded", cause: err}
	}
	s.out = append(s.out, "data: "...)
	s.out = append(s.out, b...)
	s.out = append(s.out, "\n\n"...)
	return nil
}

// flushCalls delivers the held tool calls, once, one after the other: a
// chunk with each call's id, type, name and first piece of arguments, then
// chunks with the rest of its arguments in pieces (langchaingo's backend
// reads lines of at most 64 KiB).
func (s *checkedStream) flushCalls() {
	if !s.held || s.sent {
		return
	}
	s.sent = true
	for i, c := range s.acc.Response().Message.ToolCalls {
		args := c.Arguments
		first := true
		for first || args != "" {
			n := min(len(args), maxArgsPiece)
			for n < len(args) && !utf8.RuneStart(args[n]) {
				n--
			}
			d := map[string]any{"index": i, "function": map[string]any{"arguments": args[:n]}}
			if first {
				d["id"], d["type"] = c.ID, "function"
				d["function"].(map[string]any)["name"] = c.Name
			}
			args, first = args[n:], false
			b, _ := json.Marshal(map[string]any{"object": "chat.completion.chunk",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"tool_calls": []any{d}}}}})
			s.out = append(s.out, "data: "...)
			s.out = append(s.out, b...)
			s.out = append(s.out, "\n\n"...)
		}
	}
}

var (
	utf8BOM    = []byte("\xef\xbb\xbf") // the byte order mark, U+FEFF
	dataPrefix = []byte("data:")
)

// maxArgsPiece bounds the bytes of arguments per delivered chunk: escaped,
// a piece stays well within langchaingo's 64 KiB line limit.
const maxArgsPiece = 8 << 10

func (s *checkedStream) Close() error { return s.rc.Close() }

// lcChunk is the part of a chunk checkedStream reads, with the types
// langchaingo's openai backend decodes it with (a chunk that does not
// decode is one the backend would skip). Object and Error, which the
// backend does not read, are kept raw: only an error object is looked at.
type lcChunk struct {
	ID      string          `json:"id"`
	Created float64         `json:"created"`
	Model   string          `json:"model"`
	Object  json.RawMessage `json:"object"`
	Error   json.RawMessage `json:"error"`
	Choices []struct {
		Index float64 `json:"index"`
		Delta struct {
			Role             string        `json:"role"`
			Content          string        `json:"content"`
			ReasoningContent string        `json:"reasoning_content"`
			Reasoning        *string       `json:"reasoning"`
			ToolCalls        []*lcToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *lcUsage `json:"usage"`
	// The tier the provider processed the call at, which the backend
	// does not decode (see httpFailure.setTier). Raw: never an error.
	ServiceTier json.RawMessage `json:"service_tier"`
	// Groq's vendor object, whose usage (the call's, in the last chunk
	// of a stream that did not ask for include_usage) the backend does
	// not read. Raw: what is not a usage in it is never an error.
	XGroq json.RawMessage `json:"x_groq"`
}

// groqUsage returns the usage object of Groq's x_groq member raw, or nil
// when it has none: an object of the counts the backend reads as ints.
func (c *lcChunk) groqUsage() json.RawMessage {
	if c.Usage != nil || len(c.XGroq) == 0 {
		return nil
	}
	var x struct {
		Usage json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(c.XGroq, &x) != nil || len(x.Usage) == 0 || x.Usage[0] != '{' {
		return nil
	}
	var u lcUsage
	if json.Unmarshal(x.Usage, &u) == nil {
		return x.Usage
	}
	// Counts of 12.0 (see normalizeAnswer).
	fixed, err := usageValue(x.Usage)
	if err != nil || fixed == nil || json.Unmarshal(fixed, &u) != nil {
		return nil
	}
	return fixed
}

// lcUsage is a usage object with the types the backend decodes it with.
type lcUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

// core returns u as the core's usage, read as UsageFromGenerationInfo
// reads the backend's: the output at least what the total proves was
// produced (reasoning a server leaves out of completion_tokens).
func (u *lcUsage) core() middleware.Usage {
	c := middleware.Usage{InputTokens: int64(u.PromptTokens), OutputTokens: int64(u.CompletionTokens),
		CachedInputTokens: int64(min(u.PromptTokensDetails.CachedTokens, u.PromptTokens)),
		ReasoningTokens:   int64(u.CompletionTokensDetails.ReasoningTokens),
		AudioInputTokens:  int64(u.PromptTokensDetails.AudioTokens), AudioOutputTokens: int64(u.CompletionTokensDetails.AudioTokens)}
	if c.Negative() || u.TotalTokens < 0 {
		return c
	}
	switch total := int64(u.TotalTokens); {
	case total-c.InputTokens > c.OutputTokens:
		c.OutputTokens = total - c.InputTokens
	case c.ReasoningTokens > c.OutputTokens:
		c.OutputTokens = middleware.SatAdd(c.OutputTokens, c.ReasoningTokens)
	}
	return c
}

// readAnswer reads a whole plain answer once, for what checkedBody
// decides before the backend decodes it: why it is no answer ("" when it
// is one) — it is not JSON, or its "choices" are missing, null or empty —
// and whether the backend's types cannot hold its created time or usage
// (see normalizeAnswer); and its service_tier member, raw, and its model
// ("" when it is no string). An answer without choices returns its usage
// too (nil: none), which the provider bills.
func readAnswer(body []byte) (why string, undecodable bool, tier json.RawMessage, model string, usage *lcUsage) {
	var a struct {
		Choices     json.RawMessage `json:"choices"`
		Created     int64           `json:"created"`
		Usage       lcUsage         `json:"usage"`
		ServiceTier json.RawMessage `json:"service_tier"`
		Model       json.RawMessage `json:"model"`
	}
	err := json.Unmarshal(body, &a) // checks the whole body is valid JSON first
	var serr *json.SyntaxError
	if errors.As(err, &serr) {
		return "the answer is not JSON", false, nil, "", nil
	}
	var terr *json.UnmarshalTypeError
	if errors.As(err, &terr) && terr.Field == "" {
		return "", false, nil, "", nil // not an object: the backend fails on it
	}
	var m string
	if len(a.Model) > 0 && a.Model[0] == '"' && json.Unmarshal(a.Model, &m) != nil {
		m = ""
	}
	if c := bytes.TrimSpace(a.Choices); len(c) == 0 || string(c) == "null" ||
		c[0] == '[' && len(bytes.TrimSpace(c[1:len(c)-1])) == 0 {
		if err != nil {
			// A usage of the wrong type: none read (the estimate).
			return "the answer has no choices", false, a.ServiceTier, m, nil
		}
		return "the answer has no choices", false, a.ServiceTier, m, &a.Usage
	}
	return "", err != nil, a.ServiceTier, m, nil // a type error in its created time or usage
}

type lcToolCall struct {
	Index    *float64 `json:"index"`
	ID       *string  `json:"id"`
	Type     *string  `json:"type"`
	Function *struct {
		Name      *string `json:"name"`
		Arguments *string `json:"arguments"`
	} `json:"function"`
}

// checkedBody is the body of a chat completion answered in one piece
// (status 2xx, not an event stream). It reads the body whole before the
// backend decodes it, and fails the read with the error object the body
// may carry instead of an answer (see embeddedError): the backend would
// decode it as an answer without choices, an untyped "empty response"
// error, or, beside a choice, as a success. A usage count or created
// time the backend cannot decode into its types (a count of 12.0, a
// created time as a string) is rewritten into them (see normalizeAnswer),
// the rest of the body kept; a body the backend decodes is given to it as
// it came. A body lost mid-read fails
// with a [middleware.AnswerCutError], a whole body that is not JSON or
// has no choices with a [middleware.AnswerMalformedError]: the provider
// billed the answer.
//
// A body that begins as an event stream does (a stream labelled
// application/json, which the backend reads as one when it streams) is
// checked as one (see checkedStream).
type checkedBody struct {
	rc     io.ReadCloser
	status int
	slot   *httpFailure   // the call's (see checkedStream)
	r      *bytes.Reader  // the body read, nil until the first Read
	tail   error          // what reading the body ended with, after r
	stream *checkedStream // the body is an event stream
}

func (b *checkedBody) Read(p []byte) (int, error) {
	if b.stream != nil {
		return b.stream.Read(p)
	}
	if b.r == nil {
		br := bufio.NewReaderSize(b.rc, 16<<10)
		if ssesniff.Sniff(br) {
			b.stream = &checkedStream{rc: b.rc, br: br, slot: b.slot}
			return b.stream.Read(p)
		}
		body, err := io.ReadAll(io.LimitReader(br, maxAnswerBody+1))
		if int64(len(body)) > maxAnswerBody {
			// An answer that does not end (a broken or hostile server):
			// failed, never read for as long as it comes. The provider
			// produced something, and may bill it.
			f := &streamFault{kind: middleware.ErrMalformed, msg: errBodyTooLarge,
				cause: &middleware.AnswerMalformedError{StatusCode: b.status, Err: errors.New(errBodyTooLarge)}}
			b.r, b.tail = bytes.NewReader(nil), f
			return 0, f
		}
		if err == nil && bytes.Contains(body, []byte(`"error"`)) {
			if f := embeddedError(body); f != nil {
				b.r, b.tail = bytes.NewReader(nil), f
				return 0, f
			}
		}
		if err == nil {
			// A whole answer that is no answer — not JSON (which the
			// backend reads as a syntax error, or, cut short yet ended
			// cleanly, as an unexpected EOF: a network failure), or one
			// without choices (the backend's untyped "empty response") —
			// is a malformed answer, as the OpenAI adapter reads it, that
			// the provider produced and bills.
			why, undecodable, tier, model, usage := readAnswer(body)
			if usage != nil {
				// An answer without choices that counts a usage: the
				// provider bills that usage, which the adapter returns
				// with the malformed answer's error (streamedUsage).
				b.slot.setTier(tier)
				b.slot.setModel(model)
				b.slot.setOtherCached(body)
				b.slot.setUsage(usage)
			}
			if why != "" {
				f := &streamFault{kind: middleware.ErrMalformed, msg: why,
					cause: &middleware.AnswerMalformedError{StatusCode: b.status, Err: errors.New(why)}}
				b.r, b.tail = bytes.NewReader(nil), f
				return 0, f
			}
			if undecodable {
				// A usage count of 12.0, a created time as a string:
				// put in the types the backend holds. A count that is
				// no count (negative, beyond int range) is left, for
				// the backend to fail on.
				if fixed, changed, err := normalizeAnswer(body, false); err == nil && changed {
					body = fixed
				}
			}
			// A member of the wrong type fails the backend's decoding:
			// classify reads it as malformed, the answer being whole.
			b.slot.setAnswered(b.status)
			b.slot.setTier(tier)
			b.slot.setModel(model)
			b.slot.setOtherCached(body)
		}
		b.r, b.tail = bytes.NewReader(body), err
		if err == nil {
			b.tail = io.EOF
		} else {
			b.tail = &middleware.AnswerCutError{StatusCode: b.status, Read: int64(len(body)), Err: err}
		}
	}
	if b.r.Len() > 0 {
		return b.r.Read(p)
	}
	return 0, b.tail
}

func (b *checkedBody) Close() error { return b.rc.Close() }

// embeddedError returns the fault an error object in a 2xx body or in a
// stream's data line stands for; nil when payload carries none. It reads
// an "error" member (OpenAI's and vLLM's error event, OpenRouter's error
// beside the choice it failed, a bare error string), unless it is null, an
// empty string, or has no message, type or code; and vLLM's
// {"object":"error","message","type","code"}. With no HTTP status of its
// own, the error's code or type stands for one (httperr.EmbeddedStatus),
// as the OpenAI adapter classifies the same objects.
func embeddedError(payload []byte) *streamFault {
	var b struct {
		Object json.RawMessage `json:"object"`
		Error  json.RawMessage `json:"error"`
		errorFields
	}
	if json.Unmarshal(payload, &b) != nil {
		return nil
	}
	var f errorFields
	switch {
	case len(b.Error) > 0 && b.Error[0] == '"':
		f.Message = b.Error
	case len(b.Error) > 0 && b.Error[0] == '{':
		if json.Unmarshal(b.Error, &f) != nil {
			return nil
		}
	case jsonScalar(b.Object) == "error":
		f = b.errorFields
	}
	msg, typ, code := jsonMessage(f.Message), jsonScalar(f.Type), jsonScalar(f.Code)
	if msg == "" && typ == "" && code == "" {
		return nil
	}
	return &streamFault{kind: httperr.Classify(httperr.EmbeddedStatus(code, typ), code, typ),
		msg: msg, typ: typ, code: code}
}

// errorFields are the members of an error object embeddedError reads.
type errorFields struct {
	Message json.RawMessage `json:"message"`
	Type    json.RawMessage `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// jsonScalar is a JSON string's value, or a number's or boolean's text; ""
// for anything else.
func jsonScalar(v json.RawMessage) string {
	var s string
	switch {
	case len(v) == 0:
		return ""
	case v[0] == '"':
		if json.Unmarshal(v, &s) != nil {
			return ""
		}
		return s
	case string(v) == "null" || v[0] == '{' || v[0] == '[':
		return ""
	}
	return string(v)
}

// jsonMessage is an error message: a string, or a list of strings (as
// some servers send), joined with ", ".
func jsonMessage(v json.RawMessage) string {
	var msgs []string
	if len(v) > 0 && v[0] == '[' && json.Unmarshal(v, &msgs) == nil {
		return strings.Join(msgs, ", ")
	}
	return jsonScalar(v)
}

// streamFault is what checkedStream and checkedBody fail a read with;
// classify makes it a ProviderError of its kind.
type streamFault struct {
	kind  error  // a middleware sentinel: ErrMalformed, ErrStreamCut, or the class of an error object
	msg   string // for an error object, the provider's message
	cause error
	// typ and code are those of the provider's error object, if any.
	typ, code string
}

func (e *streamFault) Error() string {
	if e.msg == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.msg
}
func (e *streamFault) Is(target error) bool { return target == e.kind }
func (e *streamFault) Unwrap() error        { return e.cause }
