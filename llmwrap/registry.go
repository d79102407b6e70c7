package llmwrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Registry serves every call with the chain built (by Build) for the
// policy of the call's team, middleware.TeamFrom(ctx), and the default
// policy for calls without a team or with a team that has no file.
//
// When the policies.Registry reloads, the chains of changed teams are
// rebuilt and swapped in atomically: new calls use the new chain, calls
// already running finish under the chain they started with. State that
// must outlive a rebuild (response cache contents, budget ledgers,
// breakers) lives in a State shared by every build, so a reload keeps it;
// see State. A policy that builds with an error keeps the team's last
// good chain, and the problem is reported as a middleware.PolicyChanged
// event (with Err) to the registry's observers and logged.
//
// A Registry is safe for concurrent use. Close stops following reloads.
type Registry struct {
	pol     *policies.Registry
	opts    []Option
	state   *State
	obs     middleware.Observer
	logger  *slog.Logger
	unknown policies.UnknownTeams // "" = the default policy's teams.unknown
	cancel  func()

	unknownMu   sync.Mutex
	unknownSeen map[string]bool // teams already reported, bounded by maxUnknownTeams

	mu  sync.Mutex // serialises rebuilds
	cur atomic.Pointer[chainSet]
}

type chainSet struct {
	gen   uint64
	teams map[string]middleware.Middleware
	def   middleware.Middleware
	// The policies the chains were built for (a team's last good one):
	// a reload that leaves a policy as it was keeps its chain.
	pols   map[string]*policies.Policy
	defPol *policies.Policy
}

// NewRegistry builds a chain per team of reg and follows its reloads.
// opts are passed to every Build (observers, logger, stores); a State is
// added unless opts carry one (WithState), so that caches and budgets
// survive reloads.
func NewRegistry(reg *policies.Registry, opts ...Option) (*Registry, error) {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	r := &Registry{pol: reg, opts: opts, state: o.state, obs: middleware.Observers(o.observers...), logger: o.logger, unknown: o.unknownTeams}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if r.state == nil {
		r.state = NewState()
		r.opts = append(append([]Option(nil), opts...), WithState(r.state))
	}
	teams, def, gen := reg.Snapshot()
	cs, errs := r.build(nil, teams, def, gen)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.cur.Store(cs)
	r.cancel = reg.Subscribe(r.onChange)
	return r, nil
}

// Close stops following the policy registry's reloads. Running calls and
// handlers already made keep working with the chains they hold.
func (r *Registry) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	return nil
}

// Policies returns the policy registry.
func (r *Registry) Policies() *policies.Registry { return r.pol }

// Generation returns the generation of the chains in force.
func (r *Registry) Generation() uint64 { return r.cur.Load().gen }

func (r *Registry) teamOptions(team string, p *policies.Policy) []Option {
	opts := r.opts
	if p.Cache.Enabled && p.Cache.Store != policies.StoreRedis {
		// One memory store per cache scope, created once: a reload keeps
		// its contents. Its bounds are those of the policy that created it.
		scope := "team:" + team
		if p.Cache.Scope == policies.CacheScopeGlobal {
			scope = "global"
		}
		c := p.Cache
		store := r.state.scopeCache(scope, func() cache.Store {
			return cache.NewMemory(cache.MemoryOptions{MaxEntries: c.MaxEntries, MaxBytes: int64(c.MaxBytes)})
		})
		opts = append(append([]Option(nil), opts...), WithCacheStore(store))
	}
	return opts
}

// build builds the chains of the given policies, reusing prev's chain for
// a team whose policy did not change or fails to build.
func (r *Registry) build(prev *chainSet, teams map[string]*policies.Policy, def *policies.Policy, gen uint64) (*chainSet, []error) {
	cs := &chainSet{gen: gen, teams: make(map[string]middleware.Middleware, len(teams)), pols: make(map[string]*policies.Policy, len(teams))}
	var errs []error
	for team, p := range teams {
		if prev != nil && prev.pols[team] == p {
			// The policy did not change (the registry keeps its pointer):
			// its chain stays, with what its layers learned (latencies
			// a hedge's percentile reads, warnings already given).
			cs.teams[team], cs.pols[team] = prev.teams[team], p
			continue
		}
		mw, err := Build(p, r.teamOptions(team, p)...)
		if err != nil {
			err = fmt.Errorf("tokenwise/llmwrap: team %s: %w", team, err)
			errs = append(errs, err)
			if prev != nil {
				if old, ok := prev.teams[team]; ok {
					cs.teams[team], cs.pols[team] = old, prev.pols[team]
				}
			}
			continue
		}
		cs.teams[team], cs.pols[team] = mw, p
	}
	switch mw, ok := cs.teams[policies.DefaultTeam]; {
	case ok && teams[policies.DefaultTeam] == def:
		cs.def, cs.defPol = mw, def
	case prev != nil && prev.defPol == def:
		cs.def, cs.defPol = prev.def, def
	default:
		mw, err := Build(def, r.teamOptions(policies.DefaultTeam, def)...)
		switch {
		case err == nil:
			cs.def, cs.defPol = mw, def
		case prev != nil:
			cs.def, cs.defPol = prev.def, prev.defPol
			errs = append(errs, err)
		default:
			errs = append(errs, err)
		}
	}
	return cs, errs
}

func (r *Registry) onChange(ch policies.Change) {
	_, errs := r.refresh()
	if r.obs == nil {
		return
	}
	ctx := context.Background()
	for _, team := range ch.Updated {
		r.obs.Observe(ctx, middleware.PolicyChanged{Name: team, Path: ch.Files[team]})
	}
	for team, err := range ch.Failed {
		r.obs.Observe(ctx, middleware.PolicyChanged{Name: team, Path: ch.Files[team], Err: err})
	}
	for _, err := range errs {
		r.obs.Observe(ctx, middleware.PolicyChanged{Err: err})
	}
}

// current returns the chains of the policies in force, rebuilding them
// first when the policy registry moved on (so that a call made right after
// a reload never runs under the old chain, whatever order the reload's
// subscribers run in).
func (r *Registry) current() *chainSet {
	cs := r.cur.Load()
	if r.pol.Generation() == cs.gen {
		return cs
	}
	cs, errs := r.refresh()
	for _, err := range errs {
		if r.obs != nil {
			r.obs.Observe(context.Background(), middleware.PolicyChanged{Err: err})
		}
	}
	return cs
}

// refresh rebuilds the chains if the policy registry's generation changed.
func (r *Registry) refresh() (*chainSet, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.cur.Load()
	teams, def, gen := r.pol.Snapshot()
	if gen == prev.gen {
		return prev, nil
	}
	cs, errs := r.build(prev, teams, def, gen)
	r.cur.Store(cs)
	return cs, errs
}

// Middleware returns the registry as a middleware: each call goes through
// the chain of its team's policy, then to next.
func (r *Registry) Middleware() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		h := &registryHandler{r: r, next: next}
		h.bind(r.current())
		return h
	}
}

// Handler returns the registry in front of provider, as a Handler.
func (r *Registry) Handler(provider middleware.Handler) middleware.Handler {
	return r.Middleware()(provider)
}

// registryHandler holds the chains of one registry applied to one next
// handler, rebound when the registry's chains change.
type registryHandler struct {
	r    *Registry
	next middleware.Handler
	mu   sync.Mutex
	cur  atomic.Pointer[boundSet]
}

type boundSet struct {
	set   *chainSet
	teams map[string]middleware.Handler
	def   middleware.Handler
}

func (h *registryHandler) bind(cs *chainSet) *boundSet {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.cur.Load()
	if old != nil && old.set == cs {
		return old
	}
	b := &boundSet{set: cs, teams: make(map[string]middleware.Handler, len(cs.teams))}
	for team, mw := range cs.teams {
		if p := cs.pols[team]; old != nil && p != nil && old.set.pols[team] == p {
			// The same chain (built once for the same policy): its
			// handlers stay, with what their layers learned.
			b.teams[team] = old.teams[team]
			continue
		}
		b.teams[team] = mw(h.next)
	}
	if old != nil && cs.defPol != nil && old.set.defPol == cs.defPol {
		b.def = old.def
	} else {
		b.def = cs.def(h.next)
	}
	h.cur.Store(b)
	return b
}

// handlerFor returns the handler of the call's team. It does not allocate
// for a known team.
func (h *registryHandler) handlerFor(ctx context.Context) (middleware.Handler, error) {
	b := h.cur.Load()
	if cs := h.r.current(); b.set != cs {
		b = h.bind(cs)
	}
	team := middleware.TeamFrom(ctx)
	if hh, ok := b.teams[team]; ok {
		return hh, nil
	}
	if team != "" && team != policies.DefaultTeam {
		if err := h.r.unknownTeam(team); err != nil {
			return nil, err
		}
	}
	return b.def, nil
}

func (h *registryHandler) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	hh, err := h.handlerFor(ctx)
	if err != nil {
		return nil, err
	}
	return hh.Handle(ctx, req)
}

// maxUnknownTeams bounds the memory of reported unknown teams: a caller
// inventing team names cannot grow it without limit.
const maxUnknownTeams = 1024

// unknownTeam handles a call whose team has no policy: it reports the team
// once (a slog warning and an UnknownTeam event) and returns an
// *policies.UnknownTeamError when unknown teams are errors.
func (r *Registry) unknownTeam(team string) error {
	mode := r.unknown
	if mode == "" {
		mode = r.pol.Default().Teams.Unknown
	}
	refuse := mode == policies.UnknownTeamsError
	r.unknownMu.Lock()
	first := !r.unknownSeen[team] && len(r.unknownSeen) < maxUnknownTeams
	if first {
		if r.unknownSeen == nil {
			r.unknownSeen = map[string]bool{}
		}
		r.unknownSeen[team] = true
	}
	r.unknownMu.Unlock()
	var known []string
	if first || refuse {
		known = r.pol.Names()
	}
	if first {
		attrs := []any{"team", team, "known", known, "dir", r.pol.Dir()}
		if m := policies.Suggest(team, known); m != "" {
			attrs = append(attrs, "did_you_mean", m) // a typo of a team that has a file ("devps" beside devops.yaml)
		}
		if refuse {
			r.logger.Warn("tokenwise: call refused: its team has no policy file (teams.unknown: error)", attrs...)
		} else {
			r.logger.Warn("tokenwise: unknown team: its calls use the default policy (set teams: {unknown: error} in the default policy to refuse them)",
				attrs...)
		}
		if r.obs != nil {
			r.obs.Observe(context.Background(), middleware.UnknownTeam{Team: team, Known: known, Refused: refuse})
		}
	}
	if refuse {
		return &policies.UnknownTeamError{Team: team, Known: known}
	}
	return nil
}
