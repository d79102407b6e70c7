// Package instrument is the front door of the chain, its outermost layer:
// its middleware ([New]) opens every call — numbers it in its run, fills the
// call's [middleware.CallInfo], detects the call's stage ([DetectStage], the
// one stage detector of tokenwise), emits the call's events, sums what the
// [middleware.Meter] recorded and records the call in its run.
//
// llmwrap.Build puts it outermost; layers that make calls of their own (a
// compactor's summary) use it too, so it lives in a package of its own that
// layers may import without importing llmwrap. Layers read the stage it
// detected from the call's facts ([middleware.CallInfo.Stage]).
package instrument

import (
	"context"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// New returns the outermost middleware of a tokenwise chain. For every
// call it:
//   - numbers the call in its run and fills a [middleware.CallInfo] (team,
//     stage, requested model) that inner layers update,
//   - attaches obs to the context so that every layer's [middleware.Emit]
//     reaches it,
//   - emits [middleware.CallStarted] and [middleware.CallFinished],
//   - sums the costs of the provider attempts the [middleware.Meter]
//     recorded into CallFacts.CostPico (in a chain without a Meter, prices
//     the answer's usage with pricer),
//   - records the call in the run, if the context has one,
//   - turns a panic under it into the call's error, a
//     [*middleware.PanicError] also reported as a
//     [middleware.PanicRecovered] event.
//
// pricer and obs may be nil.
func New(pricer middleware.Pricer, obs middleware.Observer) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			// The observer is added with the call's CallInfo, in one
			// allocation (StartObservedCall); only a shared run's store
			// sees the context before.
			observing := obs != nil || middleware.Observing(ctx)
			run := middleware.RunFrom(ctx)
			f := middleware.CallFacts{
				Team:           middleware.TeamFrom(ctx),
				RequestedModel: req.Model,
				Model:          req.Model,
				Stage:          middleware.StageFrom(ctx),
			}
			if run != nil {
				f.Run = run.ID()
				seqCtx := ctx
				if _, store := run.Shared(); store != nil {
					seqCtx = middleware.WithObserver(ctx, obs)
				}
				seq, err := run.NextSeqContext(seqCtx)
				if err != nil {
					// A shared run's store failed: the call cannot be
					// numbered, so no call limit could hold for it.
					middleware.Emit(middleware.WithObserver(ctx, obs), middleware.StoreFailed{Store: "runs", Op: "next", Err: err})
					return nil, err
				}
				f.Seq = seq
			}
			if f.Stage == middleware.StageUnknown {
				f.Stage = DetectStage(req)
			}
			ctx, ci := middleware.StartObservedCall(ctx, f, obs)
			var start time.Time // read by the run's record and the events only
			if run != nil || observing {
				start = time.Now()
			}
			if observing {
				middleware.Emit(ctx, middleware.CallStarted{Run: f.Run, Seq: f.Seq, Team: f.Team, Stage: f.Stage, Model: req.Model, Stream: req.Stream != nil, Time: start})
			}

			// A panic of an inner layer, a router, an observer or the
			// provider code is this call's error, reported to obs.
			resp, err := middleware.SafeHandle(ctx, next, req, "chain")

			if run == nil && !observing {
				// No run records the call and no observer reads it: its
				// facts, known only to this call's layers, end here.
				return resp, err
			}
			latency := time.Since(start)
			var usage middleware.Usage
			ci.Update(func(f *middleware.CallFacts) {
				sent := f.Model // the model called, before the answer names its own
				if resp != nil {
					usage = resp.Usage
					if resp.Model != "" {
						// A hit too: its answer's model (the one a routed
						// call went to) is what it saved the price of.
						f.Model = resp.Model
					}
					if resp.FromCache && f.Cache == middleware.CacheNone {
						f.Cache = middleware.CacheHit
					}
				}
				if resp != nil && err == nil {
					// The stage stays the one the call was routed as; the
					// report shows the answer as final beside it. A failed
					// call's partial answer (a cut stream's) neither
					// answered nor asked for tools.
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
					var sum middleware.Usage
					for _, a := range f.Attempts {
						f.CostPico = middleware.SatAdd(f.CostPico, a.CostPico)
						sum = sum.Add(a.Usage)
					}
					usage = sum
				case pricer != nil && !usage.IsZero() && (resp == nil || !resp.FromCache):
					if c, ok := middleware.CostOfAnswer(pricer, sent, f.Model, usage.WithServiceTier(req)); ok {
						f.CostPico = c
					}
				}
				if f.Routed && err == nil && resp != nil && !resp.FromCache {
					f.RoutingSavedPico = middleware.RoutingSaved(pricer, f, answerUsage(f, resp, req), 0)
				}
			})
			facts := ci.Facts()
			if resp != nil && resp.FromCache {
				usage = middleware.Usage{} // nothing was spent
			}
			if run != nil {
				run.Record(middleware.CallRecord{CallFacts: facts, Usage: usage, Latency: latency, Start: start, Err: err})
			}
			if observing {
				middleware.Emit(ctx, middleware.CallFinished{Facts: facts, Usage: usage, Latency: latency, Err: err})
			}
			return resp, err
		})
	}
}

// answerUsage returns the usage of the answer a call passed on: that of
// the last attempt that answered (a cascade's rejected answers and a
// regenerated draft come before it; a hedge's loser has its error), else
// resp's, at the service tier it was billed at.
func answerUsage(f *middleware.CallFacts, resp *middleware.Response, req *middleware.Request) middleware.Usage {
	for i := len(f.Attempts) - 1; i >= 0; i-- {
		if a := &f.Attempts[i]; a.Err == nil {
			return a.Usage // (the Meter billed it at its tier)
		}
	}
	return resp.Usage.WithServiceTier(req)
}

// roleFunction is the role of a legacy function result (the functions
// API's, before tools), as the adapters read it.
const roleFunction middleware.Role = "function"

// DetectStage infers a call's stage when the caller did not declare it. It
// is the only stage detector of tokenwise: the instrument layer runs it
// once per call, records the result in the call's facts, and the router
// reads it from there.
//
//   - the last message a tool result (role "tool", or "function": the
//     legacy functions API's result, as go-openai's Functions send it):
//     result analysis;
//   - the last message the assistant's (a continuation): final answer;
//   - the last message the user's and tools offered: tool selection;
//   - a one-shot (ReAct) agent's prompt — tools described in the text, with
//     "Question:" and "Action Input:" — is tool selection, or result
//     analysis once its scratchpad holds an Observation after the question;
//   - anything else offers no tool, so the model can only answer: final
//     answer. A request without tools is never tool selection.
func DetectStage(req *middleware.Request) middleware.Stage {
	last := req.LastMessage()
	if last == nil {
		return middleware.StageFinalAnswer
	}
	switch last.Role {
	case middleware.RoleTool, roleFunction:
		return middleware.StageResultAnalysis
	case middleware.RoleAssistant:
		return middleware.StageFinalAnswer
	}
	if middleware.OffersTools(req) {
		return middleware.StageToolSelection
	}
	if last.Role == middleware.RoleUser {
		text := last.Text()
		if q := strings.LastIndex(text, "Question:"); q >= 0 && strings.Contains(text, "Action Input:") {
			if strings.Contains(text[q:], "\nObservation:") {
				return middleware.StageResultAnalysis
			}
			return middleware.StageToolSelection
		}
	}
	return middleware.StageFinalAnswer
}

// IsFinalAnswer reports whether an assistant message answers the user
// rather than asking for a tool: no native tool calls, some text, and not
// a one-shot (ReAct) agent's "Action:" step.
func IsFinalAnswer(m *middleware.Message) bool {
	if m == nil || len(m.ToolCalls) > 0 {
		return false
	}
	c := m.Text()
	if strings.TrimSpace(c) == "" {
		return false
	}
	if strings.Contains(c, "Final Answer:") {
		return true
	}
	return !strings.HasPrefix(c, "Action:") && !strings.Contains(c, "\nAction:")
}
