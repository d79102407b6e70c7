package budget

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Amount is a quantity of budget in both units: micro-USD and tokens.
type Amount struct {
	USDMicros int64
	Tokens    int64
	// SubMicroPico is a fraction of a micro-dollar, in pico-dollars (0 to
	// 999,999), on top of USDMicros. A settlement carries the exact cost
	// of a call so (see [Exact]): a ledger sums exact costs and rounds its
	// total up to a whole micro-dollar once, when it is read, so that it
	// never drifts from the provider's bill by a rounding per call.
	// Reservations and limits are whole micro-dollars, and so is a
	// [Balance] a Store returns (its Used is the exact spend rounded up).
	SubMicroPico int64
}

// picoPerMicro is the number of pico-dollars in a micro-dollar.
const picoPerMicro = 1_000_000

// Exact returns the Amount of tokens and an exact cost of pico
// pico-dollars: whole micro-dollars and the pico-dollars left over, the
// form a settlement takes.
func Exact(tokens, pico int64) Amount {
	return Amount{Tokens: tokens}.withPico(0, pico)
}

// withPico returns a with micro whole micro-dollars and pico
// pico-dollars (any sign) added to its USD, its SubMicroPico carried into
// USDMicros so that it stays in [0, 999,999]; saturating at the int64
// range.
func (a Amount) withPico(micro, pico int64) Amount {
	p := a.SubMicroPico + pico%picoPerMicro // |p| < 2,000,000
	carry := pico / picoPerMicro
	switch {
	case p >= picoPerMicro:
		p, carry = p-picoPerMicro, carry+1
	case p < 0:
		p, carry = p+picoPerMicro, carry-1
	}
	a.USDMicros = middleware.SatAdd(middleware.SatAdd(a.USDMicros, micro), carry)
	a.SubMicroPico = p
	return a
}

// Add returns a + b, saturating at the int64 range.
func (a Amount) Add(b Amount) Amount {
	a.Tokens = middleware.SatAdd(a.Tokens, b.Tokens)
	return a.withPico(b.USDMicros, b.SubMicroPico)
}

// Sub returns a - b.
func (a Amount) Sub(b Amount) Amount {
	a.Tokens -= b.Tokens
	return a.withPico(-b.USDMicros, -b.SubMicroPico)
}

// Ceil returns a with its USD rounded up to whole micro-dollars.
func (a Amount) Ceil() Amount {
	if a.SubMicroPico > 0 {
		a.USDMicros = middleware.SatAdd(a.USDMicros, 1)
	}
	a.SubMicroPico = 0
	return a
}

// IsZero reports whether a is zero in both units.
func (a Amount) IsZero() bool { return a == Amount{} }

// Window is the accounting period of a ledger. A fixed window (daily,
// monthly) has Start and End and its own ledger; a rolling window has
// Rolling set and counts the spend of the last Rolling, in [RollingBuckets]
// buckets (so spend leaves the window up to Rolling/RollingBuckets late:
// on the safe side). The zero Window is one unbounded period (a run).
type Window struct {
	Start, End time.Time     // fixed windows, UTC
	Rolling    time.Duration // rolling windows
}

// RollingBuckets is the number of buckets of a rolling window.
const RollingBuckets = 60

// WindowFor returns the window of period containing now (UTC): the
// calendar day, the calendar month, or a rolling window of length rolling.
func WindowFor(period Period, rolling time.Duration, now time.Time) Window {
	now = now.UTC()
	switch period {
	case PeriodDaily:
		s := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return Window{Start: s, End: s.AddDate(0, 0, 1)}
	case PeriodMonthly:
		s := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return Window{Start: s, End: s.AddDate(0, 1, 0)}
	case PeriodRolling:
		return Window{Rolling: rolling}
	}
	return Window{}
}

// ID names the window in keys: "d20260115", "m202601", "r24h0m0s", or "all".
func (w Window) ID() string {
	switch {
	case w.Rolling > 0:
		return "r" + w.Rolling.String()
	case w.Start.IsZero():
		return "all"
	case w.End.Sub(w.Start) <= 24*time.Hour:
		return "d" + w.Start.Format("20060102")
	default:
		return "m" + w.Start.Format("200601")
	}
}

// Bucket returns the rolling bucket of now and the bucket length; (0, 0)
// for a fixed window.
func (w Window) Bucket(now time.Time) (idx int64, size time.Duration) {
	if w.Rolling <= 0 {
		return 0, 0
	}
	size = max(w.Rolling/RollingBuckets, time.Millisecond)
	return now.UnixNano() / int64(size), size
}

// Remains returns how long the window lasts after now: until End for a fixed
// window, Rolling for a rolling one, 0 for the unbounded window.
func (w Window) Remains(now time.Time) time.Duration {
	switch {
	case w.Rolling > 0:
		return w.Rolling
	case w.End.IsZero():
		return 0
	}
	return w.End.Sub(now)
}

// Reservation asks a Store to hold Need against a ledger.
type Reservation struct {
	Key    string        // the ledger, namespaced (prefix, policy, team); the store adds the window
	ID     string        // unique id of this reservation (shared stores key on it)
	Need   Amount        // the worst case of the call
	Limit  Amount        // per unit; 0 = no limit in that unit (the spend is still recorded)
	Window Window        // the accounting period
	Now    time.Time     // the clock of the caller
	TTL    time.Duration // a shared store drops a reservation never settled after TTL
	// Idle, when positive, is how long a shared store keeps the ledger
	// after its last reservation (a shared run's ledger: the run's idle
	// time); zero: as long as its window lasts.
	Idle time.Duration
}

// Balance is the state of a ledger in its current window.
type Balance struct {
	Limit    Amount // 0 in a unit: no limit
	Used     Amount // settled spend: the exact sum of the settlements, rounded up once to a micro-dollar
	Reserved Amount // held by calls in flight
	InFlight int64  // number of reservations held
}

// Remaining returns Limit - Used - Reserved per unit (negative when a
// settle went over; meaningless in a unit without a limit).
func (b Balance) Remaining() Amount { return b.Limit.Sub(b.Used).Sub(b.Reserved) }

// Store keeps ledgers of spend and reservations. Reserve must be atomic:
// it holds Need only if, in every unit with a limit, Used + Reserved + Need
// stays within the limit, and otherwise returns an *ExceededError (Scope
// left empty for the caller) without holding anything. Implementations must
// be safe for concurrent use; see [MemoryStore] and, for replicas,
// adapters/redis.
type Store interface {
	// Reserve holds r.Need or refuses with an *ExceededError; any other
	// error means the store could not answer.
	Reserve(ctx context.Context, r Reservation) (Hold, error)
	// Balance reads a ledger in window w at now.
	Balance(ctx context.Context, key string, w Window, now time.Time) (Balance, error)
	// Mark sets a flag that lives for ttl and reports whether it was not set
	// before (soft-limit events fire once per window, across replicas).
	Mark(ctx context.Context, flag string, ttl time.Duration, now time.Time) (bool, error)
}

// Hold is a reservation held by a Store.
type Hold interface {
	// Settle releases the reservation and records actual as spent in the
	// reservation's window, exactly (its SubMicroPico included); a zero
	// actual just releases. A second call does nothing. The returned
	// Balance is the ledger after the settle.
	Settle(ctx context.Context, actual Amount, now time.Time) (Balance, error)
}

// Extender is a Hold whose reservation expires (a shared store's TTL). The
// budget layer extends it every third of its TTL while the call is in
// flight, so that no sequence of retries, fallbacks or slow streams
// outlives it. An expired reservation is charged at its reserved amount
// (the provider may have billed the call), not released.
type Extender interface {
	// Extend moves the expiry to ttl from now; ErrReservationExpired when
	// the reservation is gone.
	Extend(ctx context.Context, ttl time.Duration) error
}

// StoreError is a failure of the budget store itself (not a refusal).
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("tokenwise/budget: store %s: %v", e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *StoreError) Unwrap() error { return e.Err }
