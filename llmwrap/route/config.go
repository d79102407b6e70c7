package route

import (
	"errors"
	"fmt"
	"path"
	"regexp"

	"github.com/tokenwise/tokenwise/middleware"
)

// KeywordScope is the text keywords and regular expressions look at.
type KeywordScope string

// KeywordScope values. The zero value means KeywordsInLastUser.
const (
	KeywordsInLastUser     KeywordScope = "last_user"    // the last user message
	KeywordsInConversation KeywordScope = "conversation" // every message
)

// BudgetScope is the budget a budget_below condition looks at.
type BudgetScope string

// BudgetScope values. The zero value means BudgetScopeRun.
const (
	BudgetScopeRun  BudgetScope = "run"
	BudgetScopeTeam BudgetScope = "team"
)

// CheckName names a built-in cascade check.
type CheckName string

// The built-in cascade checks.
const (
	CheckValidToolJSON CheckName = "valid_tool_json" // tool-call arguments parse as JSON (ValidToolJSON)
	CheckNonEmpty      CheckName = "non_empty"       // text or tool calls present (NonEmpty)
	CheckFinishReason  CheckName = "finish_reason"   // finished by stop or tool calls (FinishedCleanly)
)

// ErrConfig: New or NewRules was given a Config it cannot use.
var ErrConfig = errors.New("tokenwise/route: invalid config")

// Config configures routing. The zero Config routes nothing (Middleware
// returns nil unless a Router is given with WithRouter).
type Config struct {
	// Default is the model used when no rule matches. Empty: the model the
	// caller asked for.
	Default string
	// Rules are tried in order; the first match picks the model. Nil: none.
	Rules []Rule
	// RegenerateFinal rewrites a final answer produced by a cheap model
	// with a strong one, without tools. Zero: off.
	RegenerateFinal Regenerate
	// Cascade tries models from cheap to strong until a check passes.
	// Zero: off.
	Cascade Cascade
	// LargerWindow lists models, in order, to escalate to when a call does
	// not fit the routed model's context window (see WithWindows). Nil: no
	// escalation.
	LargerWindow []string
	// Learned routes the calls no rule matched with a learned scorer
	// instead of Default. Zero: off.
	Learned Learned
	// RunLimit is the run budget that budget_below conditions of the run
	// scope read (see RunBudget). Zero: those conditions never hold.
	RunLimit RunLimit
}

// Rule routes the calls its conditions match to Model.
type Rule struct {
	// Name identifies the rule in events and reports. Empty: its number.
	Name string
	// When holds the conditions; all set conditions must hold. Zero: the
	// rule matches every call.
	When Condition
	// Model is the model to use; required.
	Model string
}

// Condition is a rule's conditions. A zero field is no condition.
type Condition struct {
	// Stage matches the call's agent stage.
	Stage middleware.Stage
	// Keywords match when any of them appears as a whole word,
	// case-insensitively, in the KeywordsIn text.
	Keywords []string
	// KeywordsIn is the text searched. Zero: KeywordsInLastUser.
	KeywordsIn KeywordScope
	// Regex matches the KeywordsIn text (Go RE2 syntax).
	Regex string
	// MinInputTokens matches calls with at least this estimated input.
	MinInputTokens int64
	// MaxInputTokens matches calls with at most this estimated input.
	MaxInputTokens int64
	// HasTools matches calls that offer tools (true) or none (false). Nil:
	// either.
	HasTools *bool
	// Team matches the caller's team (middleware.TeamFrom).
	Team string
	// BudgetBelow matches when the remaining budget is below a fraction.
	BudgetBelow *BudgetBelow
	// RequestedModel matches calls whose caller asked for one of these
	// models (names or path.Match patterns).
	RequestedModel []string
}

// IsZero reports whether no condition is set, i.e. the rule matches all.
func (c Condition) IsZero() bool {
	return c.Stage == "" && len(c.Keywords) == 0 && c.KeywordsIn == "" && c.Regex == "" &&
		c.MinInputTokens == 0 && c.MaxInputTokens == 0 && c.HasTools == nil && c.Team == "" &&
		c.BudgetBelow == nil && len(c.RequestedModel) == 0
}

// BudgetBelow is a condition on the remaining share of a budget.
type BudgetBelow struct {
	// Scope is the budget looked at. Zero: BudgetScopeRun.
	Scope BudgetScope
	// Fraction in (0,1]: the condition holds while remaining/limit is
	// below it.
	Fraction float64
}

// Regenerate rewrites final answers with a strong model.
type Regenerate struct {
	// Enabled turns it on. False: off.
	Enabled bool
	// Model writes the final answer. Empty: Config.Default.
	Model string
}

// Cascade tries models from cheap to strong until an answer passes the
// checks.
type Cascade struct {
	// Models, cheapest first. Nil: no cascade.
	Models []string
	// Checks an answer must pass. Nil: every built-in check.
	Checks []CheckName
}

// Learned sends a call that no rule matched to Strong when the learned
// score of its last user message reaches Threshold, to Weak otherwise.
type Learned struct {
	// Weights is the path of the weights file written by `tokenwise route
	// train` (read unless WithLearnedModel gives the model). Required when
	// any other field is set.
	Weights string
	// Threshold in (0,1]: a score at or above it goes to Strong. Zero: the
	// threshold calibrated by training.
	Threshold float64
	// Strong is the strong model. Empty: Config.Default.
	Strong string
	// Weak is the cheap model; required.
	Weak string
}

// IsZero reports whether learned routing is off.
func (l Learned) IsZero() bool { return l == Learned{} }

// RunLimit is a run's budget in micro-dollars and tokens. A zero field is
// no limit.
type RunLimit struct {
	USDMicros int64
	Tokens    int64
}

// routes reports whether c routes anything.
func (c Config) routes() bool {
	return len(c.Rules) > 0 || c.Default != "" || len(c.Cascade.Models) > 0 || c.RegenerateFinal.Enabled ||
		len(c.LargerWindow) > 0 || !c.Learned.IsZero()
}

// validate returns every problem of c, joined, each matching ErrConfig.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	for i, r := range c.Rules {
		if r.Model == "" {
			add("rules[%d]: no model", i)
		}
		w := r.When
		switch w.KeywordsIn {
		case "", KeywordsInLastUser, KeywordsInConversation:
		default:
			add("rules[%d]: unknown KeywordsIn %q", i, w.KeywordsIn)
		}
		if w.Regex != "" {
			if _, err := regexp.Compile(w.Regex); err != nil {
				add("rules[%d]: regex: %v", i, err)
			}
		}
		if w.MinInputTokens < 0 || w.MaxInputTokens < 0 {
			add("rules[%d]: negative token bound", i)
		}
		for _, m := range w.RequestedModel {
			if _, err := path.Match(m, ""); err != nil || m == "" {
				add("rules[%d]: requested model %q is not a name or a path.Match pattern", i, m)
			}
		}
		if b := w.BudgetBelow; b != nil {
			if b.Scope != "" && b.Scope != BudgetScopeRun && b.Scope != BudgetScopeTeam {
				add("rules[%d]: unknown budget scope %q", i, b.Scope)
			}
			if !(b.Fraction > 0 && b.Fraction <= 1) {
				add("rules[%d]: budget fraction %g not in (0,1]", i, b.Fraction)
			}
		}
	}
	for _, ch := range c.Cascade.Checks {
		switch ch {
		case CheckValidToolJSON, CheckNonEmpty, CheckFinishReason:
		default:
			add("unknown cascade check %q", ch)
		}
	}
	if l := c.Learned; !l.IsZero() {
		if l.Weights == "" || l.Weak == "" {
			add("learned routing needs Weights and Weak")
		}
		if l.Threshold < 0 || l.Threshold > 1 {
			add("learned threshold %g not in [0,1]", l.Threshold)
		}
	}
	if c.RunLimit.USDMicros < 0 || c.RunLimit.Tokens < 0 {
		add("negative run limit %+v", c.RunLimit)
	}
	return errors.Join(errs...)
}
