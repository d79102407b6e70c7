package route

import (
	"context"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
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
	Remaining(ctx context.Context, scope policies.BudgetScope) (fraction float64, ok bool)
}

// BudgetReaderFunc adapts a function to a BudgetReader.
type BudgetReaderFunc func(ctx context.Context, scope policies.BudgetScope) (float64, bool)

// Remaining calls f.
func (f BudgetReaderFunc) Remaining(ctx context.Context, scope policies.BudgetScope) (float64, bool) {
	return f(ctx, scope)
}

// Query is what a Router sees of a call. The texts and the token estimate
// are computed once, on first use, and shared by every rule. A Query is
// used by one goroutine at a time.
type Query struct {
	// Request is the call's request; read-only.
	Request *middleware.Request
	// Stage is the call's stage: declared with middleware.WithStage, or
	// detected (see DetectStage).
	Stage middleware.Stage
	// Team is the caller's team (middleware.WithTeam), or "".
	Team string

	ctx       context.Context
	estimator Estimator
	model     string // the model token estimates are made for
	tokens    int64
	estimated bool
	texts     [4]string // last user / conversation, raw / lower
	have      [4]bool
}

// NewQuery returns the query of req for a router; stage and team are taken
// from the call's facts or the context, as the route middleware does.
func NewQuery(ctx context.Context, req *middleware.Request) *Query {
	return &Query{Request: req, Stage: stageOf(ctx, req), Team: middleware.TeamFrom(ctx), ctx: ctx, model: req.Model}
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
	lowerLastUser
	lowerConversation
)

// Text returns the text keywords and regular expressions are matched
// against: the last user message, or every message of the conversation.
func (q *Query) Text(scope policies.KeywordScope) string {
	i := textLastUser
	if scope == policies.KeywordsInConversation {
		i = textConversation
	}
	return q.text(i)
}

func (q *Query) text(i int) string {
	if q.have[i] {
		return q.texts[i]
	}
	var s string
	switch i {
	case textLastUser:
		s = q.Request.LastUserText()
	case textConversation:
		s = q.conversation(false)
	case lowerConversation:
		s = q.conversation(true)
	case lowerLastUser:
		s = lower(q.text(textLastUser))
	}
	q.texts[i], q.have[i] = s, true
	return s
}

// conversation joins the texts of the messages with newlines, lowered on
// request (in one pass: keywords over the whole conversation never need
// the raw join).
func (q *Query) conversation(lowered bool) string {
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
		t := msgs[j].Text()
		if !lowered {
			b = append(b, t...)
			continue
		}
		var ok bool
		if b, ok = appendLower(b, t); !ok {
			return lower(q.conversation(false))
		}
	}
	return string(b)
}

// roughKey is the per-call memo key of the conservative estimate.
type roughKey struct{}

// roughTokens is the fallback estimate: about four bytes per token plus a
// few tokens per message and tool, memoised per call.
func roughTokens(ctx context.Context, req *middleware.Request) int64 {
	return middleware.CallInfoFrom(ctx).Memo(roughKey{}, func() any {
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
	}).(int64)
}
