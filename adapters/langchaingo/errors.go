package langchaingo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/internal/redact"
	"github.com/tokenwise/tokenwise/middleware"
)

// ErrUnknownModel is matched by the [*UnknownModelError] a call returns when
// the model it asks for (or the default model) is not in the [Models].
var ErrUnknownModel = errors.New("tokenwise/langchaingo: unknown model")

// ErrNilModel is matched by the error every call of a [Model] returns when
// a model of its [Models] is nil, or a nil pointer (the *openai.LLM of an
// openai.New that failed): the error names the model.
var ErrNilModel = errors.New("tokenwise/langchaingo: nil model")

// ErrNoEmbeddings is returned by [Model.CreateEmbedding] when the default
// model does not create embeddings.
var ErrNoEmbeddings = errors.New("tokenwise/langchaingo: the default model does not create embeddings")

// UnknownModelError reports a model name with no [llms.Model] behind it.
type UnknownModelError struct {
	Model string   // the name asked for; "" when no model was named and there is no default
	Known []string // the names of the Models, sorted
}

func (e *UnknownModelError) Error() string {
	known := strings.Join(e.Known, ", ")
	if e.Model == "" {
		return "tokenwise/langchaingo: no model requested and no default model (known models: " + known + ")"
	}
	return fmt.Sprintf("tokenwise/langchaingo: unknown model %q (known models: %s)", e.Model, known)
}

// Is matches ErrUnknownModel.
func (e *UnknownModelError) Is(target error) bool { return target == ErrUnknownModel }

// errEventStreamAnswer is the message of a call that did not ask for a
// stream answered with an event stream.
const errEventStreamAnswer = "the server answered with an event stream (Content-Type: text/event-stream), not the JSON answer the call asked for"

// callFacts is what classify knows of the failed call.
type callFacts struct {
	provider, model string
	failure         *httpFailure // filled by NewTransport, if installed
	streamErr       error        // the first error the chain's stream func returned
	streaming       bool
}

// statusText is the error text langchaingo's openai and anthropic backends
// make of an HTTP error: "API returned unexpected status code: 429: <message>".
var statusText = regexp.MustCompile(`API returned unexpected status code: (\d{3})(?:: (?s:(.*)))?`)

// classify turns the inner model's error into a core error. It is the one
// place where the adapter interprets errors:
//
//  1. the caller's context ended: the context's error (and its cause), so
//     that a cancellation stays a cancellation whatever text the backend
//     made of it;
//  2. the chain's stream func stopped the stream: that error, unwrapped;
//  3. errors that already are core errors (a nested tokenwise model) pass;
//  4. the HTTP failure recorded by [NewTransport], if installed: status,
//     provider code and type, Retry-After;
//  5. typed errors: *llms.Error, net.Error, an error with a StatusCode;
//  6. the status line langchaingo's openai and anthropic backends write
//     into their error text, since they return no typed error, and the
//     openai backend's fixed texts (a network failure, an answer without
//     choices).
//
// Anything else is returned unchanged, its text masked.
//
// The message and the cause's text of the error returned are masked (see
// internal/redact): the request's credentials, when NewTransport saw them,
// and key-shaped strings, which a backend may copy from the provider's
// body into its error text.
func classify(ctx context.Context, err error, c callFacts) error {
	out := classifyError(ctx, err, c)
	if ctx.Err() != nil {
		if c.failure.wasNotSent() {
			// Ended before the request was written: never billed.
			return &middleware.NotSentError{Err: out}
		}
		return out // the context's error: nothing of the provider
	}
	f, _ := c.failure.get()
	var pe *middleware.ProviderError
	if errors.As(out, &pe) {
		// Masking is idempotent: a core error of a nested chain, already
		// masked at its own edge, is left as it is.
		pe.Message = redact.Mask(pe.Message, f.secrets...)
		pe.Err = redact.Error(pe.Err, f.secrets...)
		return out
	}
	return redact.Error(out, f.secrets...)
}

func classifyError(ctx context.Context, err error, c callFacts) error {
	model := c.model
	if cerr := ctx.Err(); cerr != nil {
		if cause := context.Cause(ctx); cause != nil && cause != cerr {
			return fmt.Errorf("tokenwise/langchaingo: %s: %w: %w", model, cerr, cause)
		}
		return fmt.Errorf("tokenwise/langchaingo: %s: %w", model, cerr)
	}
	if c.streamErr != nil && errors.Is(err, c.streamErr) {
		return c.streamErr
	}
	var pe *middleware.ProviderError
	var de *middleware.DeadlineError
	var sf *streamFault
	if errors.As(err, &sf) {
		perr := &middleware.ProviderError{Kind: sf.kind, Provider: c.provider, Model: model,
			Type: sf.typ, Code: sf.code, Message: sf.msg, Err: sf.cause}
		if sf.kind == middleware.ErrMalformed {
			// A stream the provider began (its status was 2xx) and
			// bills: the attempt is billed its estimate, as a malformed
			// whole answer is.
			perr.Err = &middleware.AnswerMalformedError{StatusCode: http.StatusOK, Err: sf}
		}
		return perr
	}
	if errors.As(err, &pe) || errors.As(err, &de) || errors.Is(err, middleware.ErrBudget) {
		return err
	}
	if rerr := c.failure.roundTripErr(); rerr != nil && !errors.Is(err, rerr) {
		// The base transport's core error (the go-openai Transport's
		// malformed or cut answer), which the backend returned as its
		// fixed network text: that error, not a network failure.
		return rerr
	}
	perr := &middleware.ProviderError{Provider: c.provider, Model: model, Err: err}
	if f, ok := c.failure.get(); ok {
		perr.StatusCode, perr.Type, perr.Code, perr.Message = f.status, f.typ, f.code, f.message
		perr.Kind = httperr.Classify(f.status, f.code, f.typ)
		perr.RetryAfter = httperr.ParseRetryAfter(f.header, time.Now())
		if perr.RetryAfter == 0 {
			perr.RetryAfter = f.bodyRetryAfter
		}
		return perr
	}
	var lerr *llms.Error
	if errors.As(err, &lerr) {
		if kind := llmsErrorKind(lerr.Code); kind != nil {
			perr.Kind, perr.Message = kind, lerr.Message
			return perr
		}
	}
	if status := statusCodeOf(err); status != 0 {
		perr.StatusCode = status
		perr.Kind = httperr.Classify(status, "", "")
		return perr
	}
	if m := statusText.FindStringSubmatch(err.Error()); m != nil {
		status, _ := strconv.Atoi(m[1])
		perr.StatusCode, perr.Message = status, m[2]
		perr.Code = codeFromMessage(m[2])
		perr.Kind = httperr.Classify(status, perr.Code, "")
		return perr
	}
	var nerr net.Error
	var serr *json.SyntaxError
	var terr *json.UnmarshalTypeError
	if st := c.failure.answeredStatus(); st != 0 && (errors.As(err, &serr) || errors.As(err, &terr)) {
		// The backend could not decode a whole 2xx answer (a member of
		// the wrong type): malformed, and billed by the provider.
		perr.Kind, perr.Err = middleware.ErrMalformed, &middleware.AnswerMalformedError{StatusCode: st, Err: err}
		return perr
	}
	if st := c.failure.eventStreamStatus(); st != 0 && !c.streaming && (errors.As(err, &serr) || errors.As(err, &terr)) {
		// A call that did not ask for a stream, answered with one: an
		// answer the provider produced (and bills), of the wrong shape.
		perr.Kind, perr.Message = middleware.ErrMalformed, errEventStreamAnswer
		perr.Err = &middleware.AnswerMalformedError{StatusCode: st, Err: err}
		return perr
	}
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		perr.Kind = middleware.ErrTimeout
	case errors.As(err, &nerr):
		perr.Kind = middleware.ErrNetwork
	case errors.Is(err, io.ErrUnexpectedEOF) && c.streaming:
		perr.Kind = middleware.ErrStreamCut
	case errors.Is(err, io.ErrUnexpectedEOF):
		perr.Kind = middleware.ErrNetwork // the body was cut short
	case errors.As(err, &serr), errors.As(err, &terr):
		// Not JSON, or a value the backend's types do not hold (a usage
		// count of 12.0, a created time as a string): malformed.
		perr.Kind = middleware.ErrMalformed
	default:
		// The openai backend replaces network errors by fixed texts.
		switch msg := err.Error(); {
		case strings.HasPrefix(msg, "request timeout: network operation"):
			perr.Kind = middleware.ErrTimeout
		case strings.HasPrefix(msg, "network error: failed to reach API server"):
			perr.Kind = middleware.ErrNetwork
		case msg == openaiEmptyResponse && c.provider == "openai":
			// A 200 answer the backend decoded, without choices (an
			// error object sent with status 200 reads so too): the
			// provider produced it and bills it, as NewTransport,
			// when installed, reports it.
			perr.Kind, perr.Message = middleware.ErrMalformed, "the answer has no choices"
			perr.Err = &middleware.AnswerMalformedError{StatusCode: http.StatusOK, Err: err}
		default:
			return err
		}
	}
	return perr
}

// openaiEmptyResponse is the text of the error langchaingo's openai backend
// returns for a 200 answer without choices (a sentinel of its internal
// client, which only its text identifies).
const openaiEmptyResponse = "empty response"

// codeFromMessage recovers OpenAI's error code from the message of an error
// whose code the backend dropped, for the codes that change the error's
// kind.
func codeFromMessage(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "maximum context length") || strings.Contains(m, "context_length_exceeded") ||
		strings.Contains(m, "context length"):
		return "context_length_exceeded"
	case strings.Contains(m, "exceeded your current quota") || strings.Contains(m, "insufficient_quota"):
		return "insufficient_quota"
	case strings.Contains(m, "content management policy") || strings.Contains(m, "content_filter"):
		return "content_filter"
	}
	return ""
}

func llmsErrorKind(code llms.ErrorCode) error {
	switch code {
	case llms.ErrCodeRateLimit:
		return middleware.ErrRateLimited
	case llms.ErrCodeQuotaExceeded:
		return middleware.ErrQuotaExceeded
	case llms.ErrCodeAuthentication:
		return middleware.ErrAuth
	case llms.ErrCodeInvalidRequest, llms.ErrCodeResourceNotFound, llms.ErrCodeNotImplemented:
		return middleware.ErrBadRequest
	case llms.ErrCodeTimeout:
		return middleware.ErrTimeout
	case llms.ErrCodeContentFilter:
		return middleware.ErrContentFilter
	case llms.ErrCodeTokenLimit:
		return middleware.ErrContextWindow
	case llms.ErrCodeProviderUnavailable:
		return middleware.ErrUnavailable
	}
	return nil
}

// statusCodeOf finds an HTTP status carried by an error in err's chain: a
// StatusCode() or HTTPStatusCode() method, or an int field named
// StatusCode (the ollama backend's StatusError and many SDKs' errors).
func statusCodeOf(err error) int {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch s := e.(type) {
		case interface{ StatusCode() int }:
			if c := s.StatusCode(); c >= 400 {
				return c
			}
		case interface{ HTTPStatusCode() int }:
			if c := s.HTTPStatusCode(); c >= 400 {
				return c
			}
		}
		v := reflect.ValueOf(e)
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("StatusCode"); f.IsValid() && f.CanInt() && f.Int() >= 400 && f.Int() < 600 {
				return int(f.Int())
			}
		}
	}
	return 0
}
