package route

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
	"github.com/tokenwise/tokenwise/middleware"
)

// Rules is the built-in Router: the ordered rules of a Config, first
// match wins, then the default model. It is immutable and
// safe for concurrent use.
type Rules struct {
	rules     []rule
	def       string
	defWhy    string // the explanation of the default
	estimator Estimator
	budget    BudgetReader
	// routing.learned: the calls no rule matched (see learned.go).
	learned      *learnedRoute
	learnedModel *learn.Model
	kw           *kwMemo // keyword matches per message text (kwmemo.go); nil without needles
}

var _ Router = (*Rules)(nil)

type rule struct {
	label    string // `rule 2 "cheap-tools"`
	model    string
	stage    middleware.Stage
	keywords []needle // lower case
	conv     bool     // keywords and regex look at the whole conversation
	re       *regexp.Regexp
	reLit    needle // a literal every match contains; s == "" when none is known
	minTok   int64
	maxTok   int64
	hasTools *bool
	team     string
	budget   *BudgetBelow
	asked    []string // requested_model patterns
	askedPat []modelPattern
	always   bool

	// why[k] explains a match on keyword k (why[0] without keywords):
	// the label and the static conditions; the token and budget parts,
	// when the rule has them, are appended at match time.
	why     []string
	dynamic bool
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

// NewRules compiles the routing rules of cfg. It fails (every problem
// joined, each matching ErrConfig) on a rule without a model, a bad
// regular expression, an unknown scope or check, or an incomplete
// learned section.
func NewRules(cfg Config, opts ...RulesOption) (*Rules, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Rules{def: cfg.Default}
	if r.def != "" {
		r.defWhy = "default " + strconv.Quote(r.def) + ": no rule matched"
	}
	for _, o := range opts {
		o(r)
	}
	run := RunBudget(cfg.RunLimit)
	if r.budget == nil {
		r.budget = run
	} else {
		r.budget = fallbackReader{r.budget, run}
	}
	for i, pr := range cfg.Rules {
		w := pr.When
		c := rule{model: pr.Model, stage: w.Stage, minTok: w.MinInputTokens, maxTok: w.MaxInputTokens,
			hasTools: w.HasTools, team: w.Team, budget: w.BudgetBelow, asked: w.RequestedModel, always: w.IsZero(),
			conv: w.KeywordsIn == KeywordsInConversation}
		for _, p := range c.asked {
			c.askedPat = append(c.askedPat, newModelPattern(p))
		}
		c.label = "rule " + strconv.Itoa(i+1)
		if pr.Name != "" {
			c.label += " " + strconv.Quote(pr.Name)
		}
		for _, k := range w.Keywords {
			c.keywords = append(c.keywords, newNeedle(strings.TrimSpace(k)))
		}
		if w.Regex != "" {
			re, err := regexp.Compile(w.Regex)
			if err != nil { // Validate checked it; keep the error anyway
				return nil, fmt.Errorf("%w: rules[%d]: regex: %w", ErrConfig, i, err)
			}
			c.re = re
			c.reLit = newNeedle(requiredLiteral(w.Regex))
		}
		c.explainStatic()
		r.rules = append(r.rules, c)
	}
	if err := r.initLearned(cfg); err != nil {
		return nil, err
	}
	r.indexNeedles()
	return r, nil
}

// explainStatic builds the explanations of the rule's matches but for the
// token and budget parts, known only at match time.
func (c *rule) explainStatic() {
	if c.always {
		c.why = []string{c.label + ": always"}
		return
	}
	var before, after []string
	if c.stage != "" {
		before = append(before, "stage="+string(c.stage))
	}
	if c.team != "" {
		before = append(before, "team="+c.team)
	}
	if c.hasTools != nil {
		before = append(before, "has_tools="+strconv.FormatBool(*c.hasTools))
	}
	if len(c.asked) > 0 {
		before = append(before, "requested_model="+strings.Join(c.asked, "|"))
	}
	if c.re != nil {
		after = append(after, "regex "+strconv.Quote(c.re.String()))
	}
	c.dynamic = c.minTok > 0 || c.maxTok > 0 || c.budget != nil
	join := func(kw string) string {
		parts := append([]string(nil), before...)
		if kw != "" {
			parts = append(parts, "keyword "+strconv.Quote(kw))
		}
		return c.label + ": " + strings.Join(append(parts, after...), ", ")
	}
	if len(c.keywords) == 0 {
		c.why = []string{join("")}
		return
	}
	for _, k := range c.keywords {
		c.why = append(c.why, join(k.s))
	}
}

// Route returns the model of the first matching rule, or the default.
func (r *Rules) Route(ctx context.Context, q *Query) (Decision, bool) {
	if q.estimator == nil {
		q.estimator = r.estimator
	}
	q.kw = r.kw
	for i := range r.rules {
		c := &r.rules[i]
		if m, ok := c.match(ctx, q, r.budget); ok {
			return Decision{Model: c.model, Rule: c.explain(m)}, true
		}
	}
	if r.learned != nil {
		return r.learned.route(q), true
	}
	if r.def != "" {
		return Decision{Model: r.def, Rule: r.defWhy}, true
	}
	return Decision{}, false
}

// askedFor reports whether model matches one of patterns (path.Match;
// patterns were checked when the rules were made).
func askedFor(patterns []modelPattern, model string) bool {
	for i := range patterns {
		if patterns[i].match(model) {
			return true
		}
	}
	return false
}

// modelPattern is a requested_model pattern, sorted by the work its
// match takes: most are a model's name (matched by equality) or a name's
// prefix and "*" (a prefix, then no '/'), which path.Match would scan
// rune by rune on every call (≈2.5 % of the default chain's CPU with the
// default policy's [gpt-4o, "gpt-4o-20*"]); others are path.Match's,
// after a test of the literal prefix every name they match starts with.
type modelPattern struct {
	p, prefix string // prefix: p up to its first special character (*?[\)
	kind      uint8
}

const (
	patLiteral    = iota // no special character: the name itself
	patPrefixStar        // prefix + "*"
	patGeneral
)

func newModelPattern(p string) modelPattern {
	i := strings.IndexAny(p, `*?[\`)
	switch {
	case i < 0:
		return modelPattern{p: p, prefix: p, kind: patLiteral}
	case p[i:] == "*":
		return modelPattern{p: p, prefix: p[:i], kind: patPrefixStar}
	}
	return modelPattern{p: p, prefix: p[:i], kind: patGeneral}
}

// match is path.Match(m.p, name)'s answer (its error aside: the
// patterns were checked when the rules were made).
func (m *modelPattern) match(name string) bool {
	switch m.kind {
	case patLiteral:
		return name == m.p
	case patPrefixStar:
		// '*' matches any run of characters but '/'.
		return strings.HasPrefix(name, m.prefix) && strings.IndexByte(name[len(m.prefix):], '/') < 0
	}
	if !strings.HasPrefix(name, m.prefix) {
		return false
	}
	ok, _ := path.Match(m.p, name)
	return ok
}

// matched is what a match found: the keyword, and the values its
// explanation shows.
type matched struct {
	kw     int
	tokens int64
	frac   float64
}

// match evaluates the rule's conditions, cheapest first.
func (c *rule) match(ctx context.Context, q *Query, budget BudgetReader) (matched, bool) {
	var m matched
	if c.always {
		return m, true
	}
	if c.stage != "" && q.Stage != c.stage {
		return m, false
	}
	if c.team != "" && q.Team != c.team {
		return m, false
	}
	if c.hasTools != nil && middleware.OffersTools(q.Request) != *c.hasTools {
		return m, false
	}
	if len(c.askedPat) > 0 && !askedFor(c.askedPat, q.Request.Model) {
		return m, false
	}
	if len(c.keywords) > 0 {
		m.kw = -1
		for k := range c.keywords {
			if q.contains(&c.keywords[k], c.conv, true) {
				m.kw = k
				break
			}
		}
		if m.kw < 0 {
			return m, false
		}
	}
	if c.re != nil {
		// A literal the regex requires, missing from the text, rules it
		// out without running the regex (or joining the conversation).
		if c.reLit.s != "" && !q.contains(&c.reLit, c.conv, false) {
			return m, false
		}
		i := textLastUser
		if c.conv {
			i = textConversation
		}
		if !c.re.MatchString(q.text(i)) {
			return m, false
		}
	}
	if c.minTok > 0 || c.maxTok > 0 {
		m.tokens = q.InputTokens()
		if c.minTok > 0 && m.tokens < c.minTok || c.maxTok > 0 && m.tokens > c.maxTok {
			return m, false
		}
	}
	if c.budget != nil {
		var ok bool
		m.frac, ok = q.remaining(ctx, budget, c.budget.Scope)
		if !ok || m.frac >= c.budget.Fraction {
			return m, false
		}
	}
	return m, true
}

// explain returns the explanation of a match, e.g.
// `rule 3 "short-status": keyword "status", tokens 812 <= 2000`.
func (c *rule) explain(m matched) string {
	why := c.why[max(m.kw, 0)]
	if !c.dynamic {
		return why
	}
	var buf [192]byte
	b := append(buf[:0], why...)
	sep := len(why) > len(c.label)+2 // a condition is already written
	if c.minTok > 0 || c.maxTok > 0 {
		if sep {
			b = append(b, ", "...)
		}
		sep = true
		b = append(b, "tokens "...)
		b = strconv.AppendInt(b, m.tokens, 10)
		if c.minTok > 0 {
			b = append(b, " >= "...)
			b = strconv.AppendInt(b, c.minTok, 10)
		}
		if c.maxTok > 0 {
			b = append(b, " <= "...)
			b = strconv.AppendInt(b, c.maxTok, 10)
		}
	}
	if c.budget != nil {
		if sep {
			b = append(b, ", "...)
		}
		scope := c.budget.Scope
		if scope == "" {
			scope = BudgetScopeRun
		}
		b = append(b, scope...)
		b = append(b, " budget remaining "...)
		b = strconv.AppendFloat(b, m.frac, 'f', 2, 64)
		b = append(b, " < "...)
		b = strconv.AppendFloat(b, c.budget.Fraction, 'g', -1, 64)
	}
	return string(b)
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
	return strings.ToLower(best)
}

// RunBudget returns a BudgetReader of the run scope: the share of the
// run limits b (USD and tokens; the smaller share when both are set) left,
// from the run's recorded calls. It knows no other scope.
func RunBudget(b RunLimit) BudgetReader {
	return BudgetReaderFunc(func(ctx context.Context, scope BudgetScope) (float64, bool) {
		if scope != BudgetScopeRun && scope != "" {
			return 0, false
		}
		run := middleware.RunFrom(ctx)
		if run == nil || b.USDMicros <= 0 && b.Tokens <= 0 {
			return 0, false
		}
		used, cost := run.Spent()
		frac := 1.0
		if b.USDMicros > 0 {
			frac = min(frac, float64(b.USDMicros-cost)/float64(b.USDMicros))
		}
		if b.Tokens > 0 {
			frac = min(frac, float64(b.Tokens-used.Total())/float64(b.Tokens))
		}
		return max(frac, 0), true
	})
}

// fallbackReader asks first, then second.
type fallbackReader struct{ first, second BudgetReader }

func (f fallbackReader) Remaining(ctx context.Context, scope BudgetScope) (float64, bool) {
	if v, ok := f.first.Remaining(ctx, scope); ok {
		return v, true
	}
	return f.second.Remaining(ctx, scope)
}
