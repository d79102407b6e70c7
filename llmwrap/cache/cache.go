package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Store keeps cache entries by key ([Sum] of the canonical request).
// Implementations must be safe for concurrent use. Get returns nil, nil on
// a miss (an expired entry is a miss); the returned Entry may be shared and
// must not be modified. Set stores e for ttl (0 = no expiry) and must not
// keep or modify anything but e itself, which it then owns.
type Store interface {
	Get(ctx context.Context, key uint64) (*Entry, error)
	Set(ctx context.Context, key uint64, e *Entry, ttl time.Duration) error
}

// ErrStore matches the error of a call refused because the cache store
// failed and the cache is fail-closed.
var ErrStore = errors.New("tokenwise/cache: store failed")

// StoreError is a store failure returned to the caller by a fail-closed
// cache. It matches ErrStore with errors.Is and unwraps to the store's
// error.
type StoreError struct {
	Op  string // "get"
	Err error
}

func (e *StoreError) Error() string { return fmt.Sprintf("%v: %s: %v", ErrStore, e.Op, e.Err) }

// Is matches ErrStore.
func (e *StoreError) Is(target error) bool { return target == ErrStore }

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// Config configures the cache middleware. The zero value caches every
// request per team, whatever its temperature, forever (until evicted),
// failing open.
type Config struct {
	// TTL is how long an answer stays. Zero: until evicted.
	TTL time.Duration
	// Global shares answers between teams. False: an answer is served only
	// to the team (middleware.TeamFrom) whose call produced it.
	Global bool
	// DeterministicOnly caches only requests with temperature 0 or a seed
	// (an omitted temperature is the provider's default, not 0); the
	// others are a bypass. False: identical requests share an answer
	// whatever their temperature.
	DeterministicOnly bool
	// FailClosed fails a call whose lookup hits a store error. False: a
	// store error is a miss. Either way it is reported as a
	// middleware.StoreFailed event. A failed write never fails a call (the
	// answer was paid for).
	FailClosed bool
	// NoStreams makes streaming requests a bypass
	// (ReasonStreamNotCacheable): they neither read nor write the cache.
	// False: a streaming request is cached as any other, and a hit is
	// replayed as a stream.
	NoStreams bool
	// ReplayChunk is the largest size in bytes of the content, reasoning
	// and argument pieces a hit replays to a streaming caller. Zero: 16
	// (a few tokens, as providers stream).
	ReplayChunk int
	// Variant names what decides the answer to a request below the cache
	// in the chain (package llmwrap: a digest of the policy's models,
	// routing, context and fallback sections): it is part of the scope, so
	// that a chain that would answer the same request otherwise (another
	// route, after a reload or in another team under a global scope) never
	// gets this chain's answers. Empty: none.
	Variant string
}

// ErrConfig: New was given a Config it cannot use (a negative TTL or
// ReplayChunk).
var ErrConfig = errors.New("tokenwise/cache: invalid config")

// Option configures code-side dependencies of the cache: its store and
// its pricer.
type Option func(*options)

type options struct {
	store  Store
	pricer middleware.Pricer
}

// WithStore sets the store of the cached answers (a Redis store shared by
// replicas, adapters/redis.NewCacheStore, or a [Memory] of your bounds).
// The caller owns it (and closes it). Default: NewMemory(MemoryOptions{}),
// DefaultMaxEntries entries with no sweeper.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithPricer sets the pricer of the tokens a hit saved
// (CallFacts.SavedPico). Default: none, no USD figure.
func WithPricer(p middleware.Pricer) Option { return func(o *options) { o.pricer = p } }

// Cache is the response cache layer. It is safe for concurrent use.
type Cache struct {
	c *cacher
}

// New returns the response cache of cfg. It fails (with an error matching
// ErrConfig) on a negative TTL or ReplayChunk.
func New(cfg Config, opts ...Option) (*Cache, error) {
	if cfg.TTL < 0 || cfg.ReplayChunk < 0 {
		return nil, fmt.Errorf("%w: negative TTL (%v) or replay chunk (%d)", ErrConfig, cfg.TTL, cfg.ReplayChunk)
	}
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if o.store == nil {
		o.store = NewMemory(MemoryOptions{})
	}
	if cfg.ReplayChunk == 0 {
		cfg.ReplayChunk = 16
	}
	c := &cacher{store: o.store, cfg: cfg, pricer: o.pricer, globalScope: ScopeGlobal, teamScope: ScopeTeamPrefix}
	if cfg.Variant != "" {
		// Length-prefixed: no variant and scope run into another's.
		v := "variant:" + strconv.Itoa(len(cfg.Variant)) + ":" + cfg.Variant + ";"
		c.globalScope, c.teamScope = v+ScopeGlobal, v+ScopeTeamPrefix
	}
	// A call whose endpoint serves one model (middleware.FixedModel) is
	// not moved by the layers below: its answer is not the one the same
	// request gets where they may move it.
	c.fixedGlobal, c.fixedTeam = "fixed-model;"+c.globalScope, "fixed-model;"+c.teamScope
	if _, c.memory = o.store.(*Memory); c.memory {
		// Entries keep their messages' encodings, which the memo finds
		// again by the identity of their strings (another store keeps a
		// copy of the flat encoding: the memo would find nothing).
		c.memo = newMsgMemo(memoSlots, memoMaxBytes, memoMinBytes)
		c.shared = newKeepTables()
	}
	return &Cache{c: c}, nil
}

// The scopes the cache layer keys on (see [AppendCanonical]): ScopeGlobal,
// or ScopeTeamPrefix followed by the team (middleware.TeamFrom), each
// after the [Config].Variant when there is one.
const (
	ScopeGlobal     = "global"
	ScopeTeamPrefix = "team:"
)

// The reasons the cache gives for a miss, a bypass or a refresh, in
// CallFacts.CacheReason and middleware.CacheLookup.Reason (a plain miss and
// a hit have none). A bypass or refresh asked through the context gives
// its middleware.CacheControl Source ("cache.WithBypass", "cache-control
// no-store", ...).
const (
	ReasonNotDeterministic   = "request not deterministic (deterministic_only)"
	ReasonStreamNotCacheable = "stream not cacheable under this policy"
	ReasonCollision          = "another request under the same hash"
	ReasonStoreFailed        = "store failed"
	ReasonUnstreamable       = "streamed legacy function calls and audio are not kept"
	ReasonLiveSearch         = "web search: the provider's live results are not kept"
	reasonNotStored          = "answer not stored: "
)

// WithBypass returns a context whose calls neither read nor write the cache
// (middleware.CacheControl NoStore).
func WithBypass(ctx context.Context) context.Context {
	c := middleware.CacheControlFrom(ctx)
	c.NoStore, c.Source = true, "cache.WithBypass"
	return middleware.WithCacheControl(ctx, c)
}

// WithRefresh returns a context whose calls skip the lookup, call the
// provider and overwrite the cached answer (middleware.CacheControl
// NoCache).
func WithRefresh(ctx context.Context) context.Context {
	c := middleware.CacheControlFrom(ctx)
	c.NoCache, c.Source = true, "cache.WithRefresh"
	return middleware.WithCacheControl(ctx, c)
}

// WithTTL returns a context whose calls store their answer for d instead of
// the configured TTL.
func WithTTL(ctx context.Context, d time.Duration) context.Context {
	c := middleware.CacheControlFrom(ctx)
	c.TTL = d
	return middleware.WithCacheControl(ctx, c)
}

// controlSource is the reason a bypass or refresh asked through the
// context gives: who asked.
func controlSource(c middleware.CacheControl) string {
	if c.Source == "" {
		return "middleware.CacheControl"
	}
	return c.Source
}

// Deterministic reports whether req asks for a reproducible answer:
// temperature 0 or a seed.
func Deterministic(req *middleware.Request) bool {
	return req.Seed != nil || req.Temperature != nil && *req.Temperature == 0
}

// Complete reports whether resp is an answer worth keeping: it finished
// normally (stop or tool calls), not truncated (length) or filtered; and
// so did every other choice, when its Native knows them
// (middleware.NativeFinisher).
func Complete(resp *middleware.Response) bool {
	if !middleware.FinishedNormally(resp.FinishReason) {
		return false
	}
	f, ok := resp.Native.(middleware.NativeFinisher)
	return !ok || f.AllFinished()
}

// Middleware returns the response cache middleware. Per call it:
//   - bypasses the cache for requests that are not eligible
//     (non-deterministic under DeterministicOnly, streaming under
//     NoStreams) or whose context says
//     WithBypass or carries a middleware.CacheControl NoStore
//     (CacheBypass, with the reason);
//   - looks the request up under its canonical key and scope; a hit is
//     served as a deep copy with FromCache set and zero Usage (nothing was
//     spent), the saved tokens and USD go to the call's CallFacts (Saved,
//     SavedPico) and a middleware.CacheLookup event; a streaming caller
//     gets it replayed chunked like a provider's stream (content in
//     pieces, tool calls by index, finish reason, usage), unless it
//     renders the stored native answer itself (middleware.CacheControl
//     ReplayFormat), as the OpenAI transport does;
//   - on a miss, coalesces identical concurrent misses into one call of
//     next: followers wait for the leader and are served its answer as a
//     hit; if the leader fails for a reason of its own (its caller
//     cancelled, its run's budget refused) the followers try again;
//   - stores complete answers only (see [Complete]), never errors.
//
// The middleware is safe for concurrent use.
func (cc *Cache) Middleware() middleware.Middleware {
	c := cc.c
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			return c.handle(ctx, req, next)
		})
	}
}

type cacher struct {
	store  Store
	cfg    Config
	pricer middleware.Pricer

	// The scope of a global cache, and the prefix of a team's: ScopeGlobal
	// and ScopeTeamPrefix, after the Variant when there is one.
	globalScope, teamScope string
	fixedGlobal, fixedTeam string // the scopes of a call of a fixed model

	memory bool // the store is a *Memory: entries are kept as made

	// memo finds the encodings of the messages of the entries by the
	// identity of their strings (idmemo.go); nil unless memory.
	memo *msgMemo
	// shared shares between entries their equal tails (tools, settings)
	// and the chains of their messages (chain.go); nil unless memory.
	shared *keepTables

	flights [flightShards]flightShard // calls in flight, by key
}

// flight is one provider call that identical concurrent misses share.
type flight struct {
	// st is the leader's key state (read-only while the flight is
	// registered, see join; nil once it is not): what the flight's
	// request is.
	st   *keyState
	done chan struct{}        // made by the first follower; nil while there is none
	resp *middleware.Response // set before done closes; nil when not shareable
	bill []Billed             // resp's bill (Entry.Bill), set with it
	err  error                // the provider's refusal, shared with the followers
}

// unstreamable reports whether a request's Extra (canonical JSON) asks
// for what a stream's core chunks do not carry: the legacy function calls
// (functions, function_call) or audio output (audio, or "audio" among the
// modalities).
func unstreamable(extra []byte) bool {
	// Every streaming request with a setting the core does not model
	// comes here: most name none of these, which a scan tells without
	// decoding (each name, and "audio" among the modalities, is in the
	// canonical JSON as written here).
	if !bytes.Contains(extra, []byte(`"function`)) && !bytes.Contains(extra, []byte(`"audio"`)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(extra, &m) != nil {
		return false
	}
	_, f := m["functions"]
	_, fc := m["function_call"]
	_, a := m["audio"]
	var mods []string
	_ = json.Unmarshal(m["modalities"], &mods)
	return f || fc || a || slices.Contains(mods, "audio")
}

// liveSearch reports whether req has the provider search the web: it
// asks for web_search_options, OpenRouter's web plugin (plugins: [{"id":
// "web"}], of which a model's ":online" suffix is a shortcut) or a web
// search tool (a tool type that names web_search: OpenRouter's
// "openrouter:web_search" server tool, OpenAI's "web_search" and
// "web_search_preview" types, which OpenRouter runs as it; Groq's
// "browser_search") — canonical
// JSON in Extra —, or names a model that searches on every call: one of
// OpenAI's search models (gpt-4o-search-preview, gpt-5-search-api...),
// Perplexity's Sonar models (sonar, sonar-pro,
// perplexity/sonar-reasoning...), or OpenRouter's ":online" variant of
// any model.
func liveSearch(req *middleware.Request) bool {
	if LiveSearchModel(req.Model) {
		return true
	}
	if !bytes.Contains(req.Extra, []byte(`_search`)) && !bytes.Contains(req.Extra, []byte(`"plugins"`)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(req.Extra, &m) != nil {
		return true // (unread: not kept, to be safe)
	}
	if v, ok := m["web_search_options"]; ok && string(v) != "null" {
		return true
	}
	if WebPlugin(m["plugins"]) {
		return true
	}
	if v, ok := m["tools"]; ok && bytes.Contains(v, []byte(`_search`)) {
		var tools []map[string]json.RawMessage
		if json.Unmarshal(v, &tools) != nil {
			return true
		}
		for _, t := range tools {
			var typ string
			if _, ok := t["type"]; ok && (json.Unmarshal(t["type"], &typ) != nil || strings.Contains(typ, "web_search") || typ == "browser_search") {
				return true
			}
		}
	}
	return false
}

// LiveSearchModel reports whether model searches the web on every call:
// one of OpenAI's search models (gpt-4o-search-preview,
// gpt-5-search-api...), Perplexity's Sonar models (sonar, sonar-pro,
// perplexity/sonar-reasoning...), or OpenRouter's ":online" variant of
// any model, and Groq's Compound systems (groq/compound, compound-beta,
// compound-beta-mini...), which search the web and run code as they see
// fit. Their answers are not kept (ReasonLiveSearch).
func LiveSearchModel(model string) bool {
	model = strings.ToLower(model)
	if strings.Contains(model, "-search-") || strings.HasSuffix(model, ":online") {
		return true
	}
	base := model[strings.LastIndexByte(model, '/')+1:]
	return base == "sonar" || strings.HasPrefix(base, "sonar-") ||
		base == "compound" || strings.HasPrefix(base, "compound-")
}

// WebPlugin reports whether plugins, the raw value of a request's
// "plugins" member (OpenRouter's), asks for the web plugin ({"id":
// "web"}, which ":online" is a shortcut of); a value it cannot read
// counts as one. Absent or null: false.
func WebPlugin(plugins json.RawMessage) bool {
	if len(plugins) == 0 || string(plugins) == "null" {
		return false
	}
	var ps []map[string]json.RawMessage
	if json.Unmarshal(plugins, &ps) != nil {
		return true // (unread: not kept, to be safe)
	}
	for _, p := range ps {
		var id string
		if v, ok := p["id"]; ok && (json.Unmarshal(v, &id) != nil || id == "web") {
			return true
		}
	}
	return false
}

// sharedError reports whether a leader's error is the provider's answer to
// the request itself, which identical followers would get too: a
// classified provider error other than a broken connection or stream.
// Errors of the leader's own (its cancellation, its run's budget or
// deadline) are not shared: the followers try again.
func sharedError(err error) bool {
	var pe *middleware.ProviderError
	return errors.As(err, &pe) && !middleware.IsCancellation(err) &&
		!errors.Is(err, middleware.ErrNetwork) && !errors.Is(err, middleware.ErrStreamCut) &&
		!errors.Is(err, context.DeadlineExceeded)
}

func (c *cacher) handle(ctx context.Context, req *middleware.Request, next middleware.Handler) (*middleware.Response, error) {
	ctl := middleware.CacheControlFrom(ctx)
	switch {
	case ctl.NoStore:
		c.mark(ctx, req, middleware.CacheBypass, controlSource(ctl))
		return next.Handle(ctx, req)
	case c.cfg.NoStreams && req.Stream != nil:
		c.mark(ctx, req, middleware.CacheBypass, ReasonStreamNotCacheable)
		return next.Handle(ctx, req)
	case c.cfg.DeterministicOnly && !Deterministic(req):
		c.mark(ctx, req, middleware.CacheBypass, ReasonNotDeterministic)
		return next.Handle(ctx, req)
	case liveSearch(req):
		// The provider searches the web for the answer each time (as a
		// hosted tool of the Responses API, which the gateway does not
		// cache either): yesterday's results are not today's answer.
		c.mark(ctx, req, middleware.CacheBypass, ReasonLiveSearch)
		return next.Handle(ctx, req)
	case req.Stream != nil && req.Extra != nil && unstreamable(req.Extra):
		// An answer's legacy function_call or audio is not in the core
		// answer: a stored answer restreamed, or a streamed one kept,
		// would lose it. (A plain call's hit is the provider's body,
		// byte for byte.)
		c.mark(ctx, req, middleware.CacheBypass, ReasonUnstreamable)
		return next.Handle(ctx, req)
	}
	// The key is computed from the pieces of the canonical request (see
	// keyOf): the messages the memo has seen are neither encoded nor hashed
	// again. The flat encoding is made only when an entry under the key is
	// not kept in the same pieces, and a miss whose answer is stored keeps
	// the pieces (a Memory store) rather than a copy; a miss whose answer
	// is not stored keeps nothing (followers compare their pieces with
	// the leader's state).
	st := statePool.Get().(*keyState)
	defer putState(st)
	global, team := c.globalScope, c.teamScope
	if middleware.FixedModel(ctx) {
		global, team = c.fixedGlobal, c.fixedTeam
	}
	if c.cfg.Global {
		keyOf(st, c.memo, global, "", req)
	} else {
		keyOf(st, c.memo, team, middleware.TeamFrom(ctx), req)
	}
	key := st.key

	reason := ""
	for {
		if !ctl.NoCache {
			e, err := c.store.Get(ctx, key)
			if err != nil {
				c.storeFailed(ctx, "get", err)
				if c.cfg.FailClosed {
					return nil, &StoreError{Op: "get", Err: err}
				}
				reason = ReasonStoreFailed
			}
			if e != nil && e.Outlived(c.cfg.TTL, time.Now()) {
				// Kept under a longer TTL than the one in force (a reload
				// shortened it), and older than this one: a miss.
				e = nil
			}
			if e != nil {
				if e.canon().matches(st) {
					// A Memory store's Get decodes a new entry: its answer
					// is the caller's alone.
					return c.serve(ctx, req, &e.Response, e.Bill, c.memory)
				}
				reason = ReasonCollision
			}
		}
		f, leader := c.join(key, st)
		if leader {
			return c.lead(ctx, req, next, key, f, st, ctl, reason)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.resp != nil {
			return c.serve(ctx, req, f.resp, f.bill, false)
		}
		if f.err != nil {
			return nil, f.err
		}
		// The leader failed for a reason of its own: try again (the loop
		// ends: every round either serves, leads or waits for a leader that
		// made a call).
	}
}

// join returns the flight of key, creating it (leader true) when there is
// none; a flight made refers to st, the caller's key state, until the
// caller's lead removes it (the caller must neither reuse nor modify st's
// pieces meanwhile). A flight of another request with the same key (a
// hash collision, or the same request in pieces of another kind: see
// samePieces) is not shared: the caller leads an unregistered flight of
// its own. A flight's done channel is made only when a follower joins:
// most flights have none.
func (c *cacher) join(key uint64, st *keyState) (*flight, bool) {
	s := c.flightShard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.m[key]; ok {
		if f.st.samePieces(st) {
			if f.done == nil {
				f.done = make(chan struct{})
			}
			return f, false
		}
		return &flight{}, true
	}
	f := &flight{st: st}
	if s.m == nil {
		s.m = map[uint64]*flight{}
	}
	s.m[key] = f
	return f, true
}

// flightShards is the number of shards of the calls in flight: concurrent
// misses of different keys rarely take the same lock.
const (
	flightShardBits = 6
	flightShards    = 1 << flightShardBits
)

// flightShard is a shard of the calls in flight, padded to its own cache
// lines.
type flightShard struct {
	mu sync.Mutex
	m  map[uint64]*flight
	_  [64 - 16]byte
}

func (c *cacher) flightShard(key uint64) *flightShard {
	return &c.flights[key>>(64-flightShardBits)] // the key is a hash: its top bits
}

// lead calls next for the flight f of the request of st and key, and
// stores the answer when it is complete: only then does it keep the
// canonical request (st.keep).
func (c *cacher) lead(ctx context.Context, req *middleware.Request, next middleware.Handler, key uint64, f *flight, st *keyState, ctl middleware.CacheControl, reason string) (resp *middleware.Response, err error) {
	var shared *middleware.Response
	var packed packedEntry          // the answer as a Memory store keeps it, for the followers (resp not nil)
	var unkept *middleware.Response // an answer not kept, for the followers (shareable)
	var sharedErr error
	var bill []Billed // resp's, when it is one to keep or share
	defer func() {
		s := c.flightShard(key)
		s.mu.Lock()
		if s.m[key] == f {
			delete(s.m, key)
		}
		f.st = nil     // st is the caller's again
		done := f.done // no follower joins once the flight is out of the map
		s.mu.Unlock()
		if done != nil {
			// Followers read these once done is closed.
			if shared == nil && packed.resp != nil {
				shared = &packed.entry().Response
			} else if shared == nil && unkept != nil {
				shared = shareable(unkept)
			}
			f.resp, f.err = shared, sharedErr
			if shared != nil {
				f.bill = bill
			}
			close(done)
		}
	}()
	status := middleware.CacheMiss
	if ctl.NoCache {
		status, reason = middleware.CacheRefresh, controlSource(ctl)
	}
	c.mark(ctx, req, status, reason)
	nctx := ctx
	if req.Stream != nil { // the stream's chunks are kept for the entry
		nctx = middleware.WithKeepNative(ctx)
	}
	resp, err = next.Handle(nctx, req)
	if err == nil && resp != nil {
		bill = billOf(ctx, resp)
	}
	if err != nil || resp == nil || !Complete(resp) {
		switch {
		case err == nil && resp != nil:
			// Not worth keeping (truncated, filtered), but it is the answer
			// to this very request: the followers get it too.
			unkept = resp
			middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
				f.CacheReason = reasonNotStored + "finish_reason " + strconv.Quote(resp.FinishReason)
			})
		case sharedError(err):
			sharedErr = err
		}
		return resp, err
	}
	offRoute := false
	middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
		if f.OffRoute != "" {
			// Another model's answer than the route's (a fallback's, a
			// downgrade's): the answer to this call, not to the request.
			offRoute, f.CacheReason = true, reasonNotStored+f.OffRoute
		} else if f.Unkeepable != "" {
			offRoute, f.CacheReason = true, reasonNotStored+f.Unkeepable
		}
	})
	if offRoute {
		unkept = resp
		return resp, nil
	}
	ttl := c.cfg.TTL
	if ctl.TTL > 0 {
		ttl = ctl.TTL
	}
	if x, ok := resp.Native.(middleware.NativeExpirer); ok {
		if at, ok := x.ExpiresAt(); ok {
			// Kept no longer than what it names (an audio id) is kept by
			// the provider.
			left := time.Until(time.Unix(at, 0))
			if left <= 0 {
				unkept = resp
				middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
					f.CacheReason = reasonNotStored + "its audio has expired"
				})
				return resp, nil
			}
			if ttl == 0 || left < ttl {
				ttl = left
			}
		}
	}
	sctx := ctx
	if m, ok := c.store.(*Memory); ok {
		// Packed straight from resp: no copy of it as an Entry (which the
		// store would only pack), and none for the followers unless there
		// are some. A Memory store never looks at the context. The
		// canonical request is kept as it is: it may refer to the request
		// body or to shared message encodings rather than copy; a rope's
		// bytes and the answer's are one allocation.
		var sn middleware.StoredNative
		native := packNative(resp, &sn)
		var kept canon
		var room []byte
		if st.kind == kindCore {
			kept.rope, room = newRopeRoom(st, c.shared.tailTable(), c.shared.encChains(), packedBound(resp, native, bill))
		} else {
			kept = st.keep(true, c.shared)
		}
		// The memo then gives the rope's shared encodings for these
		// messages (equal bytes): see msgMemo.adopt.
		c.memo.adopt(st, kept.rope)
		packed = packedInto(room, kept, resp, native, bill)
		m.setPacked(key, packed, ttl)
		return resp, nil
	}
	kept := st.keep(c.memory, c.shared)
	// The entry holds a deep copy of resp (stripped, in place) and, when
	// the adapter can give it as bytes, its Native: what the core does not
	// model (every choice, logprobs, refusal, audio, ...).
	ea := &entryAlloc{Entry: Entry{Request: kept.flat, ref: kept.ref, rope: kept.rope, shared: kept.shared}}
	e := &ea.Entry
	e.Stored, e.TTL = time.Now(), c.cfg.TTL
	compact(&e.Response, resp, ea.calls[:0])
	e.Response.Native = storedNative(resp.Native, &ea.native)
	e.Response.FromCache = false
	e.Bill = bill
	shared = &e.Response
	// A Memory store never looks at the context (and asking for its Done
	// would start the timer of a deadline nobody watched, see
	// middleware.Deadline).
	if !c.memory && ctx.Done() != nil {
		sctx = context.WithoutCancel(ctx)
	}
	if serr := c.store.Set(sctx, key, e, ttl); serr != nil {
		c.storeFailed(ctx, "set", serr)
	}
	return resp, nil
}

// entryAlloc is an entry, the StoredNative of its answer and room for
// its tool call (an agent's answer usually makes one), in one allocation:
// two objects fewer for the garbage collector to visit per entry.
type entryAlloc struct {
	Entry
	native middleware.StoredNative
	calls  [1]middleware.ToolCall
}

// storedNative returns the bytes of a response's Native, copied into dst,
// when it is a middleware.NativeMarshaler with something to keep (or was
// itself served from a store: then itself); nil otherwise.
func storedNative(n any, dst *middleware.StoredNative) any {
	switch n := n.(type) {
	case *middleware.StoredNative:
		return n
	case middleware.NativeMarshaler:
		if format, data, ok := n.MarshalNative(); ok {
			*dst = middleware.StoredNative{Format: format, Data: bytes.Clone(data)}
			return dst
		}
	}
	return nil
}

// shareable returns a deep copy of an answer that is not kept, for the
// followers of its flight: not marked as cached, and its Native kept as
// bytes when the adapter can give them (see storedNative), so that a
// follower gets the whole answer the leader got (every choice, logprobs,
// system_fingerprint: through the OpenAI transport the provider's body),
// not its core view alone. Made only when there are followers.
func shareable(resp *middleware.Response) *middleware.Response {
	r := resp.Clone()
	r.Native = storedNative(resp.Native, new(middleware.StoredNative))
	r.FromCache = false
	return r
}

// billOf returns the bill of resp (Entry.Bill), the answer of the call of
// ctx: its provider attempts that answered, each on the model it was
// billed at, when they were made on more than one model and sum to resp's
// usage; nil otherwise (one model was billed: resp's usage at its model
// is what it cost).
func billOf(ctx context.Context, resp *middleware.Response) []Billed {
	var bill []Billed
	ci := middleware.CallInfoFrom(ctx)
	if ci == nil {
		return nil
	}
	ci.Update(func(f *middleware.CallFacts) {
		// First whether more than one model was billed: most calls have
		// one, and no bill to allocate.
		multi, n, model := false, 0, ""
		var sum middleware.Usage
		for i := range f.Attempts {
			a := &f.Attempts[i]
			if a.Err != nil || a.Usage.IsZero() {
				continue
			}
			if n == 0 {
				model = a.Model
			} else if a.Model != model {
				multi = true
			}
			n++
			sum = sum.Add(a.Usage)
		}
		if !multi || sum.Counts() != resp.Usage.Counts() {
			return
		}
		bill = make([]Billed, 0, n)
		for i := range f.Attempts {
			if a := &f.Attempts[i]; a.Err == nil && !a.Usage.IsZero() {
				bill = append(bill, Billed{Model: a.Model, Usage: a.Usage})
			}
		}
	})
	return bill
}

// savedBy prices what a hit of an answer billed bill saved, each part at
// the model it was billed at and the service tier tier; false when a part
// has no price, or bill is empty.
func savedBy(p middleware.Pricer, bill []Billed, tier string) (int64, bool) {
	if p == nil || len(bill) == 0 {
		return 0, false
	}
	var sum int64
	for _, b := range bill {
		u := b.Usage
		u.ServiceTier = tier
		c, ok := p.Cost(b.Model, u)
		if !ok {
			return 0, false
		}
		sum = middleware.SatAdd(sum, c)
	}
	return sum, true
}

// serve answers req with a deep copy of stored, or with stored itself
// when the caller owns it (owned); bill is stored's bill (Entry.Bill).
func (c *cacher) serve(ctx context.Context, req *middleware.Request, stored *middleware.Response, bill []Billed, owned bool) (*middleware.Response, error) {
	resp := stored
	if !owned {
		resp = stored.Clone()
	}
	resp.FromCache = true
	saved := resp.Usage
	// Saved at the rates of the tier this request asked for (the key does
	// not include it): what the call would have cost now.
	saved.ServiceTier = middleware.RequestServiceTier(req)
	resp.Usage = middleware.Usage{} // nothing was spent
	var micros int64
	if !saved.IsZero() {
		// At the price the answer was billed at (middleware.BilledModel),
		// or, for an answer billed on several models, at theirs.
		var ok bool
		if micros, ok = savedBy(c.pricer, bill, saved.ServiceTier); !ok {
			micros, _ = middleware.CostOfAnswer(c.pricer, req.Model, resp.Model, saved)
		}
	}
	middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
		f.Cache = middleware.CacheHit
		f.Saved = f.Saved.Add(saved)
		f.SavedPico += micros
	})
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.CacheLookup{Status: middleware.CacheHit, Model: req.Model, Saved: saved, SavedPico: micros})
	}
	if req.Stream != nil && !replaysNative(ctx, resp) {
		if err := replay(ctx, resp, saved, c.cfg.ReplayChunk, req.Stream); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// replaysNative reports whether the streaming caller renders the hit resp
// itself from its stored native form (middleware.CacheControl
// ReplayFormat): then the cache does not stream it.
func replaysNative(ctx context.Context, resp *middleware.Response) bool {
	sn, ok := resp.Native.(*middleware.StoredNative)
	f := middleware.CacheControlFrom(ctx).ReplayFormat
	return ok && f != "" && sn.Format == f
}

func (c *cacher) mark(ctx context.Context, req *middleware.Request, s middleware.CacheStatus, reason string) {
	middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) { f.Cache, f.CacheReason = s, reason })
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.CacheLookup{Status: s, Reason: reason, Model: req.Model})
	}
}

func (c *cacher) storeFailed(ctx context.Context, op string, err error) {
	middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
		f.Notes = append(f.Notes, "cache "+op+" failed: "+err.Error())
	})
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.StoreFailed{Store: "cache", Op: op, Err: err})
	}
}
