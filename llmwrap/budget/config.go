package budget

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// OnExceed is what happens to a call a budget cannot afford.
type OnExceed string

// OnExceed values. The zero value means OnExceedReject.
const (
	// OnExceedReject fails the call with an *ExceededError.
	OnExceedReject OnExceed = "reject"
	// OnExceedDowngrade admits the call again with Config.DowngradeTo, and
	// rejects it if that does not fit either.
	OnExceedDowngrade OnExceed = "downgrade"
	// OnExceedWarn lets the call through, records its spend, logs and
	// emits middleware.BudgetExceeded; it never lowers the call's
	// max_tokens to what the budget affords.
	OnExceedWarn OnExceed = "warn"
)

// Period is the accounting period of a team budget.
type Period string

// Period values. A team limit requires one.
const (
	PeriodDaily   Period = "daily"   // calendar day, UTC
	PeriodMonthly Period = "monthly" // calendar month, UTC
	PeriodRolling Period = "rolling" // sliding window of TeamLimit.Window
)

// OnUnavailable is the reaction to a store that cannot be reached.
type OnUnavailable string

// OnUnavailable values. The zero value means FailClosed.
const (
	// FailClosed refuses calls with ErrStoreUnavailable.
	FailClosed OnUnavailable = "fail_closed"
	// Local spends, in a local MemoryStore, LocalFraction of each team
	// limit per replica (of a shared run's limit, in the run's own
	// ledger), with a warning and a middleware.StoreFailed event.
	Local OnUnavailable = "local"
)

// ErrConfig: New was given a Config it cannot use.
var ErrConfig = errors.New("tokenwise/budget: invalid config")

// Config configures the budgets. The zero Config enforces nothing
// (Middleware returns nil).
type Config struct {
	// Name namespaces the ledgers (team keys and run ledgers) and is the
	// team of calls without one (middleware.TeamFrom). Empty: "default".
	Name string
	// Request caps a single call. Zero: no per-call caps.
	Request RequestLimit
	// Run caps one run (middleware.StartRun) in micro-dollars and tokens.
	// A zero field: no cap in that unit.
	Run Amount
	// Team caps a team over a period. Zero: no team budget.
	Team TeamLimit
	// OnExceed is the reaction to an exceeded budget. Zero: OnExceedReject.
	OnExceed OnExceed
	// DowngradeTo is the model OnExceedDowngrade moves a call to; required
	// then.
	DowngradeTo string
	// WarnAt lists fractions in (0,1] of a limit at which a
	// middleware.BudgetWarning fires, once per window. Empty: no warnings.
	WarnAt []float64
	// MinOutputTokens is the smallest useful answer: a call whose
	// max_tokens a budget cannot afford is sent with max_tokens lowered to
	// what it affords when that is at least this many tokens (but in
	// OnExceedWarn mode). Zero: DefaultMinOutputTokens.
	MinOutputTokens int64
	// DefaultTier is the service tier a call that names none (or "auto")
	// is processed at: its provider project's default (priority
	// processing). Such a call is reserved at its rates. Empty or
	// "default": the standard rates.
	DefaultTier string
	// KeyPrefix prefixes the team ledgers' keys. Empty: "tokenwise".
	KeyPrefix string
	// ReservationTTL bounds how long a dead replica's reservation stays
	// reserved in a shared store (it is extended while its call runs).
	// Zero: DefaultReservationTTL.
	ReservationTTL time.Duration
	// OnUnavailable is the reaction to an unreachable store. Zero:
	// FailClosed.
	OnUnavailable OnUnavailable
	// LocalFraction in (0,1] is the share of each team (and shared-run)
	// limit a replica spends alone while the store is unreachable
	// (OnUnavailable Local).
	// Zero: DefaultLocalFraction.
	LocalFraction float64
}

// RequestLimit caps a single call. A zero field is no cap.
type RequestLimit struct {
	// MaxInputTokens rejects a call whose estimated input is larger.
	MaxInputTokens int64
	// MaxOutputTokens is injected as max_tokens when the request sets
	// none, and caps it when larger; for a model whose max output
	// (Model.MaxOutputTokens) is smaller, that is injected instead (a
	// provider refuses a max_tokens above the model's).
	MaxOutputTokens int64
}

// TeamLimit caps a team's spend per period.
type TeamLimit struct {
	// Limit is the cap per period in micro-dollars and tokens. A zero
	// field: no cap in that unit.
	Limit Amount
	// Period is the accounting period; required with a limit.
	Period Period
	// Window is the length of a PeriodRolling window; required then.
	Window time.Duration
}

// Model is what the budget knows of a model. A zero field is unknown.
type Model struct {
	// Priced reports that the Catalog prices the model (a free model is
	// priced at $0). A USD budget refuses a call to a model that is not.
	Priced bool
	// ContextWindow in tokens bounds the output reserved for a call.
	ContextWindow int64
	// MaxOutputTokens is reserved (and injected as max_tokens) for a
	// request without max_tokens when the Config sets no cap.
	MaxOutputTokens int64
	// OutputPico and AudioOutputPico are the prices of one output and one
	// audio output token in pico-dollars: they size the answer a budget
	// can still afford.
	OutputPico, AudioOutputPico int64
	// InputPico and CacheWritePico are the prices of one input token and
	// of one written to the provider's prompt cache: when writes are
	// dearer (Anthropic's), a call is reserved as if its whole prompt
	// were written.
	InputPico, CacheWritePico int64
	// AnswerModels are the other models an answer to a call for this one
	// may name and be billed as, at prices of their own (its dated
	// snapshots: policies.Policy.AnswerModels). A reservation is priced
	// at the dearest of the model and these, so that the answer is
	// settled within it whichever of them the provider says served it.
	AnswerModels []string
}

// Catalog tells the budget what a call costs: it prices usage
// (middleware.Pricer: pico-dollars, false for a model without a price) and
// knows each model's limits. An answer is settled at the price of the
// model middleware.BilledModel picks (the model that answered, when its
// price is known; a Catalog that is a middleware.AnswerPricer decides),
// as the Meter bills it. Package llmwrap fills it from a policy's model
// catalog. Implementations must be safe for concurrent use.
type Catalog interface {
	middleware.Pricer
	// Model returns what is known of model, false when nothing is.
	Model(name string) (Model, bool)
}

// noCatalog knows no model and prices nothing.
type noCatalog struct{}

func (noCatalog) Cost(string, middleware.Usage) (int64, bool) { return 0, false }
func (noCatalog) Model(string) (Model, bool)                  { return Model{}, false }

// validate returns every problem of c, joined, each matching ErrConfig.
func (c Config) validate(haveCatalog bool) error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Request.MaxInputTokens < 0 || c.Request.MaxOutputTokens < 0 {
		add("negative request cap: %+v", c.Request)
	}
	if c.Run.USDMicros < 0 || c.Run.Tokens < 0 || c.Team.Limit.USDMicros < 0 || c.Team.Limit.Tokens < 0 {
		add("negative limit: run %+v, team %+v", c.Run, c.Team.Limit)
	}
	switch c.Team.Period {
	case "":
		if !c.Team.Limit.IsZero() {
			add("a team limit needs a Period")
		}
	case PeriodDaily, PeriodMonthly:
	case PeriodRolling:
		if c.Team.Window <= 0 {
			add("a rolling period needs a positive Window")
		}
	default:
		add("unknown Period %q", c.Team.Period)
	}
	switch c.OnExceed {
	case "", OnExceedReject, OnExceedWarn:
	case OnExceedDowngrade:
		if c.DowngradeTo == "" {
			add("OnExceedDowngrade needs DowngradeTo")
		}
	default:
		add("unknown OnExceed %q", c.OnExceed)
	}
	switch c.OnUnavailable {
	case "", FailClosed, Local:
	default:
		add("unknown OnUnavailable %q", c.OnUnavailable)
	}
	for _, f := range c.WarnAt {
		if !(f > 0 && f <= 1) {
			add("WarnAt fraction %g not in (0,1]", f)
		}
	}
	if c.MinOutputTokens < 0 || c.ReservationTTL < 0 {
		add("negative MinOutputTokens (%d) or ReservationTTL (%v)", c.MinOutputTokens, c.ReservationTTL)
	}
	if c.LocalFraction < 0 || c.LocalFraction > 1 {
		add("LocalFraction %g not in [0, 1]", c.LocalFraction)
	}
	if (c.Run.USDMicros > 0 || c.Team.Limit.USDMicros > 0) && !haveCatalog {
		add("a USD limit needs prices: pass a Catalog with WithCatalog")
	}
	return errors.Join(errs...)
}

// picoOf returns micro-dollars in pico-dollars, saturating.
func picoOf(micro int64) int64 {
	const perMicro = 1_000_000
	switch {
	case micro > math.MaxInt64/perMicro:
		return math.MaxInt64
	case micro < math.MinInt64/perMicro:
		return math.MinInt64
	}
	return micro * perMicro
}

// ceilMicro rounds pico-dollars up to a whole micro-dollar: the one
// rounding of a budget charge, never in the caller's favour.
func ceilMicro(pico int64) int64 {
	q := pico / 1_000_000
	if pico%1_000_000 > 0 {
		q++
	}
	return q
}
