package budget

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// DefaultMaxOutput is the max_tokens injected (and reserved) when neither
// the request, nor budget.request.max_output_tokens, nor the model's
// max_output_tokens bounds the output.
const DefaultMaxOutput = 4096

// DefaultMinOutputTokens is the smallest answer a call is fitted to when
// Config.MinOutputTokens is zero.
const DefaultMinOutputTokens = 256

// DefaultReservationTTL is the reservation TTL when the Config sets none
// (llmwrap sets the policy's call timeout when that is longer). A reservation is
// extended every third of its TTL while its call is in flight, so the TTL
// only bounds how long a dead replica's reservation stays reserved before
// it is charged.
const DefaultReservationTTL = 2 * time.Minute

// DefaultLocalFraction is the share of each team (and shared-run) limit a
// replica spends alone while the shared store is unavailable (OnUnavailable
// Local).
const DefaultLocalFraction = 0.1

// Option configures a Budget with code-side dependencies.
type Option func(*options)

type options struct {
	store   Store
	now     func() time.Time
	log     *slog.Logger
	est     *tokens.Estimator
	catalog Catalog
	local   *MemoryStore
}

// WithStore sets the store of team ledgers, e.g. a shared Redis store
// (adapters/redis.NewBudgetStore). Default: a new MemoryStore.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithLocalStore sets the ledger of the local share a Budget with
// OnUnavailable Local spends while its store is down. Give every Budget
// of a process the same one (llmwrap's State does, for the chains of a
// Registry), so that a Budget built anew for a reloaded policy does not
// let the share be spent once more. Default: a new MemoryStore.
func WithLocalStore(m *MemoryStore) Option { return func(o *options) { o.local = m } }

// WithClock sets the clock that picks windows and buckets. Default: time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger of soft-limit warnings, exceeded budgets in
// warn mode and store failures. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithEstimator sets the token estimator. Default: tokens.New().
func WithEstimator(e *tokens.Estimator) Option { return func(o *options) { o.est = e } }

// WithCatalog sets the prices and limits of the models (see Catalog);
// llmwrap passes the policy's catalog. Default: none, no model is known
// and none priced, so a Config with a USD limit fails without it.
func WithCatalog(c Catalog) Option { return func(o *options) { o.catalog = c } }

// Budget enforces a Config's budgets: per request, per run and per team
// per period. Build one with New and put Budget.Middleware in the chain
// (llmwrap.Build does). A Budget is safe for concurrent use.
type Budget struct {
	cfg     Config
	name    string
	catalog Catalog
	store   Store
	local   *MemoryStore // OnUnavailable Local
	now     func() time.Time
	log     *slog.Logger
	est     *tokens.Estimator

	prefix   string
	ttl      time.Duration
	warnAt   []float64
	teamLim  Amount
	runLim   Amount
	needTeam bool
	needRun  bool

	seq    atomic.Uint64
	idBase string
	warned sync.Map // soft-limit flags known to be set → end of their window
	// legacyEmpty holds the legacy team ledgers (legacyTeamKey) found
	// empty, per window: "<key>\x00<window id>".
	legacyEmpty sync.Map
	pruned      atomic.Int64
}

// New returns the Budget of cfg. It fails (every problem joined, each
// matching ErrConfig) on a negative limit, a team limit without a period,
// an unknown enum value, a fraction out of range, or a USD limit without
// a Catalog.
func New(cfg Config, opts ...Option) (*Budget, error) {
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if err := cfg.validate(o.catalog != nil); err != nil {
		return nil, err
	}
	b := &Budget{cfg: cfg, name: cmp(cfg.Name, "default"), catalog: o.catalog, store: o.store, now: o.now, log: o.log, est: o.est}
	if b.catalog == nil {
		b.catalog = noCatalog{}
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.store == nil {
		b.store = NewMemoryStore()
	}
	if b.est == nil {
		b.est = tokens.New()
	}
	b.prefix = cmp(cfg.KeyPrefix, "tokenwise")
	b.ttl = cfg.ReservationTTL
	if b.ttl <= 0 {
		b.ttl = DefaultReservationTTL
	}
	b.warnAt = slices.Sorted(slices.Values(cfg.WarnAt))
	b.teamLim = cfg.Team.Limit
	b.runLim = cfg.Run
	b.needTeam = !b.teamLim.IsZero()
	b.needRun = !b.runLim.IsZero()
	if cfg.OnUnavailable == Local {
		b.local = o.local
		if b.local == nil {
			b.local = NewMemoryStore()
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.idBase = hex.EncodeToString(rnd[:])
	return b, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Active reports whether the Config sets any budget this layer enforces.
func (b *Budget) Active() bool {
	r := b.cfg.Request
	return b.needTeam || b.needRun || r.MaxInputTokens > 0 || r.MaxOutputTokens > 0
}

// Team returns the team a call is attributed to: the context's team, else
// Config's Name, else "default".
func (b *Budget) Team(ctx context.Context) string {
	if t := middleware.TeamFrom(ctx); t != "" {
		return t
	}
	return b.name
}

// TeamKey returns the namespaced ledger key of team:
// "<prefix>:budget:<team>:<team>". It names the team only (the team id the
// registry or gateway resolves, middleware.TeamFrom), not its policy, so
// that a reload that renames the policy (its name:) or gives a team that
// ran under the default policy a file of its own keeps counting the same
// ledger. The format is that of earlier versions,
// "<prefix>:budget:<policy name>:<team>", with the team in the policy's
// place: the key of a team whose policy is named after it (devops.yaml,
// name: devops) is unchanged, and the ledger of any other team is carried
// over (see legacyTeamKey).
func (b *Budget) TeamKey(team string) string {
	return b.prefix + ":budget:" + team + ":" + team
}

// legacyTeamKey returns the key earlier versions kept team's ledger under,
// "<prefix>:budget:<policy name>:<team>", when it is not TeamKey (the
// policy is not named after the team); "" otherwise. What that ledger
// holds in a window counts against the team's limit beside TeamKey's (it
// is read, never written), so that an upgrade does not start a team's
// spend of the period over.
func (b *Budget) legacyTeamKey(team string) string {
	if b.name == team {
		return ""
	}
	return b.prefix + ":budget:" + b.name + ":" + team
}

// legacyBalance returns the balance of team's legacy ledger
// (legacyTeamKey) in window w: zero when it has none, or when it was
// found empty before in this window (only a replica of an earlier version
// writes it: once empty, it stays so).
func (b *Budget) legacyBalance(ctx context.Context, team string, w Window, now time.Time) (Balance, error) {
	lk := b.legacyTeamKey(team)
	if lk == "" {
		return Balance{}, nil
	}
	memo := lk + "\x00" + w.ID()
	if _, empty := b.legacyEmpty.Load(memo); empty {
		return Balance{}, nil
	}
	bal, err := b.store.Balance(ctx, lk, w, now)
	if err != nil {
		return Balance{}, err
	}
	if bal.Used.IsZero() && bal.Reserved.IsZero() && bal.InFlight == 0 {
		b.legacyEmpty.Store(memo, struct{}{})
	}
	return bal, nil
}

// withoutLegacy returns lim less what the legacy ledger holds (its spend
// and reservations), in each unit with a limit; a unit the legacy ledger
// exhausted keeps a limit of 1, which any call's need is over.
func withoutLegacy(lim Amount, legacy Balance) Amount {
	held := legacy.Used.Add(legacy.Reserved).Ceil()
	if lim.USDMicros > 0 {
		lim.USDMicros = max(lim.USDMicros-held.USDMicros, 1)
	}
	if lim.Tokens > 0 {
		lim.Tokens = max(lim.Tokens-held.Tokens, 1)
	}
	return lim
}

// Remaining is a team's budget in its current window.
type Remaining struct {
	Team    string
	Window  Window
	At      time.Time // when it was read (the budget's clock)
	Balance           // limits, used, reserved, in flight
}

// Remaining reads team's budget in the current window (the limit is zero
// in a unit without a limit). It reads the shared store.
func (b *Budget) Remaining(ctx context.Context, team string) (Remaining, error) {
	now := b.now()
	w := WindowFor(b.cfg.Team.Period, b.cfg.Team.Window, now)
	bal, err := b.store.Balance(ctx, b.TeamKey(team), w, now)
	if err != nil {
		return Remaining{}, &StoreError{Op: "balance", Err: err}
	}
	legacy, err := b.legacyBalance(ctx, team, w, now)
	if err != nil {
		return Remaining{}, &StoreError{Op: "balance", Err: err}
	}
	bal.Used, bal.Reserved, bal.InFlight = bal.Used.Add(legacy.Used), bal.Reserved.Add(legacy.Reserved), bal.InFlight+legacy.InFlight
	bal.Limit = b.teamLim
	return Remaining{Team: team, Window: w, At: now, Balance: bal}, nil
}

// runLedgerKey names a run's ledger inside the run: one per run, not per
// *Budget instance nor per policy name, so that a Budget rebuilt by a
// policy reload (one that renames the policy too) keeps charging the same
// run ledger and the money a run already spent stays spent.
type runLedgerKey struct{}

func (b *Budget) runLedger(run *middleware.Run) *ledger {
	return middleware.RunValue(run, runLedgerKey{}, func() *ledger { return &ledger{} })
}

// RunKey returns the store's ledger key of a shared run
// (middleware.OpenSharedRun) named key: "<prefix>:budget::run:<key>". It
// names the run only (its key, the one its RunStore counts its calls
// under: the gateway's is "<team>/<run id>"), not its policy, so that a
// reload that renames the policy mid-run keeps charging the same ledger in
// every process. The format is that of earlier versions,
// "<prefix>:budget:<policy name>:run:<key>", with the policy's place left
// empty; what an earlier version's ledger of the run holds still counts
// (see legacyRunKey).
func (b *Budget) RunKey(key string) string {
	return b.prefix + ":budget::run:" + key
}

// legacyRunKey returns the key earlier versions kept the ledger of the
// shared run named key under, "<prefix>:budget:<policy name>:run:<key>".
// What it holds counts against the run's limit beside RunKey's (it is
// read, never written), so that an upgrade mid-run does not start the
// run's spend over.
func (b *Budget) legacyRunKey(key string) string {
	return b.prefix + ":budget:" + b.name + ":run:" + key
}

// legacyRunEmptyKey names, in a shared run, the set of its legacy ledger
// keys (legacyRunKey) found empty: only a replica of an earlier version
// writes one, so once empty it stays so, and is not read again for the
// run.
type legacyRunEmptyKey struct{}

// legacyRunBalance returns the balance of the shared run's legacy ledger
// (legacyRunKey): zero when it has none, or when it was found empty before.
func (b *Budget) legacyRunBalance(ctx context.Context, run *middleware.Run, key string, now time.Time) (Balance, error) {
	lk := b.legacyRunKey(key)
	empty := middleware.RunValue(run, legacyRunEmptyKey{}, func() *sync.Map { return &sync.Map{} })
	if _, ok := empty.Load(lk); ok {
		return Balance{}, nil
	}
	bal, err := b.store.Balance(ctx, lk, Window{}, now)
	if err != nil {
		return Balance{}, err
	}
	if bal.Used.IsZero() && bal.Reserved.IsZero() && bal.InFlight == 0 {
		empty.Store(lk, struct{}{})
	}
	return bal, nil
}

// RunBalance returns the run's spend and reservations under this budget:
// those of its ledger in the run, or for a shared run in the store (a
// zero Balance when the store fails: see RunBalanceContext).
func (b *Budget) RunBalance(run *middleware.Run) Balance {
	bal, _ := b.RunBalanceContext(context.Background(), run)
	return bal
}

// RunBalanceContext is RunBalance, with the error of a shared run's store
// (a *StoreError).
func (b *Budget) RunBalanceContext(ctx context.Context, run *middleware.Run) (Balance, error) {
	if run == nil {
		return Balance{}, nil
	}
	now := b.now()
	var bal Balance
	if key, _ := run.Shared(); key != "" {
		var err error
		if bal, err = b.store.Balance(ctx, b.RunKey(key), Window{}, now); err != nil {
			return Balance{}, &StoreError{Op: "balance", Err: err}
		}
		legacy, err := b.legacyRunBalance(ctx, run, key, now)
		if err != nil {
			return Balance{}, &StoreError{Op: "balance", Err: err}
		}
		bal.Used, bal.Reserved, bal.InFlight = bal.Used.Add(legacy.Used), bal.Reserved.Add(legacy.Reserved), bal.InFlight+legacy.InFlight
	} else {
		bal = b.runLedger(run).balance(now)
	}
	bal.Limit = b.runLim
	return bal, nil
}

// Middleware returns the budget layer; nil when the Config sets no budget
// it enforces. It belongs under the fallback layer, so that every model
// tried is reserved at its own price.
func (b *Budget) Middleware() middleware.Middleware {
	if !b.Active() {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			return b.handle(ctx, req, next)
		})
	}
}

// nothingHeld is what reserve returns when no ledger applies to a call
// (no team budget, no run budget or no run): nothing to settle. It is
// never written.
var nothingHeld holds

// holds are the reservations of one call.
type holds struct {
	run, team Hold
	runL      *ledger       // the run's ledger in the run (a shared run's only while its store is down)
	runKey    string        // a shared run's ledger key in the store
	runIdle   time.Duration // a shared run's idle time (its flags live as long)
	runStore  Store         // the store of a shared run's hold (nil: its local share)
	teamW     Window
	teamName  string
	teamKey   string
	teamStore Store
	// retry is the call's retry admission (admitRetry), in the same
	// allocation as its holds: the context its retry layer asks.
	retry retryAdmission
	need  Amount // what the call reserved: its worst case
}

// retryAdmission is the context below the budget layer of a call that
// holds something: the call's context, carrying the admission of its
// retries (middleware.AdmitRetry) without an allocation of its own.
type retryAdmission struct {
	context.Context // the call's
	b               *Budget
	req             *middleware.Request
	ci              *middleware.CallInfo
	retryHolds
}

func (r *retryAdmission) Value(key any) any {
	if middleware.IsRetryAdmissionKey(key) {
		return middleware.RetryAdmitter(r)
	}
	if middleware.IsAttemptNoteKey(key) {
		return middleware.AttemptNoter(r)
	}
	return r.Context.Value(key)
}

// ValueParent returns the call's context: r adds values to it and nothing
// else (its Done, Err and Deadline are the parent's), so that a
// middleware.WithDeadline below the layer looks through it for a deadline
// above it to share a timer with (the run guard's).
func (r *retryAdmission) ValueParent(ctxval.Only) context.Context { return r.Context }

// AdmitRetry admits a retry in this call's ledgers, then in those of a
// budget above (one composed around a built chain).
func (r *retryAdmission) AdmitRetry(context.Context) error {
	if err := r.b.admitRetry(r.Context, r.req, r.ci, &r.retryHolds); err != nil {
		return err
	}
	return middleware.AdmitRetry(r.Context)
}

// NoteAttempt records an attempt a layer below (retry, fallback) sent for
// the call: what a Meter recorded of it (in the call's own CallInfo, or
// another: a built chain's, below), else what the Meter's rule bills it,
// with the response it ended with. A budget above this one is told too.
func (r *retryAdmission) NoteAttempt(ctx context.Context, req *middleware.Request, resp *middleware.Response, err error, ci *middleware.CallInfo, since int) {
	hedge := middleware.HedgedAttempt(ctx)
	r.mu.Lock()
	if r.noted == nil {
		// A call's first note (most have one) fills the arrays in the
		// call's holds: no allocation.
		r.noted, r.answers = r.notedIn[:0], r.answersIn[:0]
	}
	// What the Meter recorded, copied straight from ci into the notes (a
	// hedge's attempts, recorded beside the other's, are noted by its
	// own)...
	n0 := len(r.noted)
	r.noted = ci.AppendAttemptsSince(r.noted, since)
	kept := slices.DeleteFunc(r.noted[n0:], func(a middleware.Attempt) bool { return a.Hedge != hedge })
	r.noted = r.noted[:n0+len(kept)]
	if len(kept) == 0 {
		// ... else what its rule bills the attempt.
		a := middleware.Attempt{Err: err, Hedge: hedge}
		a.Model, a.Usage, a.Estimated = middleware.AttemptUsage(req, resp, err, BilledUsageAt(r.b.est, r.b.cfg.DefaultTier))
		r.noted = append(r.noted, a)
	}
	// The answer of the attempt, if any, is its last record's.
	for range len(r.noted) - n0 - 1 {
		r.answers = append(r.answers, nil)
	}
	r.answers = append(r.answers, resp)
	r.mu.Unlock()
	r.notes[b2i(hedge)].Add(1)
	middleware.NoteAttemptTo(r.Context, ctx, req, resp, err, ci, since)
}

// Noted returns how many attempts (hedged ones, or the others, as ctx is
// one) layers below noted.
func (r *retryAdmission) Noted(ctx context.Context) int {
	return int(r.notes[b2i(middleware.HedgedAttempt(ctx))].Load())
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AdmitAttempt admits req, another attempt of the call (a fallback to
// another model, a hedge), before it is sent: what the failed attempts
// were billed and what req's worst case needs beyond the call's
// reservation (a dearer model's) are reserved in every ledger of the
// call, and a budget above this one admits it too.
func (r *retryAdmission) AdmitAttempt(_ context.Context, req *middleware.Request) error {
	if err := r.b.admitRetry(r.Context, r.req, r.ci, &r.retryHolds); err != nil {
		return err
	}
	if err := r.b.admitDearer(r.Context, req, &r.retryHolds); err != nil {
		return err
	}
	return middleware.AdmitAttempt(r.Context, req)
}

func (b *Budget) handle(ctx context.Context, req *middleware.Request, next middleware.Handler) (*middleware.Response, error) {
	var est callEstimate
	req, h, err := b.admit(ctx, req, false, &est)
	if err != nil {
		return nil, err
	}
	settled := false
	stop := b.keepAlive(ctx, h)
	var retries *retryHolds
	ci := middleware.CallInfoFrom(ctx)
	first := ci.AttemptCount()
	defer func() {
		stop()
		if !settled {
			// A panic below (a stream callback's): charge what the Meter
			// billed the call's attempts (one that had streamed), release
			// the rest, then let it go on.
			var charge Amount
			if tokensUsed, pico, billed := b.attemptsCost(ctx, req, ci, first, nil, retries); billed {
				charge = Settleable(Exact(tokensUsed, pico))
			}
			b.settle(ctx, h, charge)
		}
		retries.release(ctx, b)
	}()
	var hctx context.Context = ctx
	if h != &nothingHeld {
		ra := &h.retry
		ra.Context, ra.b, ra.req, ra.ci = ctx, b, req, ci
		ra.first, ra.hedge, ra.need = first, middleware.HedgedAttempt(ctx), h.need
		retries, hctx = &ra.retryHolds, ra
	}
	resp, err := next.Handle(hctx, req)
	usage, billed := b.usage(req, resp, err, &est)
	var tokensUsed, pico int64
	if billed {
		// A usage that does not name its service tier is billed at the
		// one the request asked for.
		// Priced at the model that answered, as the Meter prices it
		// (middleware.BilledModel); the reservation was priced at the
		// model asked for, all that was known then.
		tokensUsed, pico = usage.Total(), b.answerCost(req.Model, resp.Model, usage.WithServiceTier(req))
	}
	n := ci.AttemptCount() - first
	if retries != nil {
		// Attempts a retry or fallback layer below sent and noted (a
		// budget composed above them by hand): every one, a hedge's
		// too, which a Meter below may have recorded or not.
		retries.mu.Lock()
		if k := len(retries.noted); k > 0 {
			n = k
		}
		retries.mu.Unlock()
	}
	if n == 0 && resp == nil {
		// No Meter below recorded the attempt (a budget's Middleware
		// composed without the chain's meter, or above the instrument
		// layer of a built chain): an answer cut after its 2xx status or
		// whole but malformed, which the provider produced and bills, is
		// charged what the Meter would bill it — its estimated input and
		// the output its body read holds — and so is an attempt that
		// timed out or was cancelled after its request was sent
		// (middleware.UnansweredBilled: its estimated input), so that the
		// ledger does not depend on how the layers were composed.
		out, ok := middleware.AnswerBilled(err)
		if ok || middleware.UnansweredBilled(err) {
			u := middleware.Usage{InputTokens: est.exact(), OutputTokens: middleware.CapOutput(req, out)}
			if t := b.cfg.DefaultTier; t != "" && t != "default" && middleware.RequestServiceTier(req) == "" {
				u.ServiceTier = t
			}
			tokensUsed, pico = u.Total(), b.answerCost(req.Model, "", u.WithServiceTier(req))
			billed = true
		}
	}
	if n > 1 || n == 1 && resp == nil {
		// Attempts the answer does not account for, which the Meter
		// billed: those a retry layer below discarded — a stream cut
		// before its first chunk (its input and partial output), an
		// attempt that timed out or was cancelled in flight (its input),
		// an answer cut after its 2xx status (its input and the output
		// read) — and the last attempt, when it ended without a response
		// (the same counts). The ledger charges what the call's report
		// bills: one rule, the Meter's. (The last attempt of a call that
		// has a response is the answer's, settled above.)
		// A hedged attempt (the fallback layer's, above) is in the list
		// too, and is its own call of this layer.
		if t, p, ok := b.attemptsCost(ctx, req, ci, first, resp, retries); ok {
			tokensUsed, pico = middleware.SatAdd(tokensUsed, t), middleware.SatAdd(pico, p)
			billed = true
		}
	}
	var actual Amount
	if billed {
		// The ledger's charge: the exact cost, which the ledger sums
		// exactly and rounds up once, when it is read. The call's
		// reported cost is the Meter's (middleware.Meter), not written here.
		actual = Settleable(Exact(tokensUsed, pico))
	}
	settled = true
	b.settle(ctx, h, actual)
	return resp, err
}

// attemptsCost sums what the Meter billed the call's attempts since
// first (a hedged attempt's only, in a hedged attempt's call; the others'
// only otherwise), but the one that answered the call with answer, when
// non-nil (its answer is settled on its own): of attempts layers below
// noted, the one noted with answer (in a hedged call, the loser may be
// noted after it), else the last.
func (b *Budget) attemptsCost(ctx context.Context, req *middleware.Request, ci *middleware.CallInfo, first int, answer *middleware.Response, r *retryHolds) (tokensUsed, pico int64, billed bool) {
	extra, answers := r.attempts(ci, first, middleware.HedgedAttempt(ctx), false)
	if k := len(extra); k > 0 && answer != nil {
		i := k - 1
		if j := slices.Index(answers, answer); j >= 0 {
			i = j
		}
		extra = slices.Delete(extra, i, i+1) // the answer's, settled above
	}
	for _, a := range extra {
		if u := a.Usage; !u.IsZero() && !u.Implausible() {
			tokensUsed, pico = middleware.SatAdd(tokensUsed, u.Total()), middleware.SatAdd(pico, b.answerCost(req.Model, a.Model, u.WithServiceTier(req)))
			billed = true
		}
	}
	return tokensUsed, pico, billed
}

// retryHolds are the reservations a call took for its retries: what its
// failed attempts were billed, beside the reservation of its worst case.
type retryHolds struct {
	first   int    // the call's first attempt in the CallInfo
	hedge   bool   // the call is a hedged attempt
	need    Amount // the call's reservation of its worst case
	mu      sync.Mutex
	covered int // attempts of the call already reserved for
	holds   []*holds
	stops   []func()
	// noted are the attempts layers below noted (middleware.NoteAttempt),
	// as a Meter recorded them or else by its rule: a budget composed
	// above a retry or fallback layer reads them rather than the
	// Meter's records in the CallInfo, which leave out a hedge's (a
	// fallback's below it: its own) and are in the order the attempts
	// ended; notes counts every note.
	noted   []middleware.Attempt
	answers []*middleware.Response // beside noted: the response of each noted attempt's last record
	notes   [2]atomic.Int32        // of the call's attempts, of its hedges
	// notedIn and answersIn hold a call's first note (see NoteAttempt).
	notedIn   [1]middleware.Attempt
	answersIn [1]*middleware.Response
}

// attempts returns the call's attempts since first: as layers below
// noted them when they did (every one: the call is theirs, hedges
// included), with the response each ended with; else as a Meter below
// recorded them in ci (a hedged attempt's only, in a hedged attempt's
// call; the others' only otherwise). r may be nil; r.mu is held when
// locked.
func (r *retryHolds) attempts(ci *middleware.CallInfo, first int, hedge, locked bool) ([]middleware.Attempt, []*middleware.Response) {
	if r != nil {
		if !locked {
			r.mu.Lock()
			defer r.mu.Unlock()
		}
		if len(r.noted) > 0 {
			return slices.Clone(r.noted), slices.Clone(r.answers)
		}
	}
	return slices.DeleteFunc(ci.AttemptsSince(first), func(a middleware.Attempt) bool { return a.Hedge != hedge }), nil
}

// admitRetry reserves, before a retry, what the call's failed attempts
// were billed (their input, a cut answer's output) in every ledger of the
// call: the call's reservation covers one attempt's worst case, which the
// next attempt may spend whole. A ledger that cannot hold it refuses the
// retry (in warn mode it is recorded, not limited).
func (b *Budget) admitRetry(ctx context.Context, req *middleware.Request, ci *middleware.CallInfo, r *retryHolds) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	attempts, _ := r.attempts(ci, r.first, r.hedge, true)
	var tokensUsed, pico int64
	for _, a := range attempts[min(r.covered, len(attempts)):] {
		if u := a.Usage; !u.IsZero() && !u.Implausible() {
			tokensUsed, pico = middleware.SatAdd(tokensUsed, u.Total()), middleware.SatAdd(pico, b.answerCost(req.Model, a.Model, u.WithServiceTier(req)))
		}
	}
	r.covered = len(attempts)
	if tokensUsed == 0 && pico == 0 {
		return nil
	}
	need := Settleable(Exact(tokensUsed, pico)).Ceil()
	h, err := b.reserveLimited(ctx, need, "")
	if err != nil {
		return err
	}
	r.holds = append(r.holds, h)
	r.stops = append(r.stops, b.keepAlive(ctx, h))
	return nil
}

// admitDearer reserves, before another attempt of the call is sent with
// req (a fallback layer below moving on to another model), what req's
// worst case needs beyond the call's reservation (r.need): an answer of a
// dearer model is then settled within what the call holds. A ledger that
// cannot hold it refuses the attempt (in warn mode it is recorded, not
// limited); a USD budget refuses a model without a price.
func (b *Budget) admitDearer(ctx context.Context, req *middleware.Request, r *retryHolds) error {
	spec, _ := b.catalog.Model(req.Model)
	if (b.runLim.USDMicros > 0 || b.teamLim.USDMicros > 0) && !spec.Priced {
		return &refusal{kind: ErrUnpriced, msg: fmt.Sprintf("a USD budget applies and model %q, a fallback, has no price in the catalog or the policy: "+
			"give it one in the policy (models: {%q: {input_per_1m: ..., output_per_1m: ...}}, or free: true)", req.Model, req.Model)}
	}
	est := callEstimate{ctx: ctx, e: b.est, req: req}
	out, _, _ := b.outputBound(req, spec, &est, true)
	n := est.exact()
	tier := middleware.RequestServiceTier(req)
	if tier == "" && b.cfg.DefaultTier != "default" {
		tier = b.cfg.DefaultTier
	}
	all := middleware.SatMul(out, int64(max(req.N, 1)))
	worst := Amount{Tokens: middleware.SatAdd(n, all), USDMicros: ceilMicro(b.worstCost(req.Model, spec, n, b.est.AudioInput(req), all, tier))}
	need := Amount{Tokens: max(worst.Tokens-r.need.Tokens, 0), USDMicros: max(worst.USDMicros-r.need.USDMicros, 0)}
	if need.IsZero() {
		return nil
	}
	h, err := b.reserveLimited(ctx, need, req.Model)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holds = append(r.holds, h)
	r.stops = append(r.stops, b.keepAlive(ctx, h))
	return nil
}

// release releases the retries' reservations, once the call is settled.
func (r *retryHolds) release(ctx context.Context, b *Budget) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := range r.holds {
		r.stops[i]()
		b.settle(ctx, h, Amount{})
	}
	r.holds, r.stops = nil, nil
}

// keepAlive extends the call's team and shared-run reservations every
// third of the TTL while the call is in flight (retries, fallbacks, slow
// streams), when their store lets reservations expire. The returned stop
// ends it; an extension in progress then ends on its own, within its
// period.
func (b *Budget) keepAlive(ctx context.Context, h *holds) (stop func()) {
	var found [2]Extender
	n := 0
	for _, hold := range [2]Hold{h.run, h.team} {
		if ext, ok := hold.(Extender); ok {
			found[n] = ext
			n++
		}
	}
	if n == 0 {
		return func() {} // (before exts, which the timer's closure moves to the heap)
	}
	exts := append(make([]Extender, 0, n), found[:n]...)
	every := max(b.ttl/3, time.Millisecond)
	ctx = context.WithoutCancel(ctx)
	var (
		mu      sync.Mutex // held while extending
		stopped atomic.Bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped.Load() {
			return
		}
		live := exts[:0]
		for _, ext := range exts {
			// A store that does not answer holds an extension no longer
			// than its period (go-redis bounds its reads by the deadline).
			ectx, cancel := context.WithTimeout(ctx, every)
			err := ext.Extend(ectx, b.ttl)
			cancel()
			if stopped.Load() {
				return // the call settled meanwhile: what the extension met is no news
			}
			switch {
			case errors.Is(err, ErrReservationExpired):
				b.log.WarnContext(ctx, "tokenwise: budget reservation expired while its call was in flight; it was charged at its reserved amount", "team", h.teamName)
				continue
			case err != nil:
				middleware.Emit(ctx, middleware.StoreFailed{Store: "budget", Op: "extend", Err: err})
				b.log.WarnContext(ctx, "tokenwise: budget reservation not extended; retrying", "err", err)
			}
			live = append(live, ext)
		}
		if exts = live; len(exts) > 0 {
			t.Reset(every)
		}
	})
	return func() {
		t.Stop()
		stopped.Store(true)
		// Waits for an extension in progress, unless its store is not
		// answering: the call's end is not held by it (the extension
		// gives up within its period, and sees stopped).
		if mu.TryLock() {
			mu.Unlock()
		}
	}
}

// usage returns what to bill: the provider's usage, or for a response that
// carries none (a cut stream) the estimated input plus the tokens of the
// partial output. A stream cut (err) after a usage that counts less output
// than it streamed (a running usage that lags) is billed that output, as
// the Meter bills it. A failure without a response bills nothing.
func (b *Budget) usage(req *middleware.Request, resp *middleware.Response, err error, est *callEstimate) (middleware.Usage, bool) {
	if resp == nil {
		return middleware.Usage{}, false
	}
	if resp.FromCache {
		return middleware.Usage{}, false
	}
	if !resp.Usage.IsZero() && !resp.Usage.Implausible() {
		u := resp.Usage
		if err != nil {
			u.OutputTokens = max(u.OutputTokens, middleware.CapOutput(req, partialOutput(b.est, req.Model, resp)))
		}
		return u, true
	}
	return middleware.Usage{InputTokens: est.exact(), OutputTokens: middleware.CapOutput(req, partialOutput(b.est, req.Model, resp))}, true
}

// partialOutput counts the output of a response that reported no usage (a
// cut stream): the text, reasoning, refusal and tool calls of every choice
// (Message, and OtherChoices when n > 1).
func partialOutput(e *tokens.Estimator, model string, resp *middleware.Response) int64 {
	out := choiceOutput(e, model, &resp.Message, resp.Refusal)
	for i := range resp.OtherChoices {
		c := &resp.OtherChoices[i]
		out = middleware.SatAdd(out, choiceOutput(e, model, &c.Message, c.Refusal))
	}
	return out
}

// choiceOutput counts the output tokens of one choice.
func choiceOutput(e *tokens.Estimator, model string, m *middleware.Message, refusal string) int64 {
	out := e.Text(model, m.Content) + e.Text(model, m.Reasoning) + e.Text(model, refusal)
	for _, tc := range m.ToolCalls {
		out += 3 + e.Text(model, tc.Name) + e.Text(model, tc.Arguments)
	}
	return out
}

// BilledUsage is the middleware.UsageFunc of a chain with this estimator:
// a stream cut before its usage is billed its estimated input plus the
// partial answer's tokens, an answer cut after its 2xx status its
// estimated input plus the output its body read holds
// (middleware.AnswerCutError.OutputEstimate), a whole answer that is
// malformed (middleware.AnswerMalformedError) its estimated input, an
// attempt cancelled or
// timed out in flight its estimated input — the same counts the budget
// settles for such an attempt, retried or the call's last.
//
// Its usage names no service tier: it is billed at the one the request
// asked for (the standard rates when it names none). [BilledUsageAt]
// prices a request that names none at its project's default tier.
func BilledUsage(e *tokens.Estimator) middleware.UsageFunc { return BilledUsageAt(e, "") }

// BilledUsageAt is [BilledUsage] for a provider project whose default
// service tier is defaultTier (Config.DefaultTier, the policy's
// budget.default_service_tier): an attempt that asked for no tier (or
// auto), which the provider processed and billed at that tier, is
// estimated at it, as its reservation was priced. Empty or "default":
// the standard rates.
func BilledUsageAt(e *tokens.Estimator, defaultTier string) middleware.UsageFunc {
	if defaultTier == "default" {
		defaultTier = ""
	}
	return func(req *middleware.Request, resp *middleware.Response, err error) middleware.Usage {
		u := middleware.Usage{InputTokens: e.Request(req.Model, req)}
		if resp != nil {
			u.OutputTokens = partialOutput(e, req.Model, resp)
		} else if out, ok := middleware.AnswerBilled(err); ok {
			u.OutputTokens = out
		}
		// Never more than the provider can bill: the output reserved.
		u.OutputTokens = middleware.CapOutput(req, u.OutputTokens)
		if defaultTier != "" && middleware.RequestServiceTier(req) == "" {
			u.ServiceTier = defaultTier
		}
		return u
	}
}

// maxSettle is Settleable's bound.
const maxSettle = 1 << 50

// Settleable bounds what one call settles to [0, 2^50] in each unit (2^50
// tokens or micro-dollars, about $1.1 billion): far beyond any real call
// and below what the stores count exactly (Redis's Lua reads numbers as
// doubles, exact to 2^53). A count beyond it is a server's garbage, which
// the budget bills as no count (middleware.Usage.Implausible: the
// estimate); a sum or cost beyond it settles at the bound. The budget
// layer settles every call through it; a caller settling a store itself
// (the gateway's embeddings) does too.
//
// Its SubMicroPico is carried into USDMicros to lie in [0, 999,999], and
// kept: a settlement is exact (see [Exact]).
func Settleable(a Amount) Amount {
	n := Amount{Tokens: min(max(a.Tokens, 0), maxSettle)}.withPico(a.USDMicros, a.SubMicroPico)
	switch {
	case n.USDMicros < 0:
		n.USDMicros, n.SubMicroPico = 0, 0
	case n.USDMicros >= maxSettle:
		n.USDMicros, n.SubMicroPico = maxSettle, 0
	}
	return n
}

// cost prices usage on model in pico-dollars: 0 for a model without a
// price (a USD budget refuses such a model before the call).
func (b *Budget) cost(model string, u middleware.Usage) int64 {
	c, _ := b.catalog.Cost(model, u)
	return c
}

// answerCost prices usage of an answer to a request for requested that
// the provider says answered, at the model middleware.BilledModel picks
// (the Meter's rule): 0 when that model has no price.
func (b *Budget) answerCost(requested, answered string, u middleware.Usage) int64 {
	c, _ := middleware.CostOfAnswer(b.catalog, requested, answered, u)
	return c
}

// callEstimate is a call's input token estimate, counted only when a
// decision needs the count: the request's input cap and the context
// window compare it with a limit, which a bound that costs no tokenising
// decides for a request well below it (tokens.BoundForCall); a ledger's
// reservation and the settlement of an answer without usage take the
// count itself. A policy of an input cap alone thus counts no new text
// of a request far below its cap.
type callEstimate struct {
	ctx     context.Context
	e       *tokens.Estimator
	req     *middleware.Request
	n       int64
	counted bool
	bound   int64
	bounded bool
	// floor is what the input is at least: for input the provider reads
	// from its storage (storedInput), what the context window leaves.
	floor int64
}

// exact returns the count (at least the floor).
func (c *callEstimate) exact() int64 {
	if !c.counted {
		c.n, c.counted = tokens.ForCall(c.ctx, c.e, c.req.Model, c.req), true
	}
	return max(c.n, c.floor)
}

// atMost reports whether the count is at most limit.
func (c *callEstimate) atMost(limit int64) bool {
	if c.floor > limit {
		return false
	}
	if !c.counted {
		if !c.bounded {
			c.bound, c.counted = tokens.BoundForCall(c.ctx, c.e, c.req.Model, c.req)
			c.bounded = true
			if c.counted {
				c.n = c.bound
			}
		}
		if c.bound <= limit {
			return true
		}
	}
	return c.exact() <= limit
}

// admit checks the request caps and reserves the worst case in the run and
// team ledgers, downgrading or warning as the policy says. It returns the
// request to send (max_tokens injected, model downgraded); est is set to
// its estimate.
func (b *Budget) admit(ctx context.Context, req *middleware.Request, downgraded bool, est *callEstimate) (*middleware.Request, *holds, error) {
	spec, _ := b.catalog.Model(req.Model)
	*est = callEstimate{ctx: ctx, e: b.est, req: req}
	held := b.needTeam || b.needRun && middleware.RunFrom(ctx) != nil
	out, inject, outWhy := b.outputBound(req, spec, est, held)
	if inject {
		req = middleware.CallInfoFrom(ctx).CloneRequest(req)
		req.MaxTokens = int(out)
	}
	stored := storedInput(req)
	if stored {
		// The provider reads the file's tokens: the input is bounded by
		// what the context window leaves for the output, and counted so.
		if w := spec.ContextWindow; w > 0 {
			est.floor = max(w-out, 0)
		} else if held || b.cfg.Request.MaxInputTokens > 0 {
			return nil, nil, &refusal{kind: ErrUncountable, msg: fmt.Sprintf("the request refers to a file by file_id, whose tokens the provider reads, "+
				"and model %q has no context_window in the catalog or the policy to bound them", req.Model)}
		}
	}
	exceeded := func(e *ExceededError) (*middleware.Request, *holds, error) {
		e.Model = req.Model
		if stored && e.Err == nil {
			e.Err = errStoredInput
		}
		return b.onExceeded(ctx, req, e, downgraded, est)
	}
	if mx := b.cfg.Request.MaxInputTokens; mx > 0 && !est.atMost(mx) {
		e := &ExceededError{Scope: "request", Unit: UnitTokens, Limit: mx, Need: est.exact()}
		if r, h, err := exceeded(e); err != nil || r != nil {
			return r, h, err
		}
	}
	if b.runLim.USDMicros > 0 || b.teamLim.USDMicros > 0 {
		if !spec.Priced {
			return nil, nil, &refusal{kind: ErrUnpriced, msg: fmt.Sprintf("a USD budget applies and model %q has no price in the catalog or the policy: "+
				"give it one in the policy (models: {%q: {input_per_1m: ..., output_per_1m: ...}}, or free: true)", req.Model, req.Model)}
		}
	}
	if !held {
		return req, &nothingHeld, nil // no ledger holds the call: nothing to reserve (reserve's own test)
	}
	n := est.exact()
	// Every choice of an n > 1 request may produce max_tokens: the
	// provider bills them all.
	choices := int64(max(req.N, 1))
	audio := b.est.AudioInput(req)
	tier := middleware.RequestServiceTier(req) // reserved at the rates of the tier it asks for
	if tier == "" && b.cfg.DefaultTier != "default" {
		// Named none (or auto): the project's default tier's.
		tier = b.cfg.DefaultTier
	}
	need := func() Amount {
		all := middleware.SatMul(out, choices) // (a huge n × max_tokens never wraps around to a small need)
		return Amount{Tokens: middleware.SatAdd(n, all), USDMicros: ceilMicro(b.worstCost(req.Model, spec, n, audio, all, tier))}
	}
	h, err := b.reserve(ctx, need(), b.runLim, b.teamLim)
	// Fit instead of refuse; another call may take the rest meanwhile: try
	// again. Not in warn mode, which lets the call through as it is.
	for i := 0; i < 3 && b.cfg.OnExceed != OnExceedWarn; i++ {
		if err == nil {
			break // (before e is declared: errors.As moves it to the heap)
		}
		var e *ExceededError
		if !errors.As(err, &e) {
			break
		}
		inPico, outPico := b.worstRates(req.Model, spec, n, audio, tier)
		fit := affordable(inPico, outPico, choices, n, e)
		if fit < b.minOutput() {
			e.Affordable, e.MinOutput = fit, b.minOutput() // said in the refusal
			break
		}
		if fit >= out {
			break
		}
		middleware.Emit(ctx, middleware.BudgetExceeded{Scope: e.Scope, Unit: e.Unit, Limit: e.Limit, Used: e.Used,
			Reserved: e.Reserved, Need: e.Need, Action: "fit"})
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
			f.Notes = append(f.Notes, fmt.Sprintf("budget: the %s budget affords %d of %d output tokens: max_tokens lowered to %d", e.Scope, fit, out, fit))
		})
		out, outWhy = fit, boundWhy{text: fmt.Sprintf("what the %s budget afforded", e.Scope)}
		req = req.Clone()
		req.MaxTokens = int(out)
		h, err = b.reserve(ctx, need(), b.runLim, b.teamLim)
	}
	if err != nil {
		var e *ExceededError
		if !errors.As(err, &e) {
			return nil, nil, err
		}
		e.Output, e.OutputBound = out, outWhy.String()
		r, h2, err := exceeded(e)
		if err != nil || r != nil {
			return r, h2, err
		}
		// warn: reserve without limits, so that the spend is still recorded
		if h, err = b.reserve(ctx, need(), Amount{}, Amount{}); err != nil {
			return nil, nil, err
		}
	}
	if h != &nothingHeld {
		h.need = need()
	}
	return req, h, nil
}

// errStoredInput explains the need of a call whose input includes a file
// by file_id (see storedInput).
var errStoredInput = errors.New("the request refers to a file by file_id, whose tokens the provider reads: its input is counted at what the model's context window leaves")

// storedInput reports whether req's input includes content the provider
// reads from its own storage, which cannot be counted before the call: a
// chat "file" part that names a file_id without its file_data (the
// OpenAI transport carries such a part as its wire JSON).
func storedInput(req *middleware.Request) bool {
	for i := range req.Messages {
		for _, p := range req.Messages[i].Parts {
			if p.Type != "file" || !bytes.Contains(p.Data, []byte("file_id")) {
				continue
			}
			var w struct {
				File struct {
					FileID   string `json:"file_id"`
					FileData string `json:"file_data"`
				} `json:"file"`
			}
			if json.Unmarshal(p.Data, &w) == nil && w.File.FileID != "" && w.File.FileData == "" {
				return true
			}
		}
	}
	return false
}

func (b *Budget) minOutput() int64 {
	if m := b.cfg.MinOutputTokens; m > 0 {
		return m
	}
	return DefaultMinOutputTokens
}

// worstCost is the price of the worst case (worstCase) of a call for
// model, whose catalog entry is spec, at the dearest model its answer may
// be billed as: model itself or one of spec.AnswerModels (a dated snapshot
// of it at a price of its own, which the provider may name in its answer
// and bill), each at its own rates.
func (b *Budget) worstCost(model string, spec Model, est, audio, out int64, tier string) int64 {
	c := b.cost(model, worstCase(spec, est, audio, out, tier))
	for _, m := range spec.AnswerModels {
		s, _ := b.catalog.Model(m)
		c = max(c, b.cost(m, worstCase(s, est, audio, out, tier)))
	}
	return c
}

// worstRates returns what the input of a call for model costs at most and
// an output token at most (at this tier and input length), each the
// dearest over the models its answer may be billed as (see worstCost): a
// reservation of est input and k output tokens costs at most inPico +
// k×outPico.
func (b *Budget) worstRates(model string, spec Model, est, audio int64, tier string) (inPico, outPico int64) {
	in := b.cost(model, worstCase(spec, est, audio, 0, tier))
	inPico, outPico = in, b.cost(model, worstCase(spec, est, audio, 1, tier))-in // the rate of an output token at this tier and length
	for _, m := range spec.AnswerModels {
		s, _ := b.catalog.Model(m)
		in := b.cost(m, worstCase(s, est, audio, 0, tier))
		inPico, outPico = max(inPico, in), max(outPico, b.cost(m, worstCase(s, est, audio, 1, tier))-in)
	}
	return inPico, outPico
}

// worstCase is what a call may be billed: est input tokens of which audio
// are audio, the others all written to the provider's prompt cache when
// the model's cache writes are dearer than its input, and out output
// tokens, all of them audio when the model's audio output is dearer than
// its text output, at the service tier.
func worstCase(spec Model, est, audio, out int64, tier string) middleware.Usage {
	u := middleware.Usage{InputTokens: est, AudioInputTokens: min(audio, est), OutputTokens: out, ServiceTier: tier}
	if spec.CacheWritePico > spec.InputPico {
		u.CacheWriteTokens = est - u.AudioInputTokens
	}
	if spec.AudioOutputPico > spec.OutputPico {
		u.AudioOutputTokens = out
	}
	return u
}

// affordable returns the most output tokens per choice that fit what e
// says is left of its limit, with est input tokens costing inputPico and
// an output token outputPico: the largest out whose reservation (cost
// rounded up once to a micro-dollar) fits.
func affordable(inputPico, outputPico, choices, est int64, e *ExceededError) int64 {
	left := e.Limit - e.Used - e.Reserved
	if e.Unit == UnitTokens {
		return max(left-est, 0) / choices
	}
	room := picoOf(left) - inputPico
	rate := middleware.SatMul(outputPico, choices) // pico-dollars per token, all choices
	if room <= 0 || rate <= 0 {
		return 0
	}
	return int64(room) / rate
}

// exceeded reports a limit e exceeded and the action taken: an event,
// and a warning in the log when the call is let through.
func (b *Budget) exceeded(ctx context.Context, e *ExceededError, action OnExceed) {
	middleware.Emit(ctx, middleware.BudgetExceeded{Scope: e.Scope, Unit: e.Unit, Limit: e.Limit, Used: e.Used,
		Reserved: e.Reserved, Need: e.Need, Action: string(action)})
	if action == OnExceedWarn {
		b.log.WarnContext(ctx, "tokenwise: budget exceeded, call let through (on_exceed: warn)", "scope", e.Scope,
			"unit", e.Unit, "limit", e.Limit, "used", e.Used, "reserved", e.Reserved, "need", e.Need, "model", e.Model)
	}
}

// onExceeded applies on_exceed. It returns a nil request and nil error for
// warn (the caller goes on), the downgraded admission for downgrade, and
// the error for reject.
func (b *Budget) onExceeded(ctx context.Context, req *middleware.Request, e *ExceededError, downgraded bool, est *callEstimate) (*middleware.Request, *holds, error) {
	action := b.cfg.OnExceed
	if action == "" || (action == OnExceedDowngrade && (downgraded || req.Model == b.cfg.DowngradeTo || middleware.FixedModel(ctx) ||
		!middleware.Serves(ctx, b.cfg.DowngradeTo))) {
		// (A call whose endpoint serves one model, or not the cheaper
		// one, cannot be downgraded.)
		action = OnExceedReject
	}
	b.exceeded(ctx, e, action)
	switch action {
	case OnExceedWarn:
		return nil, nil, nil
	case OnExceedDowngrade:
		d := req.Clone()
		d.Model = b.cfg.DowngradeTo
		// The caller's max_tokens, as far as the cheaper model can give it.
		middleware.FitMaxTokens(ctx, d, func(model string) int64 {
			spec, _ := b.catalog.Model(model)
			return spec.MaxOutputTokens
		})
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
			f.Model = d.Model
			f.Notes = append(f.Notes, fmt.Sprintf("budget: %s over its %s limit, downgraded %s → %s", e.Scope, e.Unit, req.Model, d.Model))
			if f.OffRoute == "" {
				f.OffRoute = "budget: downgraded " + req.Model + " → " + d.Model
			}
		})
		r, h, err := b.admit(ctx, d, true, est)
		var e2 *ExceededError
		if errors.As(err, &e2) && e2.Err == nil {
			e2.Err = e
		}
		return r, h, err
	}
	return nil, nil, e
}

// outputBound returns the output tokens to reserve, whether max_tokens
// must be set on the request, and where the bound comes from (for a
// refusal's message): the request's own max_tokens, capped by the policy;
// else the policy's cap, the model's max output, or DefaultMaxOutput; never
// more than the context window leaves, nor, where the policy's cap sets
// it, more than the model's max output.
//
// A request without max_tokens gets the bound only when a ledger holds
// what the call may spend (held: a team budget, or a run budget and a
// run), so that the provider can never answer more than was reserved; or
// when the policy caps every request's output. Otherwise nothing is
// reserved, and the request goes as the caller wrote it (a bound equal to
// the model's own limit would change nothing but cost a rewrite of the
// body).
func (b *Budget) outputBound(req *middleware.Request, spec Model, est *callEstimate, held bool) (int64, bool, boundWhy) {
	out := int64(req.MaxTokens)
	limit := b.cfg.Request.MaxOutputTokens
	inject := false
	why := boundWhy{text: "the request's max_tokens"}
	if out <= 0 || (limit > 0 && out > limit) {
		switch {
		case limit > 0 && spec.MaxOutputTokens > 0 && spec.MaxOutputTokens < limit:
			// The policy's cap serves every model; the provider refuses a
			// max_tokens above the model's own.
			out, inject, why = spec.MaxOutputTokens, true, boundWhy{model: req.Model, text: "'s maximum output, below budget.request.max_output_tokens"}
		case limit > 0:
			out, inject, why = limit, true, boundWhy{text: "budget.request.max_output_tokens"}
		case spec.MaxOutputTokens > 0:
			out, inject, why = spec.MaxOutputTokens, held, boundWhy{model: req.Model, text: "'s maximum output, as the request sets no max_tokens"}
		default:
			out, inject, why = DefaultMaxOutput, held, boundWhy{text: "the default for a model without max_output_tokens, as the request sets no max_tokens"}
		}
	}
	if w := spec.ContextWindow; w > 0 && (out >= w || !est.atMost(w-out)) {
		if n := est.exact(); n < w && out > w-n {
			out, inject, why = w-n, inject || req.MaxTokens > 0, boundWhy{pre: "what ", model: req.Model, text: "'s context window leaves after the input"}
		}
	}
	return out, inject, why
}

// boundWhy is where an output bound comes from: pre, model and text
// joined, only when a refusal's message needs it (outputBound runs on
// every call).
type boundWhy struct{ pre, model, text string }

func (w boundWhy) String() string { return w.pre + w.model + w.text }

func (b *Budget) nextID() string {
	return b.idBase + "-" + strconv.FormatUint(b.seq.Add(1), 36)
}

// reserve holds need in the run ledger, then in the team ledger; on a team
// refusal the run hold is released.
func (b *Budget) reserve(ctx context.Context, need, runLim, teamLim Amount) (*holds, error) {
	run := middleware.RunFrom(ctx)
	if !b.needTeam && (run == nil || !b.needRun) {
		return &nothingHeld, nil
	}
	now := b.now()
	h := &holds{}
	if run != nil && b.needRun {
		hold, err := b.reserveRun(ctx, run, h, need, runLim, now)
		if err != nil {
			return nil, err
		}
		h.run = hold
	}
	if !b.needTeam {
		return h, nil
	}
	team := b.Team(ctx)
	h.teamName = team
	h.teamKey = b.TeamKey(team)
	h.teamW = WindowFor(b.cfg.Team.Period, b.cfg.Team.Window, now)
	r := Reservation{Key: h.teamKey, ID: b.nextID(), Need: need, Limit: teamLim, Window: h.teamW, Now: now, TTL: b.ttl}
	h.teamStore = b.store
	legacy, err := b.legacyBalance(ctx, team, h.teamW, now)
	var hold Hold
	if err == nil {
		if !teamLim.IsZero() {
			r.Limit = withoutLegacy(teamLim, legacy)
		}
		hold, err = b.store.Reserve(ctx, r)
	}
	if err != nil {
		var e *ExceededError
		if errors.As(err, &e) {
			e.Scope = "team:" + team
			if e.Unit == UnitUSD {
				e.Limit, e.Used, e.Reserved = teamLim.USDMicros, e.Used+legacy.Used.Ceil().USDMicros, e.Reserved+legacy.Reserved.Ceil().USDMicros
			} else {
				e.Limit, e.Used, e.Reserved = teamLim.Tokens, e.Used+legacy.Used.Tokens, e.Reserved+legacy.Reserved.Tokens
			}
		} else {
			r.Limit = teamLim
			hold, err = b.unavailable(ctx, r, teamLim, err)
			h.teamStore = b.local
		}
		if err != nil {
			if h.run != nil {
				_, _ = h.run.Settle(ctx, Amount{}, now)
			}
			if errors.As(err, &e) {
				e.Scope = "team:" + team
			}
			return nil, err
		}
	}
	h.team = hold
	return h, nil
}

// reserveRun holds need in the run's ledger: the ledger in the run, or
// for a shared run (middleware.OpenSharedRun) the store's ledger under the
// run's key, kept for the run's idle time, so that every process sharing
// the run reserves against one ledger. A store failure is handled as for a
// team ledger (on_unavailable).
func (b *Budget) reserveRun(ctx context.Context, run *middleware.Run, h *holds, need, runLim Amount, now time.Time) (Hold, error) {
	key, rs := run.Shared()
	if key == "" {
		h.runL = b.runLedger(run)
		hold, err := h.runL.reserve(need, runLim, now)
		if err != nil {
			err.(*ExceededError).Scope = "run"
		}
		return hold, err
	}
	h.runKey, h.runIdle, h.runStore = b.RunKey(key), rs.Idle(), b.store
	r := Reservation{Key: h.runKey, ID: b.nextID(), Need: need, Limit: runLim, Now: now, TTL: b.ttl, Idle: h.runIdle}
	legacy, err := b.legacyRunBalance(ctx, run, key, now)
	var hold Hold
	if err == nil {
		if !runLim.IsZero() {
			r.Limit = withoutLegacy(runLim, legacy)
		}
		hold, err = b.store.Reserve(ctx, r)
	}
	var e *ExceededError
	if errors.As(err, &e) {
		// The figures of the run's whole spend, the legacy ledger's too.
		if e.Unit == UnitUSD {
			e.Limit, e.Used, e.Reserved = runLim.USDMicros, e.Used+legacy.Used.Ceil().USDMicros, e.Reserved+legacy.Reserved.Ceil().USDMicros
		} else {
			e.Limit, e.Used, e.Reserved = runLim.Tokens, e.Used+legacy.Used.Tokens, e.Reserved+legacy.Reserved.Tokens
		}
	}
	if err != nil && !errors.As(err, &e) {
		if err = b.storeDown(ctx, err); err != nil {
			return nil, err
		}
		// on_unavailable local: the local share of the run's limit, in
		// the run's ledger in this process (which goes with the run).
		h.runL, h.runStore = b.runLedger(run), nil
		if !runLim.IsZero() {
			runLim = b.localShare(runLim)
		}
		hold, err = h.runL.reserve(need, runLim, now)
	}
	if errors.As(err, &e) {
		e.Scope = "run"
	}
	return hold, err
}

// unavailable handles a store failure per policy: fail_closed refuses the
// call; local reserves in the local store with the local share of lim.
func (b *Budget) unavailable(ctx context.Context, r Reservation, lim Amount, cause error) (Hold, error) {
	if err := b.storeDown(ctx, cause); err != nil {
		return nil, err
	}
	if !lim.IsZero() {
		r.Limit = b.localShare(lim)
	}
	return b.local.Reserve(ctx, r)
}

// storeDown reports a store failure and applies the policy: fail_closed
// refuses the call (the error returned); local lets it spend a local share
// (nil).
func (b *Budget) storeDown(ctx context.Context, cause error) error {
	middleware.Emit(ctx, middleware.StoreFailed{Store: "budget", Op: "reserve", Err: cause})
	if b.local == nil {
		b.log.ErrorContext(ctx, "tokenwise: budget store unavailable, call refused (on_unavailable: fail_closed)", "err", cause)
		return &refusal{kind: ErrStoreUnavailable, msg: "on_unavailable is fail_closed", err: cause}
	}
	b.log.WarnContext(ctx, "tokenwise: budget store unavailable, spending the local share (on_unavailable: local)", "err", cause)
	return nil
}

// localShare returns the share of lim a replica spends alone while the
// shared store is unavailable.
func (b *Budget) localShare(lim Amount) Amount {
	f := b.cfg.LocalFraction
	if f <= 0 {
		f = DefaultLocalFraction
	}
	return Amount{USDMicros: int64(float64(lim.USDMicros) * f), Tokens: int64(float64(lim.Tokens) * f)}
}

// settle settles the call's holds and fires soft-limit events. It runs
// when the call has ended, also when ctx was cancelled: the stores are
// given ctx without its cancellation.
func (b *Budget) settle(ctx context.Context, h *holds, actual Amount) {
	if h.run == nil && h.team == nil {
		return
	}
	// A context with a deadline ends at it: it is not asked for its Done
	// channel, which would start the timer of a middleware.Deadline
	// nobody watched (the run guard's, see middleware.Deadline) or make
	// a channel for a real one. Else one whose Done is nil can never be
	// cancelled.
	if _, ok := ctx.Deadline(); ok || ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	now := b.now()
	if h.run != nil {
		bal, err := h.run.Settle(ctx, actual, now)
		switch {
		case err != nil:
			middleware.Emit(ctx, middleware.StoreFailed{Store: "budget", Op: "settle", Err: err})
			b.log.WarnContext(ctx, "tokenwise: run budget settle failed; the reservation expires with its TTL", "err", err)
		case actual.IsZero():
		case h.runKey == "": // a run of this process: its flags live in its ledger
			b.warn(ctx, "run", "", Window{}, 0, b.runLim, bal, now, h.runL)
		case h.runStore == b.store: // a shared run: its flags live as long as its ledger
			b.warn(ctx, "run", h.runKey, Window{}, h.runIdle, b.runLim, bal, now, nil)
		}
	}
	if h.team != nil {
		bal, err := h.team.Settle(ctx, actual, now)
		if err != nil {
			middleware.Emit(ctx, middleware.StoreFailed{Store: "budget", Op: "settle", Err: err})
			b.log.WarnContext(ctx, "tokenwise: budget settle failed; the reservation expires with its TTL", "err", err)
			return
		}
		if !actual.IsZero() && h.teamStore == b.store {
			ttl := h.teamW.Remains(now)
			if ttl <= 0 {
				// A call settled after its window ended (reserved before
				// midnight, answered after) is charged to that window,
				// whose flags then live a reservation's TTL: a flag
				// without one would never expire.
				ttl = b.ttl
			}
			// What the team's legacy ledger holds counts against its
			// limit (legacyTeamKey): its warnings count it too.
			if legacy, err := b.legacyBalance(ctx, h.teamName, h.teamW, now); err == nil {
				bal.Used, bal.Reserved = bal.Used.Add(legacy.Used), bal.Reserved.Add(legacy.Reserved)
			}
			b.warn(ctx, "team:"+h.teamName, h.teamKey, h.teamW, ttl, b.teamLim, bal, now, nil)
			b.warnPace(ctx, "team:"+h.teamName, h.teamKey, h.teamW, ttl, b.teamLim, bal, now)
		}
	}
}

// warn fires the soft-limit events crossed by bal, once per window and
// fraction: the flags of a run's ledger in the run live in it (runL), the
// others in the store for ttl.
func (b *Budget) warn(ctx context.Context, scope, key string, w Window, ttl time.Duration, limit Amount, bal Balance, now time.Time, runL *ledger) {
	if len(b.warnAt) == 0 {
		return
	}
	for _, u := range [2]struct {
		unit        string
		used, limit int64
	}{{UnitUSD, bal.Used.USDMicros, limit.USDMicros}, {UnitTokens, bal.Used.Tokens, limit.Tokens}} {
		if u.limit <= 0 {
			continue
		}
		for _, f := range b.warnAt {
			if float64(u.used) < f*float64(u.limit) {
				break
			}
			if runL != nil {
				if runL.markOnce(u.unit + ":" + strconv.FormatFloat(f, 'g', -1, 64)) {
					b.fire(ctx, scope, u.unit, f, u.limit, u.used)
				}
				continue
			}
			flag := key + ":warn:" + w.ID() + ":" + u.unit + ":" + strconv.FormatFloat(f, 'g', -1, 64)
			// A fixed window's flags are remembered here until it ends (a
			// shared run's, without an end, are not).
			memo := w.Rolling <= 0 && !w.End.IsZero()
			if memo {
				if _, seen := b.warned.Load(flag); seen {
					continue // known to be set: spare the store a round trip
				}
			}
			first, err := b.store.Mark(ctx, flag, ttl, now)
			if err != nil {
				first = true // better a duplicate warning than none
			}
			if memo {
				b.warned.Store(flag, w.End)
				b.pruneWarned(now)
			}
			if first {
				b.fire(ctx, scope, u.unit, f, u.limit, u.used)
			}
		}
	}
}

// warnPace fires middleware.BudgetPace when, at the pace of the elapsed
// part of w (a fixed window, a tenth of it passed at least), the spend
// reaches a unit's limit before w ends: once per window and unit (across
// replicas for a shared store), with soft limits set, and only while the
// spend is below the limit (past it the soft limits have spoken).
func (b *Budget) warnPace(ctx context.Context, scope, key string, w Window, ttl time.Duration, limit Amount, bal Balance, now time.Time) {
	if len(b.warnAt) == 0 || w.Rolling > 0 || !now.Before(w.End) || now.Sub(w.Start)*10 < w.End.Sub(w.Start) {
		return
	}
	for _, u := range [2]struct {
		unit        string
		limit, used Amount
	}{{UnitUSD, Amount{USDMicros: limit.USDMicros}, Amount{USDMicros: bal.Used.USDMicros}},
		{UnitTokens, Amount{Tokens: limit.Tokens}, Amount{Tokens: bal.Used.Tokens}}} {
		lim, used := max(u.limit.USDMicros, u.limit.Tokens), max(u.used.USDMicros, u.used.Tokens)
		if lim <= 0 || used >= lim {
			continue
		}
		p, ok := Remaining{Window: w, At: now, Balance: Balance{Limit: u.limit, Used: u.used}}.Pace()
		if !ok || p.RunsOutAt.IsZero() {
			continue
		}
		flag := key + ":pace:" + w.ID() + ":" + u.unit
		if _, seen := b.warned.Load(flag); seen {
			continue
		}
		first, err := b.store.Mark(ctx, flag, ttl, now)
		if err != nil {
			first = true // better a duplicate warning than none
		}
		b.warned.Store(flag, w.End)
		b.pruneWarned(now)
		if first {
			projected := max(p.Projected.USDMicros, p.Projected.Tokens)
			b.log.WarnContext(ctx, "tokenwise: budget on pace to run out before its period ends", "scope", scope, "unit", u.unit,
				"limit", lim, "used", used, "projected", projected, "runs_out_at", p.RunsOutAt, "window_end", w.End)
			middleware.Emit(ctx, middleware.BudgetPace{Scope: scope, Unit: u.unit, Limit: lim, Used: used, Projected: projected,
				RunsOutAt: p.RunsOutAt, WindowEnd: w.End})
		}
	}
}

// pruneWarned drops the local copies of flags of ended windows, at most
// once a minute.
func (b *Budget) pruneWarned(now time.Time) {
	last := b.pruned.Load()
	if now.Unix()-last < 60 || !b.pruned.CompareAndSwap(last, now.Unix()) {
		return
	}
	b.warned.Range(func(k, v any) bool {
		if end, ok := v.(time.Time); ok && !now.Before(end) {
			b.warned.Delete(k)
		}
		return true
	})
}

func (b *Budget) fire(ctx context.Context, scope, unit string, f float64, limit, used int64) {
	b.log.WarnContext(ctx, "tokenwise: budget soft limit reached", "scope", scope, "unit", unit,
		"fraction", f, "limit", limit, "used", used)
	middleware.Emit(ctx, middleware.BudgetWarning{Scope: scope, Unit: unit, Fraction: f, Limit: limit, Used: used})
}

// CallHold is the reservations Reserve took for one call: settle it once,
// with what the call cost.
type CallHold struct {
	b    *Budget
	h    *holds
	stop func()
	once sync.Once
}

// Reserve holds need for one call that does not go through the chain — a
// gateway passing a priced endpoint through (the Responses API,
// embeddings), whose worst case the caller computed — in every ledger that
// applies to ctx's call, as the budget layer holds a chat call's: the
// run's (middleware.RunFrom, under the per-run limit; a shared run's in
// the store) and the team's (middleware.TeamFrom), with the same
// refusals (*ExceededError, Scope "run" or "team:<team>"), on_exceed
// (reject, or warn: the call let through and its spend recorded; a
// downgrade is the caller's, it rejects here), store-failure policy
// (on_unavailable) and reservation keep-alive while the call is in
// flight. A USD limit with an unpriced call is the caller's to refuse.
// The hold is settled with Settle; one never settled expires with the
// reservation TTL at what it holds.
func (b *Budget) Reserve(ctx context.Context, need Amount) (*CallHold, error) {
	h, err := b.reserveLimited(ctx, need, "")
	if err != nil {
		return nil, err
	}
	return &CallHold{b: b, h: h, stop: b.keepAlive(ctx, h)}, nil
}

// reserveLimited reserves need in every ledger of ctx's call under the
// budget's limits. A refusal (*ExceededError, naming model when it is not
// "") is reported; in warn mode need is then reserved all the same,
// recorded but not limited.
func (b *Budget) reserveLimited(ctx context.Context, need Amount, model string) (*holds, error) {
	h, err := b.reserve(ctx, need, b.runLim, b.teamLim)
	if e, ok := errors.AsType[*ExceededError](err); ok {
		if model != "" {
			e.Model = model
		}
		if b.cfg.OnExceed != OnExceedWarn {
			b.exceeded(ctx, e, OnExceedReject)
			return nil, err
		}
		b.exceeded(ctx, e, OnExceedWarn)
		h, err = b.reserve(ctx, need, Amount{}, Amount{}) // recorded, not limited
	}
	return h, err
}

// Settle settles the hold at actual — what the call cost; the zero Amount
// releases it — in every ledger it holds, firing the soft-limit warnings
// it crosses; later calls do nothing. ctx's cancellation is ignored.
func (c *CallHold) Settle(ctx context.Context, actual Amount) {
	c.once.Do(func() {
		c.stop()
		c.b.settle(ctx, c.h, actual)
	})
}

// Limits returns the budget's per-run and per-team limits (zero in a unit
// without a limit).
func (b *Budget) Limits() (run, team Amount) { return b.runLim, b.teamLim }
