package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// MemoryStore keeps the limits in this process: one GCRA state (a
// theoretical arrival time) per cell, a lease set per slot. A MemoryStore
// is safe for concurrent use; one admission takes one lock.
type MemoryStore struct {
	base    time.Time // times are monotonic ns since base: one clock read per admission
	mu      sync.Mutex
	cells   map[string]*int64 // theoretical arrival time
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
	return &MemoryStore{base: time.Now(), cells: map[string]*int64{}, slots: map[string]*slotState{}, learned: map[string]*learnedState{}}
}

var _ Store = (*MemoryStore)(nil)

// bound is an admission's state in a MemoryStore, looked up once per plan.
type bound struct {
	tats    []*int64
	slots   []*slotState
	learned *learnedState
}

// bind returns the state of the cells, slots and learned key, creating it.
func (m *MemoryStore) bind(cells []Cell, slots []Slot, learned string) *bound {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bindLocked(cells, slots, learned)
}

func (m *MemoryStore) bindLocked(cells []Cell, slots []Slot, learned string) *bound {
	b := &bound{tats: make([]*int64, len(cells)), slots: make([]*slotState, len(slots))}
	for i := range cells {
		p := m.cells[cells[i].Key]
		if p == nil {
			p = new(int64)
			m.cells[cells[i].Key] = p
		}
		b.tats[i] = p
	}
	for i := range slots {
		st := m.slots[slots[i].Key]
		if st == nil {
			st = &slotState{leases: map[string]int64{}}
			m.slots[slots[i].Key] = st
		}
		b.slots[i] = st
	}
	if learned != "" {
		ls := m.learned[learned]
		if ls == nil {
			ls = &learnedState{}
			m.learned[learned] = ls
		}
		b.learned = ls
	}
	return b
}

// Admit implements Store.
func (m *MemoryStore) Admit(_ context.Context, a *Admission) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admitLocked(a, m.bindLocked(a.Cells, a.Slots, a.Learned)), nil
}

func (m *MemoryStore) admit(a *Admission, b *bound) Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admitLocked(a, b)
}

func (m *MemoryStore) now() int64 { return int64(time.Since(m.base)) }

func (m *MemoryStore) admitLocked(a *Admission, b *bound) Decision {
	now := m.now()
	var d Decision
	var delay int64
	for i := range a.Cells {
		c := &a.Cells[i]
		inc := middleware.SatMul(int64(c.Interval), cost(c, a.Requests, a.Tokens))
		if w := conformAt(*b.tats[i], inc, int64(c.Tolerance), now); w > delay {
			delay, d.Limit = w, c.Name
		}
	}
	ls := b.learned
	if ls != nil {
		if w := ls.pause - now; w > delay {
			delay, d.Limit = w, "provider"
		}
		if ls.reqI > 0 {
			if w := conformAt(ls.reqTAT, middleware.SatMul(ls.reqI, a.Requests), int64(providerWindow), now); w > delay {
				delay, d.Limit = w, "provider rpm"
			}
		}
		if ls.tokI > 0 {
			if w := conformAt(ls.tokTAT, middleware.SatMul(ls.tokI, a.Tokens), int64(providerWindow), now); w > delay {
				delay, d.Limit = w, "provider tpm"
			}
		}
	}
	if delay > int64(a.MaxWait) {
		d.Wait = time.Duration(delay)
		return d
	}
	at := now + delay
	if delay > 0 && gap(b, at) {
		d.Wait, d.Retry = time.Duration(delay), true
		return d
	}
	for i, st := range b.slots {
		for id, exp := range st.leases {
			if exp <= now {
				delete(st.leases, id)
			}
		}
		if int64(len(st.leases)) >= a.Slots[i].Max {
			return Decision{Wait: concurrencyPoll, Limit: a.Slots[i].Name, Concurrency: true, Retry: true}
		}
	}
	for i := range a.Cells {
		c := &a.Cells[i]
		p := b.tats[i]
		*p = middleware.SatAdd(max(*p, at), middleware.SatMul(int64(c.Interval), cost(c, a.Requests, a.Tokens)))
	}
	if ls != nil {
		if ls.reqI > 0 {
			ls.reqTAT = middleware.SatAdd(max(ls.reqTAT, at), middleware.SatMul(ls.reqI, a.Requests))
		}
		if ls.tokI > 0 {
			ls.tokTAT = middleware.SatAdd(max(ls.tokTAT, at), middleware.SatMul(ls.tokI, a.Tokens))
		}
	}
	for _, st := range b.slots {
		st.leases[a.Lease] = now + int64(a.LeaseTTL)
	}
	d.OK, d.Wait = true, time.Duration(delay)
	return d
}

// gap reports whether a slot reserved at `at` would leave one of our
// limits idle before it: that limit's next slot is earlier. (The cells
// learned from the provider mirror its state and are reset by its next
// report: they do not count.)
func gap(b *bound, at int64) bool {
	for _, p := range b.tats {
		if *p < at {
			return true
		}
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
	m.settleLocked(s, m.bindLocked(s.Cells, s.Slots, s.Learned))
	return nil
}

func (m *MemoryStore) settle(s *Settlement, b *bound) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleLocked(s, b)
}

func (m *MemoryStore) settleLocked(s *Settlement, b *bound) {
	for i := range s.Cells {
		c := &s.Cells[i]
		if n := cost(c, s.Requests, s.Tokens); n != 0 {
			*b.tats[i] = middleware.SatAdd(*b.tats[i], middleware.SatMul(int64(c.Interval), n))
		}
	}
	if ls := b.learned; ls != nil && s.Learned != "" {
		if ls.reqI > 0 {
			ls.reqTAT = middleware.SatAdd(ls.reqTAT, middleware.SatMul(ls.reqI, s.Requests))
		}
		if ls.tokI > 0 {
			ls.tokTAT = middleware.SatAdd(ls.tokTAT, middleware.SatMul(ls.tokI, s.Tokens))
		}
	}
	for _, st := range b.slots {
		delete(st.leases, s.Lease)
	}
}

// Learn implements Store.
func (m *MemoryStore) Learn(_ context.Context, key string, f Feedback) error {
	now := m.now()
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
