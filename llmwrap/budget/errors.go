package budget

import (
	"errors"
	"fmt"

	"github.com/tokenwise/tokenwise/middleware"
)

var (
	// ErrExceeded: a budget refused the call. *ExceededError matches it, and
	// so does middleware.ErrBudget.
	ErrExceeded = errors.New("tokenwise/budget: budget exceeded")
	// ErrUnpriced: a USD budget applies but the call's model has no known
	// price; the call is refused rather than billed $0. Matches
	// middleware.ErrBudget.
	ErrUnpriced = errors.New("tokenwise/budget: model has no price")
	// ErrUncountable: the call's input includes content the provider
	// reads from its own storage (a file part by file_id), which a budget
	// bounds by the model's context window, and the model has none in the
	// catalog or the policy. Matches middleware.ErrBudget.
	ErrUncountable = errors.New("tokenwise/budget: input cannot be bounded")
	// ErrStoreUnavailable: the shared budget store could not be reached and
	// the policy is fail_closed. Matches middleware.ErrBudget and
	// middleware.ErrStoreUnavailable.
	ErrStoreUnavailable = errors.New("tokenwise/budget: budget store unavailable")
	// ErrReservationExpired: a reservation could not be extended because
	// its TTL ran out (a shared store then charges it at its reserved
	// amount) or it was settled.
	ErrReservationExpired = errors.New("tokenwise/budget: reservation expired")
)

// Units of ExceededError.Unit and of the budget events.
const (
	UnitUSD    = "usd_micros"
	UnitTokens = "tokens"
)

// ExceededError reports a budget that refused a call: the scope
// ("request", "run", "team:<team>"), the unit, the limit, what was settled
// and reserved by calls in flight when the call asked, and what the call
// needed. It matches ErrExceeded and middleware.ErrBudget with errors.Is.
//
// For a run or team budget it also says why the call needed that much:
// the output tokens it was priced at and where that bound comes from (a
// call that sets no max_tokens is priced at the model's maximum output),
// and, when the budget could afford a smaller answer but one below
// min_output_tokens, how many output tokens it could afford.
type ExceededError struct {
	Scope    string
	Unit     string // UnitUSD or UnitTokens
	Limit    int64
	Used     int64
	Reserved int64
	Need     int64
	Model    string // the model the call was priced at
	// Output is the output tokens per choice the call was priced at, and
	// OutputBound where that bound comes from ("the request's max_tokens",
	// "gpt-4o's maximum output, as the request sets no max_tokens", ...).
	// Zero and empty for a refusal by the request's input cap.
	Output      int64
	OutputBound string
	// MinOutput is set when the call was not fitted to the budget because
	// what it affords, Affordable output tokens per choice, is below
	// min_output_tokens (MinOutput); Affordable is meaningful only then.
	MinOutput  int64
	Affordable int64
	Err        error // cause, e.g. the refusal of the model before a downgrade; may be nil
}

func (e *ExceededError) Error() string {
	f := func(n int64) string {
		if e.Unit == UnitUSD {
			return middleware.FormatUSD(n)
		}
		return fmt.Sprintf("%d tokens", n)
	}
	var s string
	if e.Scope == "request" && e.Unit == UnitTokens {
		// A cap on one call's input: no ledger's figures to give.
		s = fmt.Sprintf("%v: request limit %d input tokens (budget.request.max_input_tokens), call needs %d input tokens", ErrExceeded, e.Limit, e.Need)
	} else {
		s = fmt.Sprintf("%v: %s limit %s, used %s, reserved %s, call needs %s", ErrExceeded, e.Scope, f(e.Limit), f(e.Used), f(e.Reserved), f(e.Need))
	}
	if e.Model != "" {
		s += " (" + e.Model + ")"
	}
	if e.OutputBound != "" {
		s += fmt.Sprintf("; priced at %d output tokens: %s", e.Output, e.OutputBound)
	}
	if e.MinOutput > 0 {
		s += fmt.Sprintf("; the budget affords %d output tokens, below min_output_tokens (%d)", e.Affordable, e.MinOutput)
	}
	if e.Err != nil {
		s += "; " + e.Err.Error()
	}
	return s
}

// Is matches ErrExceeded and middleware.ErrBudget.
func (e *ExceededError) Is(target error) bool {
	return target == ErrExceeded || target == middleware.ErrBudget
}

// Unwrap returns the cause.
func (e *ExceededError) Unwrap() error { return e.Err }

// refusal wraps a sentinel that must also match middleware.ErrBudget.
type refusal struct {
	kind error
	msg  string
	err  error
}

func (e *refusal) Error() string {
	if e.err != nil {
		return e.kind.Error() + ": " + e.msg + ": " + e.err.Error()
	}
	return e.kind.Error() + ": " + e.msg
}
func (e *refusal) Is(target error) bool {
	return target == e.kind || target == middleware.ErrBudget ||
		target == middleware.ErrStoreUnavailable && e.kind == ErrStoreUnavailable
}
func (e *refusal) Unwrap() error { return e.err }
