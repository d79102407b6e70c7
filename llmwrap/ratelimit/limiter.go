package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// Option configures code-side dependencies of a Limiter.
type Option func(*options)

type options struct {
	store Store
	local *MemoryStore
	est   *tokens.Estimator
	log   *slog.Logger
}

// WithStore sets the store of the limits' state, e.g. a shared Redis store
// (adapters/redis.NewRateLimitStore). Default: a new MemoryStore.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithLocalStore sets the state of the local share a Limiter with
// OnUnavailable Local admits while its store is down. Give every Limiter
// of a process the same one (llmwrap's State does, for the chains of a
// Registry), so that a Limiter built anew for a reloaded policy does not
// admit the share once more. Default: a new MemoryStore.
func WithLocalStore(m *MemoryStore) Option { return func(o *options) { o.local = m } }

// WithEstimator sets the token estimator (shared with the budget layer so
// that a call's input is counted once). Default: tokens.New().
func WithEstimator(e *tokens.Estimator) Option { return func(o *options) { o.est = e } }

// WithLogger sets the logger of store failures. Default: slog.Default().
func WithLogger(lg *slog.Logger) Option { return func(o *options) { o.log = lg } }

// Limiter admits calls within its Config's rate limits. It is safe for
// concurrent use.
type Limiter struct {
	rl     Config
	store  Store
	local  *MemoryStore // admits a conservative share while a shared store is down
	est    *tokens.Estimator
	log    *slog.Logger
	prefix string

	mu    sync.Mutex                        // serialises plan builds
	plans atomic.Pointer[map[planKey]*plan] // copied on write: lookups take no lock

	leaseBase string
	leaseSeq  atomic.Uint64
}

type planKey struct{ model, group string }

// plan is what one (model, team group) is admitted against.
type plan struct {
	model      string
	group      string
	cells      []Cell
	slots      []Slot
	localCells []Cell // LocalFraction of each limit, for on_unavailable local
	localSlots []Slot
	learned    string
	tokens     bool   // a tokens-per-minute limit applies
	mem        *bound // the state of cells, slots and learned in the store, when it is a MemoryStore
	memLocal   *bound // the state of localCells and localSlots in Limiter.local
}

// New returns the Limiter of cfg; its Middleware is nil when no model is
// rate limited. It fails (every problem joined, each matching ErrConfig)
// on a negative limit, an unknown OnLimit or OnUnavailable, or a
// LocalFraction outside [0, 1].
func New(cfg Config, opts ...Option) (*Limiter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	l := &Limiter{rl: cfg, store: o.store, est: o.est, log: o.log, local: o.local}
	if l.local == nil {
		l.local = NewMemoryStore()
	}
	l.plans.Store(&map[planKey]*plan{})
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.store == nil {
		l.store = NewMemoryStore()
	}
	if l.est == nil {
		l.est = tokens.New()
	}
	l.prefix = cfg.KeyPrefix
	if l.prefix == "" {
		l.prefix = DefaultKeyPrefix
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	l.leaseBase = hex.EncodeToString(b[:]) + ":"
	return l, nil
}

// group returns the team group whose share a team's calls use: the team
// when listed, "*" for the others when "*" is listed, "" (no share).
func (l *Limiter) group(team string) string {
	if len(l.rl.Teams) == 0 {
		return ""
	}
	if _, ok := l.rl.Teams[team]; ok && team != "" {
		return team
	}
	if _, ok := l.rl.Teams["*"]; ok {
		return "*"
	}
	return ""
}

func (l *Limiter) plan(model, team string) *plan {
	k := planKey{model, l.group(team)}
	if p, ok := (*l.plans.Load())[k]; ok {
		return p
	}
	if _, ok := l.rl.Models[model]; !ok {
		return nil // not cached: callers name any model they like
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.plans.Load()
	if p, ok := old[k]; ok {
		return p
	}
	p := l.build(k)
	if p != nil {
		if m, ok := l.store.(*MemoryStore); ok {
			p.mem = m.bind(p.cells, p.slots, p.learned)
		}
		p.memLocal = l.local.bind(p.localCells, p.localSlots, "")
	}
	// Only models of the policy get a plan, and teams not listed share
	// the "*" or "" group: the map stays bounded by the policy.
	m := make(map[planKey]*plan, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = p
	l.plans.Store(&m)
	return p
}

// interval returns the GCRA interval of a per-minute limit.
func interval(perMinute float64) time.Duration {
	return max(time.Duration(float64(time.Minute)/perMinute), 1)
}

func (l *Limiter) build(k planKey) *plan {
	ml, ok := l.rl.Models[k.model]
	if !ok {
		return nil
	}
	burst := ml.Burst
	if burst <= 0 {
		burst = time.Second
	}
	base := "{" + l.prefix + ":rl:" + k.model + "}"
	p := &plan{model: k.model, group: k.group}
	if !l.rl.NoLearning {
		p.learned = base + ":learned"
	}
	frac := l.rl.LocalFraction
	if frac <= 0 {
		frac = DefaultLocalFraction
	}
	addRate := func(key, name string, perMinute float64, tokens bool) {
		if perMinute <= 0 {
			return
		}
		iv := interval(perMinute)
		p.cells = append(p.cells, Cell{Key: key, Name: name, Interval: iv, Tolerance: max(burst, iv), Tokens: tokens})
		liv := interval(perMinute * frac)
		p.localCells = append(p.localCells, Cell{Key: key, Name: name, Interval: liv, Tolerance: max(time.Duration(float64(burst)*frac), liv), Tokens: tokens})
		p.tokens = p.tokens || tokens
	}
	addSlot := func(key, name string, n float64) {
		if n <= 0 {
			return
		}
		p.slots = append(p.slots, Slot{Key: key, Name: name, Max: max(int64(n), 1)})
		p.localSlots = append(p.localSlots, Slot{Key: key, Name: name, Max: max(int64(n*frac), 1)})
	}
	addRate(base+":rpm", "rpm", float64(ml.RPM), false)
	addRate(base+":tpm", "tpm", float64(ml.TPM), true)
	addSlot(base+":conc", "concurrency", float64(ml.MaxConcurrent))
	if k.group != "" {
		share := l.share(k.group)
		t := l.rl.Teams[k.group]
		tb := base + ":team:" + k.group
		addRate(tb+":rpm", "team rpm", capped(float64(ml.RPM)*share, float64(t.RPM)), false)
		addRate(tb+":tpm", "team tpm", capped(float64(ml.TPM)*share, float64(t.TPM)), true)
		addSlot(tb+":conc", "team concurrency", capped(float64(ml.MaxConcurrent)*share, float64(t.MaxConcurrent)))
	}
	return p
}

// share returns a team group's weighted share of each limit: its weight
// over the sum of the weights; 1 when it has no weight.
func (l *Limiter) share(group string) float64 {
	w := l.rl.Teams[group].Weight
	if w <= 0 {
		return 1
	}
	var sum float64
	for _, t := range l.rl.Teams {
		sum += t.Weight
	}
	return w / sum
}

// capped returns the smaller positive of a share and a cap (0: none).
func capped(share, limit float64) float64 {
	switch {
	case limit <= 0:
		return share
	case share <= 0:
		return limit
	}
	return min(share, limit)
}

// Middleware returns the rate-limit layer: each call is admitted against
// the limits of the model it is sent to (under a fallback chain, each
// target's own limits) before it goes on, and settled with the provider's
// usage after it. It is nil when no model is rate limited.
func (l *Limiter) Middleware() middleware.Middleware {
	if l == nil || !l.rl.Enabled() {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			return l.handle(ctx, req, next)
		})
	}
}

// Ticket is an admitted call. Its Done must be called once the call
// ended. The zero Ticket (a model without limits) does nothing.
type Ticket struct {
	l      *Limiter
	p      *plan
	team   string
	local  bool // admitted by the local share while the shared store was down
	tokens int64
	lease  string
	polled bool // the admission slept before it was granted
	// input is the input tokens of one attempt, which a request that
	// failed is charged of its reservation (-1: unknown, charged whole).
	input int64
	// retries are the retries admitted (AdmitRetry) in the ticket's own
	// store, retryTokens what they reserved; elsewhere the retries
	// admitted by the local share while the shared store was down (never
	// refunded).
	retries, elsewhere int64
	retryTokens        int64
}

// Reserve admits one call to model for team costing tokens (input
// estimate plus reserved output; 0 without a tokens-per-minute limit),
// waiting as the policy says, and returns its Ticket. It is the
// middleware's engine, exported for callers that do not use a chain.
func (l *Limiter) Reserve(ctx context.Context, model, team string, tokens int64) (Ticket, error) {
	p := l.plan(model, team)
	if p == nil {
		return Ticket{}, nil
	}
	t, wait, err := l.admit(ctx, p, team, tokens)
	if err != nil {
		return Ticket{}, err
	}
	if err := sleep(ctx, wait); err != nil {
		t.Done(ctx, 0, 0)
		return Ticket{}, err
	}
	t.input = -1
	return t, nil
}

// ReserveInput is Reserve for a call whose attempts each send input of
// its tokens: a retried attempt that failed is then charged its input,
// not the whole reservation (input < 0: unknown, charged whole).
func (l *Limiter) ReserveInput(ctx context.Context, model, team string, input, tokens int64) (Ticket, error) {
	t, err := l.Reserve(ctx, model, team, tokens)
	if t.p != nil {
		t.input = max(input, -1)
	}
	return t, err
}

// AdmitRetry admits one more request of the ticket's call — a retry, sent
// as soon as it returns — against the limits of its first attempt
// (requests, and its tokens again), waiting as the policy says (never
// past ctx's deadline) or refusing with an [*Error] as an admission does.
// It takes no concurrency slot: the call holds one. Done settles the
// retries admitted with the call. AdmitRetry and Done are not safe for
// concurrent use with each other (the retry layer of a call admits its
// retries one after the other).
func (t *Ticket) AdmitRetry(ctx context.Context) error {
	_, err := t.admitRetry(ctx)
	return err
}

// admitRetry is AdmitRetry, which says whether it waited for its slot.
func (t *Ticket) admitRetry(ctx context.Context) (bool, error) {
	if t == nil || t.p == nil {
		return false, nil
	}
	l, p := t.l, t.p
	local := t.local
	maxWait, deadline := l.maxWait(ctx)
	adm := Admission{Cells: p.cells, Learned: p.learned, Requests: 1, Tokens: t.tokens, MaxWait: maxWait}
	if local {
		adm.Cells, adm.Learned = p.localCells, ""
	}
	wait, polled, err := l.acquire(ctx, p, t.team, &local, &adm, deadline)
	if err != nil {
		return polled, err
	}
	if err := sleep(ctx, wait); err != nil {
		// Not sent: give the request back where it was taken.
		s := Settlement{Cells: adm.Cells, Requests: -1, Tokens: -t.tokens}
		l.settle(ctx, p, local, &s)
		return true, err
	}
	if local == t.local {
		t.retries++
		t.retryTokens = middleware.SatAdd(t.retryTokens, t.tokens)
	} else {
		t.elsewhere++
	}
	return polled || wait > 0, nil
}

// maxWait returns how long an admission may wait for its slot and until
// when (zero: it may not wait, on_limit reject or fallback).
func (l *Limiter) maxWait(ctx context.Context) (time.Duration, time.Time) {
	if l.rl.OnLimit != "" && l.rl.OnLimit != OnLimitWait {
		return 0, time.Time{}
	}
	now := time.Now()
	maxWait := l.rl.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	if dl, ok := ctx.Deadline(); ok {
		maxWait = min(maxWait, dl.Sub(now))
	}
	return max(maxWait, 0), now.Add(maxWait)
}

// ReserveOutput is the number of output tokens Reserve's caller counts
// for a call without a bound on its output: Config.ReserveOutput, else
// DefaultReserveOutput.
func (l *Limiter) ReserveOutput() int64 {
	if l.rl.ReserveOutput > 0 {
		return l.rl.ReserveOutput
	}
	return DefaultReserveOutput
}

func (l *Limiter) handle(ctx context.Context, req *middleware.Request, next middleware.Handler) (*middleware.Response, error) {
	team := middleware.TeamFrom(ctx)
	p := l.plan(req.Model, team)
	if p == nil {
		return next.Handle(ctx, req)
	}
	var need, input int64
	if p.tokens || p.learned != "" { // the provider's token limit is learned too
		out := int64(req.MaxTokens)
		if out <= 0 {
			out = l.ReserveOutput()
		}
		// (saturating: a huge n × max_tokens never wraps around to a small need)
		input = tokens.ForCall(ctx, l.est, req.Model, req)
		need = middleware.SatAdd(input, middleware.SatMul(out, int64(max(req.N, 1))))
	}
	start := time.Now()
	tk, wait, err := l.admit(ctx, p, team, need)
	if err == nil && wait > 0 {
		err = sleep(ctx, wait)
		if err != nil {
			tk.Done(ctx, 0, 0)
		}
	}
	if err != nil {
		if ctx.Err() != nil && (middleware.IsCancellation(err) || errors.Is(err, context.DeadlineExceeded)) {
			// The call ended while it waited for its admission: it was
			// never sent, and the provider bills nothing for it (a budget
			// above with no Meter between reads it so).
			err = &middleware.NotSentError{Err: err}
		}
		return nil, err
	}
	var waited time.Duration
	if wait > 0 || tk.polled {
		waited = time.Since(start)
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) { f.RateWait += waited })
	}
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.RateLimited{Model: req.Model, Team: team, Action: "admitted", Wait: waited})
	}
	tk.input = input
	// Each retry below is admitted when it is sent, as a first attempt
	// is, after what admitted the call's retries above (the budget's);
	// the Meter counts in sent the requests the provider was sent,
	// retries included; a limit learned from the provider's reports
	// observes them (feedback). The context, the ticket, the counter and
	// the observer are one allocation.
	rc := &retryAdmission{Context: ctx, t: tk}
	var obs *feedback
	if p.learned != "" {
		obs = &rc.fb
		obs.l, obs.p = l, p
		rc.obs.Set(ctx, obs)
	}
	ctx = rc
	t, sent := &rc.t, &rc.sent
	settled := false
	defer func() {
		if !settled {
			// A panic below: free the slot, keep the reservation of
			// every request sent (the retries admitted were sent as
			// they were admitted).
			t.Done(ctx, -1, max(1+int(t.retries+t.elsewhere), int(sent.Load())))
		}
	}()
	resp, err := next.Handle(ctx, req)
	settled = true
	used := int64(-1)
	if resp != nil && !resp.Usage.IsZero() {
		used = resp.Usage.Total()
	}
	requests := 1
	switch {
	case errors.Is(err, breaker.ErrOpen):
		requests = 0 // the provider was never called
	default:
		// Retries below this layer: the attempts the Meter saw sent, or
		// the provider's reports of them (a chain without a Meter).
		requests = max(requests, int(sent.Load()))
		if obs != nil {
			requests = max(requests, int(obs.responses.Load()))
		}
	}
	t.Done(ctx, used, requests)
	return resp, err
}

// retryAdmission is the context below the layer of an admitted call: the
// call's context, carrying the admission of its retries
// (middleware.AdmitRetry) by the ticket, after the admission the call's
// context carried (the budget's).
type retryAdmission struct {
	context.Context // the call's, as the layer got it
	// t is the call's ticket and sent the requests the provider was sent
	// for the call, retries included (middleware.CountAttempts), in the
	// context's own allocation.
	t    Ticket
	sent atomic.Int32
	// obs adds fb, the feedback of a learned limit, to the context's
	// observers (middleware.WithObserver); it adds none without one.
	obs middleware.Observed
	fb  feedback
}

func (r *retryAdmission) Value(key any) any {
	if middleware.IsRetryAdmissionKey(key) {
		return middleware.RetryAdmitter(r)
	}
	if middleware.IsAttemptsKey(key) {
		return &r.sent
	}
	if v, ok := r.obs.Value(key); ok {
		return v
	}
	return r.Context.Value(key)
}

// ValueParent returns the call's context: r adds values to it and nothing
// else (its Done, Err and Deadline are the parent's), so that a
// middleware.WithDeadline below the layer looks through it for a deadline
// above it to share a timer with (the run guard's), as through the
// context.WithValue contexts the layer added before.
func (r *retryAdmission) ValueParent(ctxval.Only) context.Context { return r.Context }

// AdmitRetry admits a retry by what the call's context admits its retries
// with, then by the rate limits, waiting for its slot as the call's first
// attempt did (the wait is in the call's facts).
func (r *retryAdmission) AdmitRetry(ctx context.Context) error {
	if err := middleware.AdmitRetry(r.Context); err != nil {
		return err
	}
	start := time.Now()
	slept, err := r.t.admitRetry(ctx)
	if waited := time.Since(start); err == nil && slept {
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) { f.RateWait += waited })
		if middleware.Observing(ctx) {
			middleware.Emit(ctx, middleware.RateLimited{Model: r.t.p.model, Team: r.t.team, Action: "admitted", Wait: waited})
		}
	}
	return err
}

// admit asks the store, waiting for a slot that cannot be reserved ahead
// (a full concurrency limit, a limit that would idle) when the policy
// waits. It returns the admission and how long to sleep for its slot.
func (l *Limiter) admit(ctx context.Context, p *plan, team string, need int64) (Ticket, time.Duration, error) {
	maxWait, deadline := l.maxWait(ctx)
	t := Ticket{l: l, p: p, team: team, tokens: need}
	adm := Admission{Cells: p.cells, Slots: p.slots, Learned: p.learned, Requests: 1, Tokens: need, MaxWait: maxWait}
	if len(p.slots) > 0 {
		t.lease = l.leaseBase + strconv.FormatUint(l.leaseSeq.Add(1), 36)
		adm.Lease = t.lease
		adm.LeaseTTL = l.rl.LeaseTTL
		if adm.LeaseTTL <= 0 {
			adm.LeaseTTL = DefaultLeaseTTL
		}
	}
	wait, polled, err := l.acquire(ctx, p, team, &t.local, &adm, deadline)
	if err != nil {
		return Ticket{}, 0, err
	}
	t.polled = polled
	return t, wait, nil
}

// acquire asks the store to admit adm, turning to the local share when
// the store fails and the policy says so (*local), and asking again at the
// time it is given until deadline (zero: refuse at once). It returns how
// long to sleep for the admitted slot, and whether it slept already.
func (l *Limiter) acquire(ctx context.Context, p *plan, team string, local *bool, adm *Admission, deadline time.Time) (time.Duration, bool, error) {
	polled := false
	for {
		d, err := l.storeAdmit(ctx, p, *local, adm)
		if err != nil {
			if ctx.Err() != nil {
				return 0, polled, ctx.Err()
			}
			l.storeFailed(ctx, "admit", err)
			if l.rl.OnUnavailable != Local {
				return 0, polled, l.refuse(ctx, p, team, Decision{Limit: "store", Wait: time.Second}, err)
			}
			*local = true
			adm.Cells, adm.Learned = p.localCells, ""
			if adm.Slots != nil {
				adm.Slots = p.localSlots
			}
			continue
		}
		if d.OK {
			return d.Wait, polled, nil
		}
		if d.Retry && !deadline.IsZero() && time.Now().Add(d.Wait).Before(deadline) {
			if err := sleep(ctx, d.Wait); err != nil {
				return 0, polled, err
			}
			polled = true
			adm.MaxWait = max(time.Until(deadline), 0)
			continue
		}
		return 0, polled, l.refuse(ctx, p, team, d, nil)
	}
}

func (l *Limiter) storeAdmit(ctx context.Context, p *plan, local bool, a *Admission) (Decision, error) {
	switch {
	case local:
		return l.local.admit(a, p.memLocal), nil
	case p.mem != nil:
		return l.store.(*MemoryStore).admit(a, p.mem), nil
	}
	c := *a // a stays on the caller's stack on the in-memory paths
	return l.store.Admit(ctx, &c)
}

// Done settles the call with what it used: the provider's token count
// (used < 0: unknown, the reservation stands) and the requests it made
// upstream, retries included (0 refunds the admission; more than 1
// charges the retries AdmitRetry did not admit). Each request sent before
// the last is charged its input tokens (ReserveInput; else its whole
// reservation), the last one used.
func (t Ticket) Done(ctx context.Context, used int64, requests int) {
	if t.p == nil {
		return
	}
	l, p := t.l, t.p
	// The provider-learned cells are not settled: the provider's next
	// report already counts what the call really used.
	s := Settlement{Cells: p.cells, Slots: p.slots, Lease: t.lease, Requests: int64(requests) - 1 - t.retries - t.elsewhere}
	if t.local {
		s.Cells, s.Slots = p.localCells, p.localSlots
	}
	reserved := middleware.SatAdd(t.tokens, t.retryTokens)
	switch {
	case requests <= 0:
		s.Requests = -1 - t.retries // the admissions of the ticket's store
		s.Tokens = -reserved
	case t.tokens > 0:
		last := t.tokens
		if used >= 0 {
			last = used
		}
		each := t.tokens
		if t.input >= 0 {
			each = min(t.input, t.tokens)
		}
		s.Tokens = middleware.SatAdd(last, middleware.SatMul(int64(requests-1), each)) - reserved
	}
	if s.Requests == 0 && s.Tokens == 0 && len(s.Slots) == 0 {
		return
	}
	l.settle(ctx, p, t.local, &s)
}

// settle applies s in the store of an admission (local: the local share).
func (l *Limiter) settle(ctx context.Context, p *plan, local bool, s *Settlement) {
	switch {
	case local:
		l.local.settle(s, p.memLocal)
	case p.mem != nil:
		l.store.(*MemoryStore).settle(s, p.mem)
	default:
		c := *s
		if err := l.store.Settle(context.WithoutCancel(ctx), &c); err != nil {
			l.storeFailed(ctx, "settle", err)
		}
	}
}

func (l *Limiter) refuse(ctx context.Context, p *plan, team string, d Decision, storeErr error) error {
	e := &Error{Model: p.model, Team: team, Limit: d.Limit, RetryAfter: d.Wait, Err: storeErr,
		Fallback: l.rl.OnLimit == OnLimitFallback}
	middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) { f.RateRefusals++ })
	if middleware.Observing(ctx) {
		action := "rejected"
		if e.Fallback {
			action = "fallback"
		}
		middleware.Emit(ctx, middleware.RateLimited{Model: p.model, Team: team, Action: action, Limit: d.Limit, Wait: d.Wait, Err: e})
	}
	return e
}

func (l *Limiter) storeFailed(ctx context.Context, op string, err error) {
	l.log.WarnContext(ctx, "tokenwise: rate-limit store failed", "op", op, "err", err)
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.StoreFailed{Store: "ratelimit", Op: op, Err: err})
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// feedback learns from the provider's reports during one call.
type feedback struct {
	l         *Limiter
	p         *plan
	responses atomic.Int32
}

func (f *feedback) Observe(ctx context.Context, e middleware.Event) {
	pl, ok := e.(middleware.ProviderLimits)
	if !ok {
		return
	}
	f.responses.Add(1)
	f.l.learn(ctx, f.p, pl)
}

// learn turns a provider's report into Feedback and records it when it
// matters: a 429, or a limit with a tenth or less left.
func (l *Limiter) learn(ctx context.Context, p *plan, pl middleware.ProviderLimits) {
	var f Feedback
	if pl.Status == 429 {
		// At most the provider's window: a Retry-After of hours (a daily
		// quota, a proxy's guess, a server's bug) would otherwise stop the
		// model on every replica for hours; a minute later one call
		// probes again, and a 429 costs nothing.
		f.Pause = min(pl.RetryAfter, providerWindow)
		if f.Pause <= 0 {
			f.Pause = time.Second
		}
	}
	mirror := func(limit, remaining int64, reset time.Duration, iv, rs *time.Duration) {
		switch {
		case remaining < 0:
		case limit > 0 && remaining*10 <= limit:
			// The provider's own GCRA state: remaining of limit left,
			// refilled at limit per minute.
			*iv = interval(float64(limit))
			*rs = min(reset, time.Duration(limit-remaining)*(*iv))
			if reset <= 0 {
				*rs = time.Duration(limit-remaining) * (*iv)
			}
		case limit <= 0 && remaining == 0:
			f.Pause = max(f.Pause, min(reset, providerWindow))
		}
	}
	mirror(pl.LimitRequests, pl.RemainingRequests, pl.ResetRequests, &f.IntervalRequests, &f.ResetRequests)
	mirror(pl.LimitTokens, pl.RemainingTokens, pl.ResetTokens, &f.IntervalTokens, &f.ResetTokens)
	if f == (Feedback{}) {
		return
	}
	if err := l.store.Learn(context.WithoutCancel(ctx), p.learned, f); err != nil {
		l.storeFailed(ctx, "learn", err)
	}
}
