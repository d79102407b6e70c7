package middleware

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Pricer prices usage: it returns the exact cost in pico-USD (10^-12
// dollars, see [FormatPico]) of usage on model, and false when the model
// has no known price.
type Pricer interface {
	Cost(model string, u Usage) (pico int64, ok bool)
}

// PricerFunc adapts a function to a Pricer.
type PricerFunc func(model string, u Usage) (int64, bool)

// Cost calls f.
func (f PricerFunc) Cost(model string, u Usage) (int64, bool) { return f(model, u) }

// AnswerPricer is a Pricer that decides which model an answer is billed
// as (see [BilledModel]). llmwrap.Pricer's does, so that a price the
// policy itself gives the model asked for (a deployment's contract price)
// wins over the catalog's price of the name the provider answers with.
type AnswerPricer interface {
	Pricer
	// BilledModel returns requested or answered (see [BilledModel]).
	BilledModel(requested, answered string) string
}

// BilledModel returns the model whose price bills an answer to a request
// for requested that the provider says answered ("" when it names none):
// the one rule of which model a call is billed as, which the Meter, the
// budget layer's settlement and the gateway's passed-through calls share
// (a reservation, made before there is an answer, is priced at the
// dearest of requested and the snapshots of it this rule may bill:
// policies.Policy.AnswerModels). It is answered when the pricer knows its price — a dated
// snapshot may have its own — else requested; an [AnswerPricer] decides
// for itself.
func BilledModel(p Pricer, requested, answered string) string {
	if answered == "" || answered == requested || p == nil {
		return requested
	}
	if ap, ok := p.(AnswerPricer); ok {
		return ap.BilledModel(requested, answered)
	}
	if _, ok := p.Cost(answered, Usage{}); ok {
		return answered
	}
	return requested
}

// CostOfAnswer prices u, the usage of an answer to a request for
// requested that the provider says answered, at [BilledModel]'s model:
// pico-USD, and false when that model has no price (or p is nil).
func CostOfAnswer(p Pricer, requested, answered string, u Usage) (int64, bool) {
	if p == nil {
		return 0, false
	}
	return p.Cost(BilledModel(p, requested, answered), u)
}

// RoutingSaved returns what routing saved on a call (see
// CallFacts.RoutingSavedPico): answer — the usage of the answer the call
// passed on, at the service tier it was billed at — priced at
// f.RequestedModel, plus extraPico (what else the answer cost, such as
// its hosted tools' fees, as it was charged), less f.CostPico. It is 0 for
// a call no router moved (f.Routed false), for an answer without usage,
// and when the requested model has no price or an attempt was billed
// nothing for its usage (its cost unknown, so the saving is too). The
// instrument layer and the gateway's Responses calls both report it so.
func RoutingSaved(pricer Pricer, f *CallFacts, answer Usage, extraPico int64) int64 {
	if pricer == nil || !f.Routed || answer.IsZero() {
		return 0
	}
	asked, ok := pricer.Cost(f.RequestedModel, answer)
	if !ok {
		return 0
	}
	for _, a := range f.Attempts {
		if a.CostPico == 0 && !a.Usage.IsZero() {
			return 0
		}
	}
	if len(f.Attempts) == 0 {
		if _, ok := pricer.Cost(f.Model, answer); !ok {
			return 0
		}
	}
	return SatAdd(asked, extraPico) - f.CostPico
}

type hedgeKey struct{}

// WithHedgedAttempt marks the calls made with ctx as a hedged attempt,
// started alongside another one: the [Meter] records them so.
func WithHedgedAttempt(ctx context.Context) context.Context {
	return context.WithValue(ctx, hedgeKey{}, true)
}

// HedgedAttempt reports whether ctx is that of a hedged attempt
// ([WithHedgedAttempt]).
func HedgedAttempt(ctx context.Context) bool {
	h, _ := ctx.Value(hedgeKey{}).(bool)
	return h
}

type heldKey struct{}

// WithStreamHeld marks the calls made with ctx as streams a layer above
// holds back (a draft the router may replace): their chunks reach no
// caller, so that a failure after some of them may still be retried or
// fall back, as one before the first chunk may.
func WithStreamHeld(ctx context.Context) context.Context {
	return context.WithValue(ctx, heldKey{}, true)
}

// StreamHeld reports whether ctx is that of a held stream
// ([WithStreamHeld]).
func StreamHeld(ctx context.Context) bool {
	h, _ := ctx.Value(heldKey{}).(bool)
	return h
}

type attemptsKey struct{}

// CountAttempts returns a context under which the [Meter] adds one to n for
// every provider attempt it sees sent (a retry's too; not a cached answer,
// nor an attempt that ended before its request reached the provider:
// [NotSentError]). A layer above the retries (the rate limit) reads how many
// requests the provider was sent for one of its calls.
func CountAttempts(ctx context.Context, n *atomic.Int32) context.Context {
	return context.WithValue(ctx, attemptsKey{}, n)
}

// IsAttemptsKey reports whether key is the one the [Meter] looks up the
// counter of [CountAttempts] with: a context type of a layer's own that
// carries the counter — in an allocation the layer makes anyway, sparing
// CountAttempts' — answers Value(key) with its *atomic.Int32.
func IsAttemptsKey(key any) bool {
	_, ok := key.(attemptsKey)
	return ok
}

// countAttempt counts a provider attempt in the counter of CountAttempts.
func countAttempt(ctx context.Context, resp *Response, err error) {
	n, _ := ctx.Value(attemptsKey{}).(*atomic.Int32)
	if n == nil || resp != nil && resp.FromCache {
		return
	}
	if ns := (*NotSentError)(nil); errors.As(err, &ns) {
		return
	}
	n.Add(1)
}

// UsageFunc returns the usage to bill for a provider attempt that reported
// none: a stream cut before its usage chunk (resp holds the partial
// answer), an attempt cancelled or timed out in flight (resp is nil),
// which the provider may have billed for its input, or an answer cut
// after its 2xx status or whole but malformed (resp is nil, err an
// [*AnswerCutError] or an [*AnswerMalformedError]: [AnswerBilled]), which
// the provider billed whole.
type UsageFunc func(req *Request, resp *Response, err error) Usage

// Meter returns the innermost middleware of a chain, the one owner of what
// a call cost. Every provider attempt that passes through it — each retry,
// fallback, hedge, cascade step or regeneration — is recorded once in the
// call's [CallFacts].Attempts with its model, usage, latency, error and
// exact cost, priced once by pricer at the model [BilledModel] picks. The instrument layer (llmwrap/instrument) sums the attempts into
// CallFacts.CostPico; no other layer writes a cost.
//
// An attempt the provider reported no usage for is billed what fill
// returns (nil: [EstimateUsage], a conservative estimate), and marked
// Estimated. A streamed attempt that a panic ends after its first chunk
// (the caller's stream callback) is recorded, billed its input and what
// it streamed, before the panic goes on. pricer may be nil (attempts are
// recorded, costs stay zero).
func Meter(pricer Pricer, fill UsageFunc) Middleware {
	if fill == nil {
		fill = EstimateUsage
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			ci := CallInfoFrom(ctx)
			if ci == nil {
				resp, err := next.Handle(ctx, req)
				countAttempt(ctx, resp, err)
				return resp, err
			}
			// The attempt's place is taken when it starts: attempts are
			// listed in start order, also when a hedge finishes first.
			var idx int
			hedge := HedgedAttempt(ctx)
			ci.Update(func(f *CallFacts) {
				idx = len(f.Attempts)
				f.Attempts = append(f.Attempts, Attempt{Model: req.Model, Hedge: hedge})
			})
			start := time.Now()
			var streamed *streamedOutput
			if req.Stream != nil {
				// A panic in the caller's stream callback ends the attempt
				// after the provider answered: it is billed what it streamed.
				streamed = &streamedOutput{}
				inner := req.Stream
				r := req.Clone()
				r.Stream = func(ctx context.Context, c Chunk) error {
					streamed.add(&c)
					return inner(ctx, c)
				}
				defer func() {
					if v := recover(); v != nil {
						streamed.billPanic(ctx, ci, idx, req, fill, pricer, start, hedge, v)
						panic(v)
					}
				}()
				req = r
			}
			resp, err := next.Handle(ctx, req)
			countAttempt(ctx, resp, err)
			a := Attempt{Model: req.Model, Start: start, Latency: time.Since(start), Err: err, Hedge: hedge}
			if resp != nil && resp.FromCache { // not a provider attempt
				ci.Update(func(f *CallFacts) {
					if idx == len(f.Attempts)-1 {
						f.Attempts = f.Attempts[:idx]
					}
				})
				return resp, err
			}
			// The answer's usage, else what the provider billed without
			// saying (a stream cut before its usage, a timed-out attempt,
			// an answer cut after its 2xx status or malformed: fill), at
			// the service tier the answer names, else the one the request
			// asked for (AttemptUsage, the one rule).
			a.Model, a.Usage, a.Estimated = AttemptUsage(req, resp, err, fill)
			if !a.Usage.IsZero() {
				// At the price of the model that answered (BilledModel).
				a.CostPico, _ = CostOfAnswer(pricer, req.Model, a.Model, a.Usage)
			}
			ci.Update(func(f *CallFacts) { f.Attempts[idx] = a })
			return resp, err
		})
	}
}

// streamedOutput counts what a streamed attempt passed on: whether a
// chunk arrived (the provider had the request) and the bytes of its
// output.
type streamedOutput struct {
	chunks atomic.Int64
	bytes  atomic.Int64
}

func (s *streamedOutput) add(c *Chunk) {
	b := len(c.Content) + len(c.Reasoning) + len(c.Refusal)
	for i := range c.ToolCalls {
		b += len(c.ToolCalls[i].Name) + len(c.ToolCalls[i].Arguments)
	}
	s.chunks.Add(1)
	s.bytes.Add(int64(b))
}

// billPanic records the attempt that a panic under the Meter ended (the
// caller's stream callback, which the provider calls per chunk): after a
// chunk arrived the provider had the request and produced an answer,
// which it bills: its input as fill estimates it (as a cancelled
// attempt's) and the output streamed, one token per three bytes, never
// past max_tokens ([CapOutput]). Before any chunk, nothing is billed.
func (s *streamedOutput) billPanic(ctx context.Context, ci *CallInfo, idx int, req *Request, fill UsageFunc, pricer Pricer, start time.Time, hedge bool, v any) {
	a := Attempt{Model: req.Model, Start: start, Latency: time.Since(start), Err: &PanicError{Value: v}, Hedge: hedge}
	if s.chunks.Load() > 0 {
		a.Usage = fill(req, nil, a.Err)
		a.Usage.OutputTokens = CapOutput(req, SatAdd(a.Usage.OutputTokens, (s.bytes.Load()+2)/3))
		a.Usage = a.Usage.WithServiceTier(req)
		a.Estimated = true
		a.CostPico, _ = CostOfAnswer(pricer, req.Model, a.Model, a.Usage)
	}
	ci.Update(func(f *CallFacts) {
		if idx < len(f.Attempts) {
			f.Attempts[idx] = a
		}
	})
}

// EstimateUsage is the default [UsageFunc]: for a cut stream, the input
// estimate plus the partial answer's output (every choice's: Message and
// OtherChoices); for an answer cut after its 2xx status, the input
// estimate plus the output its body read holds
// ([AnswerCutError.OutputEstimate]); for another attempt that ended
// without a response (a whole answer that is malformed:
// [AnswerMalformedError], a timeout, a cancellation), the input estimate. All estimate one token per
// three bytes, rounding up, with OpenAI's framing: conservative for every
// tokenizer tokenwise knows; the output never past max_tokens per choice
// ([CapOutput]).
func EstimateUsage(req *Request, resp *Response, err error) Usage {
	u := Usage{InputTokens: EstimateInput(req)}
	if out, ok := AnswerBilled(err); ok && resp == nil {
		u.OutputTokens = out
	}
	if resp != nil {
		b := outputBytes(&resp.Message, resp.Refusal)
		for i := range resp.OtherChoices {
			c := &resp.OtherChoices[i]
			b += outputBytes(&c.Message, c.Refusal)
		}
		u.OutputTokens = (b + 2) / 3
	}
	u.OutputTokens = CapOutput(req, u.OutputTokens)
	return u
}

// CapOutput bounds an estimate of the output tokens of an answer to req
// by what the provider can produce, and bill, for it: max_tokens for each
// of its n choices (reasoning included). An estimate counts bytes or
// another tokenizer's tokens (and a cut answer's JSON framing), which may
// be more than the provider's count; the budget reserved the call's output
// at that bound, and an estimate past it would spend past the limit. A
// request without max_tokens is not bounded.
func CapOutput(req *Request, out int64) int64 {
	if req == nil || req.MaxTokens <= 0 {
		return out
	}
	return min(out, SatMul(int64(req.MaxTokens), int64(max(req.N, 1))))
}

// outputBytes counts the bytes of one choice's output: its text,
// reasoning, refusal and tool calls (3 bytes of framing each).
func outputBytes(m *Message, refusal string) int64 {
	b := len(m.Content) + len(m.Reasoning) + len(refusal)
	for _, tc := range m.ToolCalls {
		b += 3 + len(tc.Name) + len(tc.Arguments)
	}
	return int64(b)
}

// EstimateInput is a conservative estimate of a request's input tokens:
// 3 + Σ (4 + bytes/3) per message (its text, name, refusal, tool calls and
// legacy function call) + (8 + bytes/3) per tool, rounding up.
func EstimateInput(r *Request) int64 {
	n := int64(3)
	for i := range r.Messages {
		m := &r.Messages[i]
		b := len(m.Text()) + len(m.Name) + len(m.Refusal)
		for _, tc := range m.ToolCalls {
			b += len(tc.Name) + len(tc.Arguments)
		}
		if fc := m.FunctionCall; fc != nil {
			b += len(fc.Name) + len(fc.Arguments)
		}
		n += 4 + int64(b+2)/3
	}
	for _, t := range r.Tools {
		n += 8 + int64(len(t.Name)+len(t.Description)+len(t.Parameters)+2)/3
	}
	return n
}
