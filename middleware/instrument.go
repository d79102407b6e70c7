package middleware

import (
	"context"
	"strings"
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

// Instrument returns the outermost middleware of a tokenwise chain. For
// every call it:
//   - numbers the call in its run and fills a [CallInfo] (team, stage,
//     requested model) that inner layers update,
//   - attaches obs to the context so that every layer's [Emit] reaches it,
//   - emits [CallStarted] and [CallFinished],
//   - sums the costs of the provider attempts the [Meter] recorded into
//     CallFacts.CostPico (in a chain without a Meter, prices the answer's
//     usage with pricer),
//   - records the call in the run, if the context has one.
//
// pricer and obs may be nil.
func Instrument(pricer Pricer, obs Observer) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			if obs != nil {
				ctx = WithObserver(ctx, obs)
			}
			run := RunFrom(ctx)
			ci := &CallInfo{}
			f := &ci.facts
			f.Team = TeamFrom(ctx)
			f.RequestedModel = req.Model
			f.Model = req.Model
			declared := StageFrom(ctx)
			if run != nil {
				f.Run = run.ID()
				f.Seq = run.NextSeq()
			}
			f.Stage = declared
			if declared == StageUnknown {
				f.Stage = DetectStage(req, max(f.Seq-1, 0))
			}
			ctx = WithCallInfo(ctx, ci)
			start := time.Now()
			if Observing(ctx) {
				Emit(ctx, CallStarted{Run: f.Run, Seq: f.Seq, Team: f.Team, Stage: f.Stage, Model: req.Model, Stream: req.Stream != nil, Time: start})
			}

			resp, err := next.Handle(ctx, req)

			latency := time.Since(start)
			var usage Usage
			ci.Update(func(f *CallFacts) {
				if resp != nil {
					usage = resp.Usage
					if resp.Model != "" && !resp.FromCache {
						f.Model = resp.Model
					}
					if resp.FromCache && f.Cache == CacheNone {
						f.Cache = CacheHit
					}
					if declared == StageUnknown && isFinalAnswer(&resp.Message) {
						f.Stage = StageFinalAnswer
					}
				}
				switch {
				case len(f.Attempts) > 0: // the Meter priced each attempt once
					f.CostPico = 0
					var sum Usage
					for _, a := range f.Attempts {
						f.CostPico += a.CostPico
						sum = sum.Add(a.Usage)
					}
					usage = sum
				case pricer != nil && !usage.IsZero() && (resp == nil || !resp.FromCache):
					if c, ok := pricer.Cost(f.Model, usage); ok {
						f.CostPico = c
					}
				}
			})
			facts := ci.Facts()
			if resp != nil && resp.FromCache {
				usage = Usage{} // nothing was spent
			}
			if run != nil {
				run.Record(CallRecord{CallFacts: facts, Usage: usage, Latency: latency, Start: start, Err: err})
			}
			if Observing(ctx) {
				Emit(ctx, CallFinished{Facts: facts, Usage: usage, Latency: latency, Err: err})
			}
			return resp, err
		})
	}
}

// isFinalAnswer reports whether an assistant message answers the user
// rather than asking for a tool: no native tool calls, some content, and not
// a ReAct (one-shot agent) action line.
func isFinalAnswer(m *Message) bool {
	if len(m.ToolCalls) > 0 || m.Content == "" {
		return false
	}
	c := m.Content
	if strings.Contains(c, "Final Answer:") {
		return true
	}
	return !strings.HasPrefix(c, "Action:") && !strings.Contains(c, "\nAction:")
}
