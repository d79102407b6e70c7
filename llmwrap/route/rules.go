package route

import (
	"context"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Rules is the built-in Router: the ordered rules of a policy's routing
// section, first match wins, then the default model. It is immutable and
// safe for concurrent use.
type Rules struct {
	rules     []rule
	def       string
	estimator Estimator
	budget    BudgetReader
}

var _ Router = (*Rules)(nil)

type rule struct {
	label    string // `rule 2 "cheap-tools"`
	model    string
	stage    middleware.Stage
	keywords []string // lower case
	lowerIdx int      // Query text index of the keyword text
	rawIdx   int      // Query text index of the regex text
	re       *regexp.Regexp
	reLit    string // a literal every match contains, lower case; "" = none known
	minTok   int64
	maxTok   int64
	hasTools *bool
	team     string
	budget   *policies.BudgetBelow
	always   bool
}

// RulesOption configures NewRules.
type RulesOption func(*Rules)

// WithRulesEstimator sets the token estimator of min/max_input_tokens
// conditions (see Estimator).
func WithRulesEstimator(e Estimator) RulesOption { return func(r *Rules) { r.estimator = e } }

// WithRulesBudget sets the reader of budget_below conditions. Without one
// (or for a scope it does not know) the run scope is read with RunBudget
// and a team-scope condition never holds.
func WithRulesBudget(b BudgetReader) RulesOption { return func(r *Rules) { r.budget = b } }

// NewRules compiles the routing rules of p. The policy must be valid
// (policies.Load validates); an invalid one is an error here too.
func NewRules(p *policies.Policy, opts ...RulesOption) (*Rules, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	r := &Rules{def: p.Routing.Default}
	for _, o := range opts {
		o(r)
	}
	run := RunBudget(p.Budget.Run)
	if r.budget == nil {
		r.budget = run
	} else {
		r.budget = fallbackReader{r.budget, run}
	}
	for i, pr := range p.Routing.Rules {
		w := pr.When
		c := rule{model: pr.Model, stage: middleware.Stage(w.Stage), minTok: w.MinInputTokens, maxTok: w.MaxInputTokens,
			hasTools: w.HasTools, team: w.Team, budget: w.BudgetBelow, always: w.IsZero()}
		c.label = "rule " + strconv.Itoa(i+1)
		if pr.Name != "" {
			c.label += " " + strconv.Quote(pr.Name)
		}
		c.lowerIdx, c.rawIdx = lowerLastUser, textLastUser
		if w.KeywordsIn == policies.KeywordsInConversation {
			c.lowerIdx, c.rawIdx = lowerConversation, textConversation
		}
		for _, k := range w.Keywords {
			c.keywords = append(c.keywords, lower(strings.TrimSpace(k)))
		}
		if w.Regex != "" {
			re, err := regexp.Compile(w.Regex)
			if err != nil { // Validate checked it; keep the error anyway
				return nil, fmt.Errorf("route: routing.rules[%d].when.regex: %w", i, err)
			}
			c.re = re
			c.reLit = requiredLiteral(w.Regex)
		}
		r.rules = append(r.rules, c)
	}
	return r, nil
}

// Route returns the model of the first matching rule, or the default.
func (r *Rules) Route(ctx context.Context, q *Query) (Decision, bool) {
	if q.estimator == nil {
		q.estimator = r.estimator
	}
	for i := range r.rules {
		if why, ok := r.rules[i].match(ctx, q, r.budget); ok {
			return Decision{Model: r.rules[i].model, Rule: r.rules[i].label + ": " + why}, true
		}
	}
	if r.def != "" {
		return Decision{Model: r.def, Rule: "default " + strconv.Quote(r.def) + ": no rule matched"}, true
	}
	return Decision{}, false
}

// match evaluates the rule's conditions, cheapest first, and explains a
// match.
func (c *rule) match(ctx context.Context, q *Query, budget BudgetReader) (string, bool) {
	if c.always {
		return "always", true
	}
	if c.stage != "" && q.Stage != c.stage {
		return "", false
	}
	if c.team != "" && q.Team != c.team {
		return "", false
	}
	if c.hasTools != nil && (len(q.Request.Tools) > 0) != *c.hasTools {
		return "", false
	}
	kw := ""
	if len(c.keywords) > 0 {
		text := q.text(c.lowerIdx)
		for _, k := range c.keywords {
			if containsWord(text, k) {
				kw = k
				break
			}
		}
		if kw == "" {
			return "", false
		}
	}
	if c.re != nil {
		// A literal the regex requires, missing from the text, rules it
		// out without running the regex.
		if c.reLit != "" && !strings.Contains(q.text(c.rawIdx+2), c.reLit) {
			return "", false
		}
		if !c.re.MatchString(q.text(c.rawIdx)) {
			return "", false
		}
	}
	var tokens int64
	if c.minTok > 0 || c.maxTok > 0 {
		tokens = q.InputTokens()
		if c.minTok > 0 && tokens < c.minTok || c.maxTok > 0 && tokens > c.maxTok {
			return "", false
		}
	}
	var frac float64
	if c.budget != nil {
		var ok bool
		frac, ok = budget.Remaining(ctx, c.budget.Scope)
		if !ok || frac >= c.budget.Fraction {
			return "", false
		}
	}
	// Matched: explain it.
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
	}
	if c.stage != "" {
		b.WriteString("stage=")
		b.WriteString(string(c.stage))
	}
	if c.team != "" {
		sep()
		b.WriteString("team=" + c.team)
	}
	if c.hasTools != nil {
		sep()
		b.WriteString("has_tools=" + strconv.FormatBool(*c.hasTools))
	}
	if kw != "" {
		sep()
		b.WriteString("keyword " + strconv.Quote(kw))
	}
	if c.re != nil {
		sep()
		b.WriteString("regex " + strconv.Quote(c.re.String()))
	}
	if c.minTok > 0 || c.maxTok > 0 {
		sep()
		b.WriteString("tokens " + strconv.FormatInt(tokens, 10))
		if c.minTok > 0 {
			b.WriteString(" >= " + strconv.FormatInt(c.minTok, 10))
		}
		if c.maxTok > 0 {
			b.WriteString(" <= " + strconv.FormatInt(c.maxTok, 10))
		}
	}
	if c.budget != nil {
		sep()
		scope := c.budget.Scope
		if scope == "" {
			scope = policies.BudgetScopeRun
		}
		fmt.Fprintf(&b, "%s budget remaining %.2f < %g", scope, frac, c.budget.Fraction)
	}
	return b.String(), true
}

// lower returns s in lower case, without allocating when it already is.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			b, ok := appendLower(make([]byte, 0, len(s)), s)
			if !ok {
				return strings.ToLower(s)
			}
			return string(b)
		}
	}
	return s
}

// appendLower appends s in lower case to b; false when s is not ASCII.
func appendLower(b []byte, s string) ([]byte, bool) {
	n := len(b)
	b = append(b, s...)
	for i := n; i < len(b); i++ {
		c := b[i]
		if c >= utf8.RuneSelf {
			return b, false
		}
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return b, true
}

// containsWord reports whether word occurs in text as a whole word: not
// preceded nor followed by a letter, digit or underscore. Both are lower
// case.
func containsWord(text, word string) bool {
	if word == "" {
		return false
	}
	for off := 0; ; {
		i := strings.Index(text[off:], word)
		if i < 0 {
			return false
		}
		start := off + i
		end := start + len(word)
		if !wordBefore(text, start) && !wordAt(text, end) {
			return true
		}
		_, size := utf8.DecodeRuneInString(text[start:])
		off = start + size
	}
}

// wordAt reports whether the rune starting at i is a word character.
func wordAt(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	if c < utf8.RuneSelf {
		return isWordByte(c)
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// wordBefore reports whether the rune ending at i is a word character.
func wordBefore(s string, i int) bool {
	if i <= 0 {
		return false
	}
	c := s[i-1]
	if c < utf8.RuneSelf {
		return isWordByte(c)
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// requiredLiteral returns, in lower case, the longest literal that every
// match of the regular expression contains, or "" when there is none of at
// least two bytes (or the expression is not a plain sequence). The lower
// case text of a matching input contains it, whatever the case flags.
func requiredLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	var subs []*syntax.Regexp
	switch re.Op {
	case syntax.OpLiteral:
		subs = []*syntax.Regexp{re}
	case syntax.OpConcat:
		subs = re.Sub
	case syntax.OpCapture:
		if re.Sub[0].Op == syntax.OpLiteral {
			subs = re.Sub
		}
	}
	best := ""
	for _, s := range subs {
		if s.Op == syntax.OpCapture && len(s.Sub) == 1 {
			s = s.Sub[0]
		}
		if s.Op != syntax.OpLiteral {
			continue
		}
		lit := string(s.Rune)
		if len(lit) > len(best) {
			best = lit
		}
	}
	if len(best) < 2 {
		return ""
	}
	return lower(best)
}

// RunBudget returns a BudgetReader of the run scope: the share of the
// policy's run limits (USD and tokens; the smaller share when both are
// set) left, from the run's recorded calls. It knows no other scope.
func RunBudget(b policies.RunBudget) BudgetReader {
	return BudgetReaderFunc(func(ctx context.Context, scope policies.BudgetScope) (float64, bool) {
		if scope != policies.BudgetScopeRun && scope != "" {
			return 0, false
		}
		run := middleware.RunFrom(ctx)
		if run == nil || b.MaxUSD <= 0 && b.MaxTokens <= 0 {
			return 0, false
		}
		t := run.Totals()
		frac := 1.0
		if b.MaxUSD > 0 {
			frac = min(frac, float64(b.MaxUSD.Micro()-t.CostMicros)/float64(b.MaxUSD.Micro()))
		}
		if b.MaxTokens > 0 {
			frac = min(frac, float64(b.MaxTokens-t.Usage.Total())/float64(b.MaxTokens))
		}
		return max(frac, 0), true
	})
}

// fallbackReader asks first, then second.
type fallbackReader struct{ first, second BudgetReader }

func (f fallbackReader) Remaining(ctx context.Context, scope policies.BudgetScope) (float64, bool) {
	if v, ok := f.first.Remaining(ctx, scope); ok {
		return v, true
	}
	return f.second.Remaining(ctx, scope)
}
