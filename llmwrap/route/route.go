package route

import (
	"context"

	"github.com/tokenwise/tokenwise/middleware"
)

// Decision is what a Router picked for one call.
type Decision struct {
	// Model is the model to call. Empty: keep the model the caller asked for.
	Model string
	// Rule explains the choice, e.g. `rule 2 "cheap-tools": stage=tool_selection`.
	// It is recorded in the call's facts and in the RouteDecided event.
	Rule string
}

// Router picks the model of a call. Route returns false when it has no
// opinion: the call keeps the model it asked for. Implementations must be
// safe for concurrent use and quick: Route runs on every call.
type Router interface {
	Route(ctx context.Context, q *Query) (Decision, bool)
}

// RouterFunc adapts a function to a Router.
type RouterFunc func(ctx context.Context, q *Query) (Decision, bool)

// Route calls f(ctx, q).
func (f RouterFunc) Route(ctx context.Context, q *Query) (Decision, bool) { return f(ctx, q) }

// Estimator estimates the input tokens of a request on a model. The budget
// layer's estimator (package tokens) is memoised per call, so that routing
// and budgeting never count a call's tokens twice; plug it with
// [WithEstimator]. Implementations must be safe for concurrent use.
type Estimator interface {
	InputTokens(ctx context.Context, model string, req *middleware.Request) int64
}

// EstimatorFunc adapts a function to an Estimator.
type EstimatorFunc func(ctx context.Context, model string, req *middleware.Request) int64

// InputTokens calls f.
func (f EstimatorFunc) InputTokens(ctx context.Context, model string, req *middleware.Request) int64 {
	return f(ctx, model, req)
}

// BudgetReader reports the remaining share of a budget: remaining/limit in
// [0,1], and false when the scope has no budget it knows of. The budget
// layer implements it for the team scope; [RunBudget] reads a run's.
// Implementations must be safe for concurrent use.
type BudgetReader interface {
	Remaining(ctx context.Context, scope BudgetScope) (fraction float64, ok bool)
}

// BudgetReaderFunc adapts a function to a BudgetReader.
type BudgetReaderFunc func(ctx context.Context, scope BudgetScope) (float64, bool)

// Remaining calls f.
func (f BudgetReaderFunc) Remaining(ctx context.Context, scope BudgetScope) (float64, bool) {
	return f(ctx, scope)
}

// Query is what a Router sees of a call. The texts and the token estimate
// are computed once, on first use, and shared by every rule. A Query is
// used by one goroutine at a time.
type Query struct {
	// Request is the call's request; read-only.
	Request *middleware.Request
	// Stage is the call's stage: declared with middleware.WithStage, or
	// detected (see instrument.DetectStage).
	Stage middleware.Stage
	// Team is the caller's team (middleware.WithTeam), or "".
	Team string

	ctx       context.Context
	estimator Estimator
	model     string // the model token estimates are made for
	tokens    int64
	texts     [2]string // last user, conversation
	have      [2]bool
	estimated bool
	// The budget fractions read so far, by scope: read once per decision
	// however many rules look at them.
	budgets [2]budgetRead
	kw      *kwMemo // the rules' keyword memo, nil: search every time
}

type budgetRead struct {
	scope BudgetScope
	frac  float64
	ok    bool
	read  bool
}

// NewQuery returns the query of req for a router; stage and team are taken
// from the call's facts or the context, as the route middleware does.
func NewQuery(ctx context.Context, req *middleware.Request) *Query {
	q := new(Query) // kept small enough to inline: a caller's query may stay on its stack
	q.init(ctx, req, nil, req.Model)
	return q
}

func (q *Query) init(ctx context.Context, req *middleware.Request, est Estimator, model string) {
	*q = Query{Request: req, Stage: stageOf(ctx, req), Team: middleware.TeamFrom(ctx), ctx: ctx, estimator: est, model: model}
}

// InputTokens returns the estimated input tokens of the request, computed
// once per query with the router's Estimator (a conservative estimate of
// about four bytes per token without one).
func (q *Query) InputTokens() int64 {
	if !q.estimated {
		q.estimated = true
		if q.estimator != nil {
			q.tokens = q.estimator.InputTokens(q.ctx, q.model, q.Request)
		} else {
			q.tokens = roughTokens(q.ctx, q.Request)
		}
	}
	return q.tokens
}

const (
	textLastUser = iota
	textConversation
)

// Text returns the text keywords and regular expressions are matched
// against: the last user message, or every message of the conversation
// (their texts joined with newlines).
func (q *Query) Text(scope KeywordScope) string {
	i := textLastUser
	if scope == KeywordsInConversation {
		i = textConversation
	}
	return q.text(i)
}

func (q *Query) text(i int) string {
	if q.have[i] {
		return q.texts[i]
	}
	var s string
	if i == textLastUser {
		s = q.Request.LastUserText()
	} else {
		s = q.conversation()
	}
	q.texts[i], q.have[i] = s, true
	return s
}

// conversation joins the texts of the messages with newlines.
func (q *Query) conversation() string {
	msgs := q.Request.Messages
	n := 0
	for j := range msgs {
		n += len(msgs[j].Content) + 1
	}
	b := make([]byte, 0, n)
	for j := range msgs {
		if j > 0 {
			b = append(b, '\n')
		}
		b = append(b, msgs[j].Text()...)
	}
	return string(b)
}

// contains reports whether n occurs in the last user message or, conv, in
// the conversation (as Text has them); whole: as a whole word. The
// conversation is searched message by message, without joining it (a
// needle without a newline cannot span two messages, and the joining
// newline is no word character).
func (q *Query) contains(n *needle, conv, whole bool) bool {
	if !conv {
		return q.kw.in(n, q.text(textLastUser), whole)
	}
	if n.lineBreak || q.have[textConversation] {
		return n.in(q.text(textConversation), whole)
	}
	msgs := q.Request.Messages
	for j := range msgs {
		m := &msgs[j]
		if len(m.Parts) == 0 { // Text is Content
			if q.kw.in(n, m.Content, whole) {
				return true
			}
			continue
		}
		for _, p := range m.Parts { // Text joins the text parts with newlines
			if p.Type == "text" && q.kw.in(n, p.Text, whole) {
				return true
			}
		}
	}
	return false
}

// remaining reads the remaining fraction of a budget scope, once per
// query and scope.
func (q *Query) remaining(ctx context.Context, r BudgetReader, scope BudgetScope) (float64, bool) {
	for i := range q.budgets {
		b := &q.budgets[i]
		if b.read && b.scope == scope {
			return b.frac, b.ok
		}
		if !b.read {
			b.scope, b.read = scope, true
			b.frac, b.ok = r.Remaining(ctx, scope)
			return b.frac, b.ok
		}
	}
	return r.Remaining(ctx, scope) // a third scope: not memoised
}

// roughKey is the per-call memo key of the conservative estimate.
type roughKey struct{}

// roughTokens is the fallback estimate: about four bytes per token plus a
// few tokens per message and tool, memoised per call.
func roughTokens(ctx context.Context, req *middleware.Request) int64 {
	return middleware.CallMemo(middleware.CallInfoFrom(ctx), roughKey{}, func() int64 {
		n := 3
		for i := range req.Messages {
			m := &req.Messages[i]
			n += 4 + (len(m.Content)+len(m.Name)+3)/4
			for _, p := range m.Parts {
				n += (len(p.Text) + 3) / 4
				if p.Type != "" && p.Type != "text" {
					n += 85
				}
			}
			for _, tc := range m.ToolCalls {
				n += 1 + (len(tc.Name)+len(tc.Arguments)+3)/4
			}
		}
		for _, t := range req.Tools {
			n += 8 + (len(t.Name)+len(t.Description)+len(t.Parameters)+3)/4
		}
		return int64(n)
	})
}
