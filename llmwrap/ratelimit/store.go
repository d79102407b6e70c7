package ratelimit

import (
	"context"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Store keeps the state of the limits. The in-process [MemoryStore] is the
// default; adapters/redis.RateLimitStore shares the limits between
// replicas. Implementations must be safe for concurrent use.
type Store interface {
	// Admit checks every limit of a at once. When all of them admit the
	// call within a.MaxWait, it commits them (reserving the call's slot,
	// possibly in the future: Decision.Wait) and takes the concurrency
	// leases; otherwise it changes nothing and says how long to wait.
	Admit(ctx context.Context, a *Admission) (Decision, error)
	// Settle corrects the limits of an admitted call (a positive cost
	// charges more, a negative one refunds) and releases its leases.
	Settle(ctx context.Context, s *Settlement) error
	// Learn records what the provider reported about a model's limits.
	Learn(ctx context.Context, key string, f Feedback) error
}

// Cell is one GCRA limit: one unit of cost every Interval, Tolerance of
// them at once (Tolerance = burst × Interval). A cell counts requests or,
// with Tokens set, tokens.
type Cell struct {
	Key       string
	Name      string // reported as the limit that held a call: "rpm", "tpm", "team rpm", ...
	Interval  time.Duration
	Tolerance time.Duration
	Tokens    bool
}

// Slot is a concurrency limit: at most Max leases at once.
type Slot struct {
	Key  string
	Name string // "concurrency", "team concurrency"
	Max  int64
}

// Admission is one call asking to be admitted.
type Admission struct {
	Cells    []Cell
	Slots    []Slot
	Learned  string // key of the provider-learned state of the model; "" none
	Requests int64  // cost in requests (1)
	Tokens   int64  // cost in tokens: input estimate + reserved output
	Lease    string // id of the concurrency lease (unique per call)
	LeaseTTL time.Duration
	MaxWait  time.Duration // a slot up to this far in the future is reserved
}

// Decision is the answer to an Admission.
type Decision struct {
	// OK: admitted; the call may start after Wait.
	OK bool
	// Wait: when OK, how long to wait for the reserved slot; otherwise how
	// long until the call could be admitted (for a full concurrency limit,
	// a polling hint).
	Wait time.Duration
	// Limit names the limit that decided the wait or the refusal.
	Limit string
	// Concurrency: refused because a concurrency limit is full.
	Concurrency bool
	// Retry: not admitted now, but the call may be after Wait, within
	// MaxWait: ask again then. A slot in the future is reserved only when
	// every limit's own next slot is that late (reserving it in a limit
	// that would be free earlier would waste that limit's capacity).
	Retry bool
}

// Settlement corrects an admitted call.
type Settlement struct {
	Cells    []Cell
	Slots    []Slot
	Learned  string
	Requests int64 // requests to charge (negative: refund)
	Tokens   int64 // tokens to charge (negative: refund)
	Lease    string
}

// Feedback is what a provider said about its limits. Zero fields are
// unknown.
type Feedback struct {
	// Pause stops admissions for this long (a 429's Retry-After).
	Pause time.Duration
	// ResetRequests / ResetTokens: the time until the provider's limit is
	// full again; with the limits' interval (one minute / the limit), the
	// provider's own GCRA state.
	ResetRequests, ResetTokens       time.Duration
	IntervalRequests, IntervalTokens time.Duration
}

// providerWindow is the period of the limits providers report (per minute).
const providerWindow = time.Minute

// conformAt returns, for a GCRA cell with theoretical arrival time tat, the
// delay from now until a call of cost (interval × units, inc) conforms. A
// call larger than the tolerance conforms when the cell is idle (tat ≤ now)
// and runs it into debt, so that an oversized request is slow, never stuck.
func conformAt(tat, inc, tol, now int64) int64 {
	if tat < now {
		tat = now
	}
	return middleware.SatAdd(tat, inc-max(tol, inc)) - now
}
