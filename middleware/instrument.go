package middleware

import (
	"context"
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
//   - records the call in the run, if the context has one,
//   - turns a panic under it into the call's error, a [*PanicError]
//     also reported as a [PanicRecovered] event.
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
				f.Stage = DetectStage(req)
			}
			ctx = WithCallInfo(ctx, ci)
			start := time.Now()
			if Observing(ctx) {
				Emit(ctx, CallStarted{Run: f.Run, Seq: f.Seq, Team: f.Team, Stage: f.Stage, Model: req.Model, Stream: req.Stream != nil, Time: start})
			}

			// A panic of an inner layer, a router, an observer or the
			// provider code is this call's error, reported to obs.
			resp, err := SafeHandle(ctx, next, req, "chain")

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
					// The stage stays the one the call was routed as; the
					// report shows the answer as final beside it.
					f.Final = IsFinalAnswer(&resp.Message)
					if n := len(resp.Message.ToolCalls); n > 0 && len(f.ToolCalls) == 0 {
						f.ToolCalls = make([]string, n)
						for i, tc := range resp.Message.ToolCalls {
							f.ToolCalls[i] = tc.Name
						}
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
