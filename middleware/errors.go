package middleware

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// The error taxonomy. A provider failure matches exactly one of these with
// errors.Is; [*ProviderError] carries the details.
var (
	// ErrRateLimited: the provider throttled the call (HTTP 429). Transient;
	// the ProviderError's RetryAfter says how long the provider asked to wait.
	ErrRateLimited = errors.New("tokenwise/middleware: rate limited")
	// ErrQuotaExceeded: the account has no quota left (429 insufficient_quota).
	// Not transient: retrying cannot succeed.
	ErrQuotaExceeded = errors.New("tokenwise/middleware: quota exceeded")
	// ErrUnavailable: the provider failed or is overloaded (5xx). Transient.
	ErrUnavailable = errors.New("tokenwise/middleware: provider unavailable")
	// ErrContextWindow: the request does not fit the model's context window.
	ErrContextWindow = errors.New("tokenwise/middleware: context window exceeded")
	// ErrContentFilter: the provider refused the content.
	ErrContentFilter = errors.New("tokenwise/middleware: content filtered")
	// ErrAuth: the credentials were refused (401, 403).
	ErrAuth = errors.New("tokenwise/middleware: authentication failed")
	// ErrBadRequest: the provider rejected the request as invalid (400, 404, 422).
	ErrBadRequest = errors.New("tokenwise/middleware: bad request")
	// ErrTimeout: a deadline ran out (a tokenwise timeout or the provider's 408/504).
	ErrTimeout = errors.New("tokenwise/middleware: timeout")
	// ErrBudget: a tokenwise budget refused the call.
	ErrBudget = errors.New("tokenwise/middleware: budget exceeded")
	// ErrNetwork: the provider could not be reached or the connection broke.
	ErrNetwork = errors.New("tokenwise/middleware: network error")
	// ErrMalformed: the provider answered with something that is not a valid
	// response (bad JSON, a missing choice, an unparsable stream chunk).
	ErrMalformed = errors.New("tokenwise/middleware: malformed provider response")
	// ErrStreamCut: a stream ended before the provider said it was complete.
	ErrStreamCut = errors.New("tokenwise/middleware: stream cut before completion")
)

// ProviderError is a classified provider failure. Its Is method matches its
// Kind (one of the taxonomy's sentinels), and Unwrap returns the cause.
type ProviderError struct {
	Kind       error  // the taxonomy sentinel, e.g. ErrRateLimited
	Provider   string // e.g. "openai"
	Model      string
	StatusCode int    // HTTP status, 0 when there was none
	Type       string // provider error type, e.g. "invalid_request_error"
	Code       string // provider error code, e.g. "context_length_exceeded"
	Param      string // the request parameter the provider blamed, if any
	Message    string // provider message
	RetryAfter time.Duration
	Err        error // underlying cause, may be nil
}

func (e *ProviderError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Provider != "" || e.Model != "" {
		b.WriteString(" (")
		b.WriteString(strings.TrimSpace(e.Provider + " " + e.Model))
		b.WriteString(")")
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil && e.Message == "" {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is the error's kind.
func (e *ProviderError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *ProviderError) Unwrap() error { return e.Err }

// Transient reports whether err is worth retrying on the same model: a rate
// limit, an unavailable provider, a timeout (the provider's, or a tokenwise
// per-attempt timeout), a network failure, or a stream cut before
// completion. Cancellations, budget refusals and client errors are not.
// Transient looks at err only: a retry layer must also check that its own
// context is still live before it tries again.
func Transient(err error) bool {
	if err == nil || IsCancellation(err) || errors.Is(err, ErrBudget) || errors.Is(err, ErrQuotaExceeded) {
		return false
	}
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, ErrTimeout) || errors.Is(err, ErrNetwork) || errors.Is(err, ErrStreamCut)
}

// AnswerCutError is the cause (ProviderError.Err) of a failure after the
// provider answered with a 2xx status: reading the answer's body failed
// (the connection was lost mid-body). The provider had started, and
// produced, the answer, and bills it as a complete one: the [Meter] bills
// such an attempt an estimate (its input and the output read so far,
// [AnswerCutError.OutputEstimate]) and marks it Estimated, and the budget
// layer charges it, retried or not. Adapters that can tell (the OpenAI
// adapter) return it; see [AnswerCut].
type AnswerCutError struct {
	StatusCode int   // the answer's status (2xx)
	Read       int64 // the bytes of its body read before the failure
	Err        error // the read's failure
}

func (e *AnswerCutError) Error() string {
	return fmt.Sprintf("HTTP %d answer cut after %d bytes of its body: %v", e.StatusCode, e.Read, e.Err)
}

// Unwrap returns the read's failure.
func (e *AnswerCutError) Unwrap() error { return e.Err }

// OutputEstimate is a conservative estimate of the output tokens the body
// read so far holds: one token per three bytes, rounding up (its JSON
// framing counted as output).
func (e *AnswerCutError) OutputEstimate() int64 {
	return (max(e.Read, 0) + 2) / 3
}

// AnswerCut returns the *AnswerCutError in err's chain: the attempt failed
// after its answer had started (a 2xx status), which the provider bills.
func AnswerCut(err error) (*AnswerCutError, bool) {
	var e *AnswerCutError
	if err == nil || !errors.As(err, &e) {
		return nil, false
	}
	return e, true
}

// AnswerMalformedError is the cause (ProviderError.Err, of kind
// [ErrMalformed]) of a failure on an answer the provider sent whole, with
// a 2xx status, that is no valid answer: not JSON, JSON without choices, a
// member of the wrong type. The call failed, but the provider produced,
// and bills, the answer: the [Meter] bills such an attempt its estimated
// input and marks it Estimated, and the budget layer charges it, retried
// or not, as it does an [AnswerCutError]. Adapters that can tell (the
// OpenAI and langchaingo adapters) return it; see [AnswerBilled].
//
// An answer that counts a usage although it is malformed (one without
// choices) carries it in Usage and Model: the adapter that read it
// returns them in a Response beside the error, which the Meter and the
// budget charge instead of the estimate; an adapter that gets the error
// alone (langchaingo's over the OpenAI adapter's Transport) reads them
// here.
type AnswerMalformedError struct {
	StatusCode int   // the answer's status (2xx)
	Err        error // what is wrong with it
	// Model and Usage are what the answer counts, when it counts a usage
	// (zero: none).
	Model string
	Usage Usage
}

func (e *AnswerMalformedError) Error() string {
	return fmt.Sprintf("HTTP %d answer malformed: %v", e.StatusCode, e.Err)
}

// Unwrap returns what is wrong with the answer.
func (e *AnswerMalformedError) Unwrap() error { return e.Err }

// AnswerBilled reports whether err ended an attempt after the provider
// produced its answer (a 2xx status), which the provider bills although
// the call failed: an answer cut mid-body ([AnswerCutError]) or a whole
// one that is malformed ([AnswerMalformedError]). output is the estimate
// of the output tokens to bill beside the input: the cut answer's
// [AnswerCutError.OutputEstimate], none for a malformed one (its output,
// unread, is not counted).
func AnswerBilled(err error) (output int64, ok bool) {
	if cut, ok := AnswerCut(err); ok {
		return cut.OutputEstimate(), true
	}
	var m *AnswerMalformedError
	if err != nil && errors.As(err, &m) {
		return 0, true
	}
	return 0, false
}

// UnansweredBilled reports whether err, which ended an attempt before its
// answer came, is one the provider bills the attempt's input for: a
// timeout (the call's, the run's deadline) or a cancellation (the caller
// gone) — the provider may have processed the request — not a network
// failure (it may never have had it) or a refusal. The Meter bills such
// an attempt its estimate, and the gateway charges its passed-through
// calls so.
//
// An attempt whose request never reached the provider whole
// ([NotSentError]: the call ended while connecting, before its body was
// written) is not billed: the provider cannot have processed it.
func UnansweredBilled(err error) bool {
	if err == nil || !(IsCancellation(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout)) {
		return false
	}
	var ns *NotSentError
	return !errors.As(err, &ns)
}

// ErrStoreUnavailable matches the refusal of a call whose policy's state
// could not be read or written: its budget's shared store did not answer
// and the policy fails closed (the budget package's ErrStoreUnavailable
// matches it). It also holds when the call's timeout ran out while
// waiting for the store: the timeout's error then matches both, and says
// what the call was waiting for.
var ErrStoreUnavailable = errors.New("tokenwise: policy store unavailable")

// TimedOut returns timeout, the error of the deadline that ended a call
// whose own error was err: with err when the call was waiting for a store
// of its policy's state (ErrStoreUnavailable), so that the error says
// what the time was spent on, and matches both; timeout alone otherwise.
// Either is a [*NotSentError] when err is one: the call was never sent,
// which a budget with no Meter below it reads so (see [UnansweredBilled]).
func TimedOut(timeout, err error) error {
	out := timeout
	if errors.Is(err, ErrStoreUnavailable) {
		out = fmt.Errorf("%w, waiting for %w", timeout, err)
	}
	if ns := (*NotSentError)(nil); errors.As(err, &ns) {
		return &NotSentError{Err: out}
	}
	return out
}

// NotSentError is the error of an attempt that ended before its request
// reached the provider whole: the call's timeout or cancellation came
// while the connection was being made, or before the request's body was
// written. The provider never had the request and bills nothing for it
// (see [UnansweredBilled]); an adapter returns it only when it knows, by
// the body its HTTP client did not read to its end, and the rate-limit
// layer when the call ended while it waited for its admission. It matches what it
// wraps (context.DeadlineExceeded, [ErrTimeout], context.Canceled) with
// errors.Is, and prints as it.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// IsCancellation reports whether err is a cancellation by the caller
// (context.Canceled) rather than a failure. Cancellations never count
// against a circuit breaker.
func IsCancellation(err error) bool {
	return errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// RetryAfter returns the wait a provider asked for in err, if any, or the
// wait a tokenwise rate limit named when it refused a call (an error with
// a TimeToWait method).
func RetryAfter(err error) (time.Duration, bool) {
	var pe *ProviderError
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return pe.RetryAfter, true
	}
	var w interface{ TimeToWait() time.Duration }
	if errors.As(err, &w) && w.TimeToWait() > 0 {
		return w.TimeToWait(), true
	}
	return 0, false
}

// DeadlineError is returned when a tokenwise timeout runs out. It matches
// context.DeadlineExceeded, ErrTimeout and its Cause (the sentinel of the
// timeout that fired, e.g. timeout.ErrCall) with errors.Is.
type DeadlineError struct {
	Cause error         // the sentinel given to context.WithTimeoutCause
	Limit time.Duration // the configured limit, 0 if unknown
}

func (e *DeadlineError) Error() string {
	if e.Limit > 0 {
		return fmt.Sprintf("%v after %s", e.Cause, e.Limit)
	}
	return e.Cause.Error()
}

// Is matches context.DeadlineExceeded and ErrTimeout.
func (e *DeadlineError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == ErrTimeout
}

// Unwrap returns the cause.
func (e *DeadlineError) Unwrap() error { return e.Cause }

// DeadlineCause returns a *DeadlineError when ctx ended because one of the
// given sentinels' deadlines ran out (its context.Cause is one of them),
// and nil otherwise. Timeout middlewares call it after the inner handler
// returned an error, to report which deadline fired.
func DeadlineCause(ctx context.Context, limit time.Duration, sentinels ...error) error {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	for _, s := range sentinels {
		if errors.Is(cause, s) {
			var de *DeadlineError
			if errors.As(cause, &de) {
				return de
			}
			return &DeadlineError{Cause: cause, Limit: limit}
		}
	}
	return nil
}

// ErrPanic: code under tokenwise (a layer, an observer, a router, a tool,
// the provider code) panicked. The panic was recovered and became the error
// of the one call it happened in; [*PanicError] carries the value and the
// stack, which a [PanicRecovered] event reports as well.
var ErrPanic = errors.New("tokenwise/middleware: panic recovered")

// PanicError is a recovered panic. It matches [ErrPanic] with errors.Is
// and unwraps to the panic value when that is an error.
type PanicError struct {
	Where string // what tokenwise was running, e.g. "openai transport stream"
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

func (e *PanicError) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("tokenwise/middleware: panic in %s: %v", e.Where, e.Value)
	}
	return fmt.Sprintf("tokenwise/middleware: panic: %v", e.Value)
}

// Is matches ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value when it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recovered turns a value returned by recover() into a *PanicError with
// the current goroutine's stack, and reports it as a [PanicRecovered]
// event on ctx (an observer that panics in turn is ignored). Call it from
// the deferred function that recovered:
//
//	defer func() {
//		if v := recover(); v != nil {
//			err = middleware.Recovered(ctx, "my layer", v)
//		}
//	}()
func Recovered(ctx context.Context, where string, v any) *PanicError {
	pe := &PanicError{Where: where, Value: v, Stack: debug.Stack()}
	if ctx != nil && Observing(ctx) {
		func() {
			defer func() { _ = recover() }()
			Emit(ctx, PanicRecovered{Where: where, Value: v, Stack: pe.Stack})
		}()
	}
	return pe
}

// SafeHandle calls h.Handle and turns a panic under it into a *PanicError
// returned as the call's error. Adapters serve every call through it, so
// that no panic of a chain reaches the caller's process.
func SafeHandle(ctx context.Context, h Handler, req *Request, where string) (resp *Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, Recovered(ctx, where, v)
		}
	}()
	return h.Handle(ctx, req)
}
