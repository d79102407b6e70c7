package middlewaretest

import (
	"context"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// RunStore is an in-memory middleware.RunStore for tests: the runs opened
// on it with middleware.OpenSharedRun (several *Run per key, as replicas
// would) share one count and start per key, as a shared store's do. Its
// runs never expire. Set Err to make it fail. The zero value is ready to
// use (Idle 0 then).
type RunStore struct {
	IdleTime time.Duration // what Idle returns

	mu   sync.Mutex
	runs map[string]*runState
	err  error
}

type runState struct {
	n     int
	start time.Time
	sums  map[string]int64 // the fields of the calls' Totals, summed by name
}

var (
	_ middleware.RunStore = (*RunStore)(nil)
	_ middleware.RunSums  = (*RunStore)(nil)
)

// Next counts a call of the run key.
func (s *RunStore) Next(_ context.Context, key string, now time.Time) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, time.Time{}, s.err
	}
	r := s.run(key, now)
	r.n++
	return r.n, r.start, nil
}

// run returns the state of the run key, made (started at start) when new;
// s.mu is held.
func (s *RunStore) run(key string, start time.Time) *runState {
	r := s.runs[key]
	if r == nil {
		if s.runs == nil {
			s.runs = map[string]*runState{}
		}
		r = &runState{start: start, sums: map[string]int64{}}
		s.runs[key] = r
	}
	return r
}

// Idle returns IdleTime.
func (s *RunStore) Idle() time.Duration { return s.IdleTime }

// SetStart sets the start of the run key, as a replica that saw the run
// first would have.
func (s *RunStore) SetStart(key string, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run(key, start).start = start
}

// AddCall adds a call's figures to the run key's sums, field by field (as
// a shared store's counters do).
func (s *RunStore) AddCall(_ context.Context, key string, call middleware.Totals) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	r := s.run(key, time.Time{})
	for _, f := range call.Fields() {
		r.sums[f.Name] += f.Value
	}
	return nil
}

// Sums returns the run key's sums, numbered calls and start.
func (s *RunStore) Sums(_ context.Context, key string) (middleware.RunState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return middleware.RunState{}, false, s.err
	}
	r := s.runs[key]
	if r == nil {
		return middleware.RunState{}, false, nil
	}
	fields := make([]middleware.TotalsField, 0, len(r.sums))
	for name, v := range r.sums {
		fields = append(fields, middleware.TotalsField{Name: name, Value: v})
	}
	return middleware.RunState{Sums: middleware.TotalsFromFields(fields), Calls: r.n, Start: r.start}, true, nil
}

// Fail makes every later call fail with err (nil: succeed again).
func (s *RunStore) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}
