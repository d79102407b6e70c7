package budget

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the in-process Store, the default: no setup, one ledger
// per key and window, reservations released by their Hold (a process that
// dies takes its ledger with it, so no TTL is needed). Old fixed windows of
// a key are dropped when a newer window of the key is used; a rolling
// window of another length is another ledger, which drops the old one. The zero value
// is ready to use. A MemoryStore is safe for concurrent use.
type MemoryStore struct {
	mu      sync.RWMutex
	ledgers map[ledgerKey]*ledger
	marks   map[string]time.Time
}

type ledgerKey struct {
	key   string
	start int64 // fixed window start (unix seconds); 0 for rolling and unbounded
	// rolling is the length of a rolling window: a window of another
	// length (a policy reloaded with a new one) is another ledger, as it
	// is another key in Redis, never counted with the old length.
	rolling time.Duration
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (s *MemoryStore) ledger(key string, w Window, create bool) *ledger {
	k := ledgerKey{key: key}
	if !w.Start.IsZero() && w.Rolling <= 0 {
		k.start = w.Start.Unix()
	}
	if w.Rolling > 0 {
		k.rolling = w.Rolling
	}
	s.mu.RLock()
	l := s.ledgers[k]
	s.mu.RUnlock()
	if l != nil || !create {
		return l
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l = s.ledgers[k]; l != nil {
		return l
	}
	if s.ledgers == nil {
		s.ledgers = make(map[ledgerKey]*ledger)
	}
	for old, ol := range s.ledgers { // a new fixed window retires the key's older ones, a new rolling length the other lengths
		if old.key == key && (old.start < k.start || k.rolling > 0 && old.rolling > 0) && ol.inFlight() == 0 {
			delete(s.ledgers, old)
		}
	}
	l = &ledger{window: w}
	s.ledgers[k] = l
	return l
}

// Reserve holds r.Need if it fits every limit.
func (s *MemoryStore) Reserve(_ context.Context, r Reservation) (Hold, error) {
	l := s.ledger(r.Key, r.Window, true)
	return l.reserve(r.Need, r.Limit, r.Now)
}

// Balance reads a ledger.
func (s *MemoryStore) Balance(_ context.Context, key string, w Window, now time.Time) (Balance, error) {
	l := s.ledger(key, w, false)
	if l == nil {
		return Balance{}, nil
	}
	return l.balance(now), nil
}

// Mark sets flag for ttl and reports whether it was unset.
func (s *MemoryStore) Mark(_ context.Context, flag string, ttl time.Duration, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.marks[flag]; ok && (ttl <= 0 || now.Before(exp)) {
		return false, nil
	}
	if s.marks == nil {
		s.marks = make(map[string]time.Time)
	}
	for f, exp := range s.marks { // keep the map small: drop expired flags
		if !exp.IsZero() && !now.Before(exp) {
			delete(s.marks, f)
		}
	}
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	s.marks[flag] = exp
	return true, nil
}

// ledger is one window of one key: settled spend and reservations. A
// rolling window keeps its spend in a ring of buckets. Spend is kept
// exact (Amount.SubMicroPico) and rounded up to a micro-dollar when read.
type ledger struct {
	window Window

	mu       sync.Mutex
	used     Amount // fixed and unbounded windows
	reserved Amount
	flights  int64
	ring     [RollingBuckets]bucket
	marks    map[string]bool // soft-limit flags of a run ledger
}

// markOnce sets flag and reports whether it was unset.
func (l *ledger) markOnce(flag string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.marks[flag] {
		return false
	}
	if l.marks == nil {
		l.marks = map[string]bool{}
	}
	l.marks[flag] = true
	return true
}

type bucket struct {
	idx int64
	amt Amount
}

func (l *ledger) inFlight() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flights
}

// usedLocked returns the settled spend in the window at now: the exact sum
// of its settlements, rounded up once to a micro-dollar.
func (l *ledger) usedLocked(now time.Time) Amount {
	if l.window.Rolling <= 0 {
		return l.used.Ceil()
	}
	cur, _ := l.window.Bucket(now)
	var u Amount
	for _, b := range l.ring {
		if b.idx > cur-RollingBuckets && b.idx <= cur {
			u = u.Add(b.amt)
		}
	}
	return u.Ceil()
}

func (l *ledger) reserve(need, limit Amount, now time.Time) (Hold, error) {
	l.mu.Lock()
	used := l.usedLocked(now)
	if err := check(need, limit, used, l.reserved); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	l.reserved = l.reserved.Add(need)
	l.flights++
	l.mu.Unlock()
	idx, _ := l.window.Bucket(now)
	return &memHold{l: l, need: need, bucket: idx}, nil
}

// check returns an *ExceededError for the first unit in which need does
// not fit.
func check(need, limit, used, reserved Amount) error {
	// Saturating: a need at the top of the int64 range (a huge n times
	// max_tokens) must not wrap around to a sum that fits.
	total := used.Add(reserved).Add(need)
	if limit.USDMicros > 0 && total.USDMicros > limit.USDMicros {
		return &ExceededError{Unit: UnitUSD, Limit: limit.USDMicros, Used: used.USDMicros, Reserved: reserved.USDMicros, Need: need.USDMicros}
	}
	if limit.Tokens > 0 && total.Tokens > limit.Tokens {
		return &ExceededError{Unit: UnitTokens, Limit: limit.Tokens, Used: used.Tokens, Reserved: reserved.Tokens, Need: need.Tokens}
	}
	return nil
}

func (l *ledger) settle(need, actual Amount, idx int64, now time.Time) Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reserved = l.reserved.Sub(need)
	l.flights--
	if !actual.IsZero() {
		if l.window.Rolling <= 0 {
			l.used = l.used.Add(actual)
		} else {
			idx = settleBucket(idx, l.window, now)
			b := &l.ring[((idx%RollingBuckets)+RollingBuckets)%RollingBuckets]
			if b.idx != idx {
				*b = bucket{idx: idx}
			}
			b.amt = b.amt.Add(actual)
		}
	}
	return Balance{Used: l.usedLocked(now), Reserved: l.reserved, InFlight: l.flights}
}

// settleBucket returns the rolling bucket a settlement at now of a
// reservation made in bucket idx is charged to: idx while it is in the
// window, else — a call that outlived the window (or a clock that went
// back) — the current bucket, since the spend happened and must stay
// counted for a whole window (charged to its own bucket, it would leave
// the window at once, or take a newer bucket's ring slot). The Redis store
// (adapters/redis) follows the same rule.
func settleBucket(idx int64, w Window, now time.Time) int64 {
	cur, _ := w.Bucket(now)
	if idx <= cur-RollingBuckets || idx > cur {
		return cur
	}
	return idx
}

func (l *ledger) balance(now time.Time) Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Balance{Used: l.usedLocked(now), Reserved: l.reserved, InFlight: l.flights}
}

type memHold struct {
	l      *ledger
	need   Amount
	bucket int64
	done   atomic.Bool
}

func (h *memHold) Settle(_ context.Context, actual Amount, now time.Time) (Balance, error) {
	if h.done.Swap(true) {
		return h.l.balance(now), nil
	}
	return h.l.settle(h.need, actual, h.bucket, now), nil
}
