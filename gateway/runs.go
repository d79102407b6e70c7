package gateway

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// runTable remembers the runs of X-Run-Id, so that the calls of one run
// (in several requests) share its per-run budget, call limit and deadline.
// It is bounded by entries (least recently used forgotten first) and by
// idle time (a run without a call for idle is forgotten), both enforced
// on access, without a goroutine of its own.
type runTable struct {
	mu   sync.Mutex
	max  int
	idle time.Duration
	now  func() time.Time
	lru  *list.List // of *runEntry, most recent first
	byID map[runKey]*list.Element
}

// runKey names a run: a team's run id (teams have runs of their own).
type runKey struct{ team, id string }

type runEntry struct {
	key  runKey
	run  *middleware.Run
	last time.Time
}

func newRunTable(max int, idle time.Duration) *runTable {
	return &runTable{max: max, idle: idle, now: time.Now, lru: list.New(), byID: map[runKey]*list.Element{}}
}

// get returns the run id of team, opening it when it is new or was
// forgotten.
func (t *runTable) get(team, id string) *middleware.Run {
	key := runKey{team, id}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	// Forget the runs idle too long, oldest first.
	for e := t.lru.Back(); e != nil && now.Sub(e.Value.(*runEntry).last) > t.idle; e = t.lru.Back() {
		t.remove(e)
	}
	if e, ok := t.byID[key]; ok {
		re := e.Value.(*runEntry)
		re.last = now
		t.lru.MoveToFront(e)
		return re.run
	}
	for t.lru.Len() >= t.max {
		t.remove(t.lru.Back())
	}
	_, r := middleware.StartRun(context.Background(), id)
	t.byID[key] = t.lru.PushFront(&runEntry{key: key, run: r, last: now})
	return r
}

func (t *runTable) remove(e *list.Element) {
	delete(t.byID, e.Value.(*runEntry).key)
	t.lru.Remove(e)
}
