package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// ErrNotRecorded is returned by the replay provider for a request the
// trace holds no answer to.
var ErrNotRecorded = errors.New("tokenwise/observe: no recorded answer for this request")

// ReplayResult sums a replay.
type ReplayResult struct {
	Calls        int   // calls replayed
	Failed       int   // calls that failed under the policy (guard, budget, no answer)
	CacheHits    int   // calls the policy's cache answered
	RecordedCost int64 // pico-USD the trace says the calls cost
	CostPico     int64 // pico-USD they cost under the policy (exact)
	SavedPico    int64 // pico-USD the policy's cache saved (exact)
	Usage        middleware.Usage
	Runs         []*middleware.Run // the replayed runs, in order of first call
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// Progress, when set, is called after each record with the number done
	// and the total.
	Progress func(done, total int)
	// BuildOptions are passed to llmwrap.Build (observers, stores).
	BuildOptions []llmwrap.Option
}

// Replay runs the recorded calls, in order, through the chain that
// llmwrap.Build makes of p, offline: instead of a provider, each call is
// answered with the recorded response to the same conversation (its
// content and usage), whatever model the policy routes it to. The result
// says what the trace would have cost and saved under p: usage is priced
// at the model the policy picked, cache hits are free, guards and budgets
// refuse what they would have refused.
//
// Calls keep their run (a run per recorded run id) and team. Recorded
// failures without a response are counted but not replayed.
func Replay(ctx context.Context, p *policies.Policy, recs []Record, opts ReplayOptions) (*ReplayResult, error) {
	chain, err := llmwrap.Build(p, opts.BuildOptions...)
	if err != nil {
		return nil, err
	}
	prov := &replayProvider{answers: map[string][]*TraceResponse{}}
	for i := range recs {
		if recs[i].Response != nil {
			k := conversationKey(recs[i].Request)
			prov.answers[k] = append(prov.answers[k], recs[i].Response)
		}
	}
	h := chain(prov)
	res := &ReplayResult{}
	runs := map[string]context.Context{}
	for i, rec := range recs {
		res.RecordedCost += rec.cost()
		if rec.Response == nil {
			res.Calls++
			res.Failed++
			if opts.Progress != nil {
				opts.Progress(i+1, len(recs))
			}
			continue
		}
		cctx := ctx
		if rec.Run != "" {
			rctx, ok := runs[rec.Run]
			if !ok {
				var run *middleware.Run
				rctx, run = middleware.StartRun(ctx, rec.Run)
				runs[rec.Run] = rctx
				res.Runs = append(res.Runs, run)
			}
			cctx = rctx
		}
		if rec.Team != "" {
			cctx = middleware.WithTeam(cctx, rec.Team)
		}
		capt := &finishedCapture{}
		req := rec.Request.Request()
		_, err := h.Handle(middleware.WithObserver(cctx, capt), req)
		res.Calls++
		if err != nil {
			res.Failed++
		}
		if ev := capt.ev; ev != nil {
			res.CostPico += ev.Facts.CostPico
			res.Usage = res.Usage.Add(ev.Usage)
			if ev.Facts.Cache == middleware.CacheHit {
				res.CacheHits++
				// (a compaction's savings are no cache's)
				res.SavedPico += ev.Facts.SavedPico
			}
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(recs))
		}
	}
	return res, nil
}

// conversationKey identifies a request by its conversation only: the
// policy may route it to another model and its layers may change the
// settings (max_tokens, tools).
func conversationKey(r TraceRequest) string {
	b, _ := json.Marshal(r.Messages)
	return string(b)
}

// replayProvider answers with recorded responses, in recorded order for
// identical conversations. Safe for concurrent use.
type replayProvider struct {
	mu      sync.Mutex
	answers map[string][]*TraceResponse
	used    map[string]int
}

func (p *replayProvider) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	k := conversationKey(NewTraceRequest(req))
	p.mu.Lock()
	as := p.answers[k]
	if p.used == nil {
		p.used = map[string]int{}
	}
	i := p.used[k]
	if i < len(as)-1 {
		p.used[k] = i + 1
	}
	p.mu.Unlock()
	if len(as) == 0 {
		return nil, fmt.Errorf("%w (model %s, %d messages)", ErrNotRecorded, req.Model, len(req.Messages))
	}
	resp := as[i].Response()
	resp.Model = req.Model // priced at the model the policy picked
	resp.FromCache = false
	if req.Stream != nil {
		if err := middleware.Replay(ctx, resp, 0, req.Stream); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// cost returns the recorded cost in pico-USD, converting a trace written
// in micro-USD.
func (r *Record) cost() int64 {
	if r.CostPico == 0 && r.CostMicros != 0 {
		return r.CostMicros * 1_000_000
	}
	return r.CostPico
}
