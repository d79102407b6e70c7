package gateway

import (
	"container/list"
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// runTable remembers the runs of X-Run-Id, so that the calls of one run
// (in several requests) share its per-run budget, call limit and deadline.
// It is bounded by entries (least recently used forgotten first) and by
// idle time (a run without a call for idle is forgotten), both enforced
// on access, without a goroutine of its own.
//
// With a RunStore (a gateway with Redis), the runs it opens are shared
// runs (middleware.OpenSharedRun): their call count, start and per-run
// budget live in the store, under the same key in every replica, so the
// table only keeps this replica's record of their calls; a run it forgets
// and opens again is still the same run in the store.
type runTable struct {
	mu    sync.Mutex
	max   int
	idle  time.Duration
	now   func() time.Time
	store middleware.RunStore // nil: runs of this replica only
	lru   *list.List          // of *runEntry, most recent first
	byID  map[string]*list.Element
}

type runEntry struct {
	key  string
	run  *middleware.Run
	last time.Time
	// pins counts the calls of the run in flight: a pinned run is never
	// forgotten (an entry bound or idle time would otherwise reopen it
	// under its id with its call count and per-run budget at zero while
	// a call of it still runs).
	pins int
}

func newRunTable(max int, idle time.Duration, store middleware.RunStore) *runTable {
	return &runTable{max: max, idle: idle, now: time.Now, store: store, lru: list.New(), byID: map[string]*list.Element{}}
}

// runKey names a team's run id, in the table and in the shared stores:
// "<team>/<run id>", the team path-escaped (so no team's key is another's).
func runKey(team, id string) string { return url.PathEscape(team) + "/" + id }

// get returns the run of key, opening it (with id) when it is new or was
// forgotten, pinned until ctx (the call's request) is done: a run with a
// call in flight is neither idle nor evicted by the entry bound, which a
// table full of pinned runs exceeds until their calls end.
func (t *runTable) get(ctx context.Context, key, id string) *middleware.Run {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	// Forget the runs idle too long, oldest first (but those pinned).
	for e := t.lru.Back(); e != nil && now.Sub(e.Value.(*runEntry).last) > t.idle; {
		prev := e.Prev()
		if e.Value.(*runEntry).pins == 0 {
			t.remove(e)
		}
		e = prev
	}
	e, ok := t.byID[key]
	if ok {
		e.Value.(*runEntry).last = now
		t.lru.MoveToFront(e)
	} else {
		for b := t.lru.Back(); t.lru.Len() >= t.max && b != nil; {
			prev := b.Prev()
			if b.Value.(*runEntry).pins == 0 {
				t.remove(b)
			}
			b = prev
		}
		var r *middleware.Run
		if t.store != nil {
			r = middleware.OpenSharedRun(id, key, t.store)
		} else {
			_, r = middleware.StartRun(context.Background(), id)
		}
		e = t.lru.PushFront(&runEntry{key: key, run: r, last: now})
		t.byID[key] = e
	}
	re := e.Value.(*runEntry)
	re.pins++
	context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		re.pins--
		if el, ok := t.byID[re.key]; ok && el.Value == re {
			// Idle from the end of its last call.
			re.last = t.now()
			t.lru.MoveToFront(el)
		}
	})
	return re.run
}

// peek returns the run of key if the table has it (not idle too long),
// without opening it or marking it used.
func (t *runTable) peek(key string) *middleware.Run {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byID[key]; ok {
		if re := e.Value.(*runEntry); t.now().Sub(re.last) <= t.idle {
			return re.run
		}
	}
	return nil
}

func (t *runTable) remove(e *list.Element) {
	delete(t.byID, e.Value.(*runEntry).key)
	t.lru.Remove(e)
}

// report records a policed call the gateway passed through (a Responses
// or an embeddings call) as the chain records a chat call: in the run
// X-Run-Id names (nil: none), and to the team's observers — the
// gateway's metrics (its duration, tokens and cost) and those of the
// gateway's options — as a [middleware.CallFinished] event.
func (s *Server) report(team string, run *middleware.Run, rec middleware.CallRecord) {
	if run != nil {
		rec.Run = run.ID()
		run.Record(rec)
	}
	s.observe(team, middleware.CallFinished{Facts: rec.CallFacts, Usage: rec.Usage, Latency: rec.Latency, Err: rec.Err})
}

// observe sends e to team's observers: its Responses chain's (the
// registry's, the gateway's metrics among them), else the metrics'.
func (s *Server) observe(team string, e middleware.Event) {
	obs := s.passLimitsOf(team).observer
	if obs == nil && s.metrics != nil {
		obs = s.metrics.observer
	}
	if obs != nil {
		obs.Observe(context.Background(), e)
	}
}
