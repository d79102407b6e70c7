package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/internal/redact"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// apiError is an OpenAI-shaped error: the body every official SDK reads
// into its APIError ({"error": {"message", "type", "param", "code"}}).
type apiError struct {
	Status     int
	Message    string
	Type       string
	Code       string
	Param      string // the request parameter a provider's error blamed ("": null)
	RetryAfter time.Duration
	NoRetry    bool // x-should-retry: false (the official SDKs honour it)
}

type wireError struct {
	Error wireErrorBody `json:"error"`
}

type wireErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Error implements error: an *apiError is also what a refusal inside the
// fallback chain of a Responses call returns (see apiErrorOf).
func (e *apiError) Error() string { return e.Message }

// apiErrorOf is the OpenAI-shaped error of err: err itself when it is an
// *apiError, else classify's.
func (s *Server) apiErrorOf(err error) *apiError {
	if e, ok := errors.AsType[*apiError](err); ok {
		return e
	}
	return classify(err, s.secrets...)
}

func (e *apiError) body() []byte {
	var code, param *string
	if e.Code != "" {
		code = &e.Code
	}
	if e.Param != "" {
		param = &e.Param
	}
	b, _ := json.Marshal(wireError{wireErrorBody{Message: e.Message, Type: e.Type, Param: param, Code: code}})
	return b
}

func (e *apiError) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if id := h.Get(CallIDHeader); id != "" && h.Get("X-Request-Id") == "" {
		// The gateway's own answer: its call's id is the request id the
		// SDKs keep in their error (openai-go's, the Node package's
		// requestID), the one its log lines name.
		h.Set("X-Request-Id", id)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10))
		// Rounded up, as Retry-After is: a client that waits what it says
		// (openai-go and the Node package read it first) is never early.
		h.Set("Retry-After-Ms", strconv.FormatInt(int64((e.RetryAfter+time.Millisecond-1)/time.Millisecond), 10))
	}
	if e.NoRetry {
		h.Set("X-Should-Retry", "false")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.body())
}

var (
	errUnauthorized = &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
		Message: "Incorrect API key provided. Use a virtual key of this gateway as the bearer token (Authorization: Bearer <key>)."}
	errNoRoute = &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
		Message: "Unknown request URL. The gateway serves /v1/chat/completions, /v1/models, /v1/spend, /v1/runs/{id} and passes other /v1/ paths of the OpenAI API to its upstream (also without the /v1 prefix): an OpenAI client's base URL is the gateway's address with /v1."}
	errUnreadableBody = &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unreadable_body",
		Message: "tokenwise/gateway: the request body could not be read"}
	errTooLarge = &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
		Message: "the request body is larger than the gateway's limits.max_body"}
	errUploadTooLarge = &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
		Message: "the request body is larger than the gateway's limits.max_upload"}
	errEncodedBody = &apiError{Status: http.StatusUnsupportedMediaType, Type: "invalid_request_error", Code: "unsupported_content_encoding",
		Message: "tokenwise/gateway: the request body has a Content-Encoding (gzip, deflate...); the gateway reads the JSON of the request to police it, as OpenAI's API does: send it unencoded"}
	errMethodNotAllowed = &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed", NoRetry: true,
		Message: "tokenwise/gateway: this endpoint of the gateway answers GET (and HEAD) only"}
	errEmptyBody = &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "empty_body",
		Message: "tokenwise/gateway: the request body is empty: a chat completion request is a JSON object"}
)

// maxErrorBody bounds how much of an error answer shapeError reads.
const maxErrorBody = 1 << 20

// shapeError makes resp, an error answer of the transport (the chain's,
// or the upstream's own passed back), one every OpenAI client reads: the
// body stays when it is an OpenAI error object; any other (an HTML page
// of a proxy, another server's error shape, a cut or empty body) becomes
// an OpenAI error of the same status that quotes it. Either way the
// secrets (the upstreams' keys) and key-shaped strings are masked, and
// the Content-Type is application/json.
func shapeError(resp *http.Response, secrets []string) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil || !isOpenAIError(b) {
		quote := "an empty body"
		if len(b) > 0 {
			const excerpt = 512
			quote = redact.Mask(string(b), secrets...) // whole: a key cut at the excerpt's end would not be found
			if len(quote) > excerpt {
				quote = quote[:excerpt] + " [cut at 512 bytes]"
			}
			quote = strings.ToValidUTF8(quote, "\uFFFD")
		}
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			// A page of a server that serves no such path: most often a
			// base_url without the /v1 the server serves the API under.
			hint = " (the upstream serves no such path: when every call gets this, check the base_url of the upstream in the gateway file; OpenAI-compatible servers such as vLLM, Ollama and LiteLLM serve the API under /v1, as OpenAI's https://api.openai.com/v1)"
		}
		b = (&apiError{Type: httperr.ErrorType(resp.StatusCode), Code: "upstream_error",
			Message: "tokenwise/gateway: the upstream answered " + strconv.Itoa(resp.StatusCode) + " without an OpenAI error object" + hint + ": " + quote}).body()
	} else {
		b = redact.Bytes(b, secrets...) // an upstream's key it echoes in its message (masking keeps the JSON whole)
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Del("Content-Encoding")
	replaceBody(resp, b)
}

// replaceBody makes b the body of resp, its Content-Length said (a proxy
// passes the header on as it is).
func replaceBody(resp *http.Response, b []byte) {
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
}

// isOpenAIError reports whether b is an OpenAI error body: a JSON object
// whose "error" member is an object with a string "message" and a string
// "type" (what the official SDKs read into their API error), member
// names matched exactly.
func isOpenAIError(b []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return false
	}
	var e map[string]json.RawMessage
	if json.Unmarshal(top["error"], &e) != nil || e == nil {
		return false
	}
	for _, k := range [...]string{"message", "type"} {
		if v := e[k]; len(v) == 0 || v[0] != '"' {
			return false // absent, null or not a string (RawMessage holds the value without spaces around it)
		}
	}
	return true
}

// kindStatus is the HTTP status of a provider failure that came without
// one, by its kind: what a client retries (429) or gives up on (400, 401)
// as it would on the provider's own answer; 502 for a failure of the
// provider.
func kindStatus(pe *middleware.ProviderError) int {
	switch {
	case errors.Is(pe, middleware.ErrRateLimited), errors.Is(pe, middleware.ErrQuotaExceeded):
		return http.StatusTooManyRequests
	case errors.Is(pe, middleware.ErrAuth):
		return http.StatusUnauthorized
	case errors.Is(pe, middleware.ErrBadRequest), errors.Is(pe, middleware.ErrContextWindow), errors.Is(pe, middleware.ErrContentFilter):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

// quotaNote ends the message of a refusal no retry can pass (a budget
// spent, a run's call limit), a 429 like OpenAI's insufficient_quota: the
// clients that tell a spent quota from a passing rate limit by the code
// insufficient_quota (this refusal's code says which limit) read the
// message too (LangChain JS and LangGraph match "insufficient quota"), and
// stop instead of retrying.
const quotaNote = " (insufficient quota: no retry will pass until the limit is raised or its period resets)"

// classify maps a chain failure to the OpenAI-shaped error a client of the
// gateway gets. secrets are masked out of the message.
func classify(err error, secrets ...string) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae // the gateway's own refusal, from its layer of the chain
	}
	if bt, ok := errors.AsType[*bodyTimeout](err); ok {
		return bt.apiError() // the request's body did not come in time
	}
	msg := redact.Mask(err.Error(), secrets...)
	var ra time.Duration
	if d, ok := middleware.RetryAfter(err); ok {
		ra = d
	}
	switch {
	case errors.Is(err, middleware.ErrStoreUnavailable):
		// The budget's store (Redis) did not answer: not the team's
		// quota, not the upstream's time; another try may find it.
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "budget_store_unavailable", Message: msg}
	case errors.Is(err, middleware.ErrBudget):
		// A 429 like OpenAI's own insufficient_quota, which clients
		// already handle; never worth a retry.
		return &apiError{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "budget_exceeded", Message: msg + quotaNote, NoRetry: true}
	case errors.Is(err, guard.ErrMaxCalls):
		return &apiError{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "run_call_limit", Message: msg + quotaNote, NoRetry: true}
	case errors.Is(err, middleware.ErrRunStore):
		// A shared run's call count is out of reach: the call is refused
		// (its run's limits could not hold); another try may find it.
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "run_store_unavailable", Message: msg}
	case errors.Is(err, policies.ErrUnknownTeam):
		return &apiError{Status: http.StatusForbidden, Type: "invalid_request_error", Code: "unknown_team", Message: msg, NoRetry: true}
	case errors.Is(err, ratelimit.ErrLimited):
		return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: msg, RetryAfter: ra}
	case errors.Is(err, breaker.ErrOpen):
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "circuit_open", Message: msg, RetryAfter: ra}
	case errors.Is(err, guard.ErrRunDeadline):
		// The run's deadline has passed: every call of the run will be
		// refused so, never worth a retry.
		return &apiError{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "timeout", Message: msg, NoRetry: true}
	case errors.Is(err, middleware.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "timeout", Message: msg}
	case errors.Is(err, middleware.ErrStreamCut), errors.Is(err, middleware.ErrMalformed), errors.Is(err, middleware.ErrNetwork):
		return &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_error", Message: msg}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 499, Type: "server_error", Code: "canceled", Message: msg}
	}
	var pe *middleware.ProviderError
	if errors.As(err, &pe) {
		status := pe.StatusCode
		if status < 400 {
			// An error object inside a 200 body or a stream: the status
			// its kind stands for.
			status = kindStatus(pe)
		}
		typ := pe.Type
		if typ == "" {
			typ = httperr.ErrorType(status)
		}
		// The provider's spent quota (insufficient_quota, a 429) never
		// passes on a retry: the SDKs that retry every 429 are told not to.
		return &apiError{Status: status, Type: typ, Code: pe.Code, Param: pe.Param, Message: msg, RetryAfter: ra,
			NoRetry: errors.Is(pe, middleware.ErrQuotaExceeded)}
	}
	if errors.Is(err, middleware.ErrContextWindow) {
		// The team's context budget cannot make the conversation fit
		// (compact.TooLargeError): the client's request is too large, as
		// OpenAI says of a prompt over a model's context; no retry of it
		// can be served.
		return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "context_length_exceeded", Message: msg, NoRetry: true}
	}
	return &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "gateway_error", Message: msg}
}

// encodedBody reports whether r's body is sent with a Content-Encoding
// other than identity, which the gateway does not decode.
func encodedBody(r *http.Request) bool {
	ce := r.Header.Get("Content-Encoding")
	return ce != "" && !strings.EqualFold(strings.TrimSpace(ce), "identity")
}
