package ratelimit

import (
	"context"
	"sync"
	"time"
)

// MemoryStore keeps the limits in this process: one GCRA state (a
// theoretical arrival time) per cell, a lease count per slot. A
// MemoryStore is safe for concurrent use; one admission takes one lock.
type MemoryStore struct {
	mu      sync.Mutex
	cells   map[string]*int64 // theoretical arrival time, ns since the epoch
	slots   map[string]*slotState
	learned map[string]*learnedState
}

type slotState struct {
	leases map[string]int64 // lease id -> expiry, ns
}

type learnedState struct {
	pause        int64 // ns
	reqTAT, reqI int64
	tokTAT, tokI int64
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{cells: map[string]*int64{}, slots: map[string]*slotState{}, learned: map[string]*learnedState{}}
}

var _ Store = (*MemoryStore)(nil)

func (m *MemoryStore) cell(key string) *int64 {
	p := m.cells[key]
	if p == nil {
		p = new(int64)
		m.cells[key] = p
	}
	return p
}

// Admit implements Store.
func (m *MemoryStore) Admit(_ context.Context, a *Admission) (Decision, error) {
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	var d Decision
	var delay int64
	for i := range a.Cells {
		c := &a.Cells[i]
		inc := int64(c.Interval) * cost(c, a.Requests, a.Tokens)
		if w := conformAt(*m.cell(c.Key), inc, int64(c.Tolerance), now); w > delay {
			delay, d.Limit = w, c.Name
		}
	}
	var ls *learnedState
	if a.Learned != "" {
		ls = m.learned[a.Learned]
	}
	if ls != nil {
		if w := ls.pause - now; w > delay {
			delay, d.Limit = w, "provider"
		}
		if ls.reqI > 0 {
			if w := conformAt(ls.reqTAT, ls.reqI*a.Requests, int64(providerWindow), now); w > delay {
				delay, d.Limit = w, "provider rpm"
			}
		}
		if ls.tokI > 0 {
			if w := conformAt(ls.tokTAT, ls.tokI*a.Tokens, int64(providerWindow), now); w > delay {
				delay, d.Limit = w, "provider tpm"
			}
		}
	}
	if delay > int64(a.MaxWait) {
		d.Wait = time.Duration(delay)
		return d, nil
	}
	if delay > 0 && m.gap(a, ls, now+delay) {
		d.Wait, d.Retry = time.Duration(delay), true
		return d, nil
	}
	for i := range a.Slots {
		s := &a.Slots[i]
		st := m.slots[s.Key]
		if st == nil {
			continue
		}
		for id, exp := range st.leases {
			if exp <= now {
				delete(st.leases, id)
			}
		}
		if int64(len(st.leases)) >= s.Max {
			return Decision{Wait: concurrencyPoll, Limit: s.Name, Concurrency: true, Retry: true}, nil
		}
	}
	at := now + delay
	for i := range a.Cells {
		c := &a.Cells[i]
		p := m.cell(c.Key)
		*p = max(*p, at) + int64(c.Interval)*cost(c, a.Requests, a.Tokens)
	}
	if ls != nil {
		if ls.reqI > 0 {
			ls.reqTAT = max(ls.reqTAT, at) + ls.reqI*a.Requests
		}
		if ls.tokI > 0 {
			ls.tokTAT = max(ls.tokTAT, at) + ls.tokI*a.Tokens
		}
	}
	for i := range a.Slots {
		s := &a.Slots[i]
		st := m.slots[s.Key]
		if st == nil {
			st = &slotState{leases: map[string]int64{}}
			m.slots[s.Key] = st
		}
		st.leases[a.Lease] = now + int64(a.LeaseTTL)
	}
	d.OK, d.Wait = true, time.Duration(delay)
	return d, nil
}

// gap reports whether a slot reserved at `at` would leave a limit idle
// before it: that limit's next slot is earlier.
func (m *MemoryStore) gap(a *Admission, ls *learnedState, at int64) bool {
	for i := range a.Cells {
		if *m.cell(a.Cells[i].Key) < at {
			return true
		}
	}
	if ls != nil && (ls.reqI > 0 && ls.reqTAT < at || ls.tokI > 0 && ls.tokTAT < at) {
		return true
	}
	return false
}

// concurrencyPoll is how often a call waiting for a concurrency slot asks
// again.
const concurrencyPoll = 20 * time.Millisecond

func cost(c *Cell, requests, tokens int64) int64 {
	if c.Tokens {
		return tokens
	}
	return requests
}

// Settle implements Store.
func (m *MemoryStore) Settle(_ context.Context, s *Settlement) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range s.Cells {
		c := &s.Cells[i]
		if n := cost(c, s.Requests, s.Tokens); n != 0 {
			*m.cell(c.Key) += int64(c.Interval) * n
		}
	}
	if ls := m.learned[s.Learned]; ls != nil && s.Learned != "" {
		if ls.reqI > 0 {
			ls.reqTAT += ls.reqI * s.Requests
		}
		if ls.tokI > 0 {
			ls.tokTAT += ls.tokI * s.Tokens
		}
	}
	for i := range s.Slots {
		if st := m.slots[s.Slots[i].Key]; st != nil {
			delete(st.leases, s.Lease)
		}
	}
	return nil
}

// Learn implements Store.
func (m *MemoryStore) Learn(_ context.Context, key string, f Feedback) error {
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	ls := m.learned[key]
	if ls == nil {
		ls = &learnedState{}
		m.learned[key] = ls
	}
	learn(ls, f, now)
	return nil
}

func learn(ls *learnedState, f Feedback, now int64) {
	if f.Pause > 0 {
		ls.pause = max(ls.pause, now+int64(f.Pause))
	}
	if f.IntervalRequests > 0 {
		ls.reqI = int64(f.IntervalRequests)
		ls.reqTAT = max(ls.reqTAT, now+int64(f.ResetRequests))
	}
	if f.IntervalTokens > 0 {
		ls.tokI = int64(f.IntervalTokens)
		ls.tokTAT = max(ls.tokTAT, now+int64(f.ResetTokens))
	}
}
