package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"net/http"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// The Responses API is cached by the team's policy, as its chat calls
// are (cache: enabled, ttl, scope, deterministic_only, fail_closed; the
// bounds of a memory store; Redis when the gateway has one, shared by its
// replicas): a call whose request body — as sent, after routing — and
// upstream (its endpoint and account, not its name alone) are those of an
// answer the cache keeps is answered with that
// answer's bytes (X-Tokenwise-Cache: hit), without a reservation, a rate
// limit's admission or an upstream call; the run guard counts it. A hit
// is a match of the SHA-256 of the body's members (and scope, upstream
// and the policy's sections that decide the answer: models, routing with
// its learned weights, context, fallback — a reload that changes them, a
// cascade dropped, serves no answer kept before it), never of a 64-bit
// key alone; an answer over maxCachedAnswer is not kept.
//
// Only what is the same answer again is kept or served: a completed
// answer (status "completed") of the model the call was routed to (not a
// fallback model's, after that model failed) to a request that is not run in the
// background, names no conversation (whose items change) and no
// stored prompt (whose latest version changes), and has no hosted tool
// (web or file search, code interpreter, computer use, MCP, image
// generation, shells: the provider runs them, with results or effects of
// their own each time), nor searches the web otherwise (a model that
// searches on every call, cache.LiveSearchModel; OpenRouter's web
// plugin). A request with Cache-Control: no-store neither
// reads nor writes the cache.
//
// A streamed request and the same request not streamed are one request
// to the cache (the digest leaves out stream and stream_options, which
// change how the answer is sent, not what it is): a stream keeps its
// final response.completed event's response, a JSON answer is kept as
// is, and either answers both — a JSON request with the answer's JSON, a
// streaming one with the answer replayed as the Responses API streams it
// (replayStream). Under cache.streams: false a streaming request neither
// reads nor writes the cache, as a chat call's.

// maxCachedAnswer bounds the answers the cache keeps: a larger one (an
// answer of many images, say) is passed on and not kept.
const maxCachedAnswer = 4 << 20

// responsesFormat names the stored form of a cached Responses answer:
// the answer's JSON as the upstream sent it.
const responsesFormat = "openai.responses/v1"

// responsesCache is a team's cache of Responses answers under its policy.
type responsesCache struct {
	store cache.Store
	cfg   policies.Cache
	scope string // the team; "" when the policy's cache is global
	// variant is the digest of the policy's sections that decide the
	// answer (llmwrap.AnswerVariant): a reload that routes otherwise, or
	// another team's routing under a global cache, shares no answer.
	variant string
}

// newResponsesCache returns team's Responses cache under pol (nil when
// the policy caches nothing, or names a Redis store the gateway has not).
// Called with s.passMu held.
func (s *Server) newResponsesCache(team string, pol *policies.Policy) *responsesCache {
	c := pol.Cache
	if !c.Enabled {
		return nil
	}
	rc := &responsesCache{cfg: c, scope: team, variant: llmwrap.AnswerVariant(pol)}
	if c.Scope == policies.CacheScopeGlobal {
		rc.scope = ""
	}
	switch {
	case s.respRedis != nil:
		rc.store = s.respRedis
	case c.Store == policies.StoreRedis:
		return nil
	default:
		// One memory store per scope, made with the bounds of the first
		// policy that uses it: a reload keeps what it holds.
		key := "team:" + rc.scope
		if rc.scope == "" {
			key = "global"
		}
		if s.respMem == nil {
			s.respMem = map[string]*cache.Memory{}
		}
		m := s.respMem[key]
		if m == nil {
			m = cache.NewMemory(cache.MemoryOptions{MaxEntries: c.MaxEntries, MaxBytes: int64(c.MaxBytes)})
			s.respMem[key] = m
		}
		// A policy that shortened the TTL holds the answers kept before
		// it to it (a Redis store's entries carry their own: see lookupResponses).
		m.HoldTo(c.TTL.Duration())
		rc.store = m
	}
	return rc
}

// cachedCall is a Responses call's place in its team's cache.
type cachedCall struct {
	call  *responsesCall // the call's fallback chain (nil: none)
	c     *responsesCache
	key   uint64
	canon []byte // the digest of the scope, the variant, the upstream and the body: what a hit equals
	s     *Server
	team  string
}

// cacheableResponses reports why a Responses request's answer cannot be
// cached ("" when it can). checkMembers has refused the case variants and
// repeats of the members it reads, so the provider reads the same values.
func cacheableResponses(r *http.Request, req *responsesRequest, cfg policies.Cache) string {
	if twopenai.NoStore(r.Header) {
		return "cache-control no-store"
	}
	stream, ok1 := rawBool(req.Stream)
	background, ok2 := rawBool(req.Background)
	switch {
	case !ok1 || !ok2:
		return "request not read"
	case stream && !cfg.CachesStreams():
		return cache.ReasonStreamNotCacheable
	case background:
		return "background response"
	case present(req.Conversation):
		return "conversation"
	case present(req.Prompt):
		return "stored prompt"
	case cfg.DeterministicOnly && (!present(req.Temperature) || !zero(req.Temperature)):
		return "request not deterministic"
	}
	if _, ok := req.functionTools(); !ok {
		return "hosted tool"
	}
	if cache.LiveSearchModel(req.Model) {
		// A model that searches the web on every call (as the chat
		// cache knows them): its answer is of the day's results.
		return "web search"
	}
	return ""
}

// webPlugin reports whether body, a Responses request, asks for
// OpenRouter's web plugin (plugins: [{"id": "web"}]): a web search on
// every call, as a hosted tool's. (OpenRouter reads the member as
// "plugins" exactly; encoding/json, which matches it in any case, only
// makes a bypass more.)
func webPlugin(body []byte) bool {
	if !bytes.Contains(body, []byte(`"plugins"`)) {
		return false
	}
	var m struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if json.Unmarshal(body, &m) != nil {
		return true
	}
	return cache.WebPlugin(m.Plugins)
}

// rawBool reads a raw boolean member: false when absent or null; ok false
// when it is not a boolean.
func rawBool(v json.RawMessage) (b, ok bool) {
	if !present(v) {
		return false, true
	}
	return b, json.Unmarshal(v, &b) == nil
}

// zero reports whether a raw member is the number 0.
func zero(v json.RawMessage) bool {
	var f float64
	return json.Unmarshal(v, &f) == nil && f == 0
}

// present reports whether a raw member holds a value.
func present(v json.RawMessage) bool { return len(v) > 0 && string(v) != "null" }

// lookupResponses looks a Responses call up in its team's cache: the
// cached answer's bytes on a hit; on a miss, the call, to keep its
// answer (nil when the call is not cached, and no answer). A store that
// fails is a miss, or refuses the call when the policy's cache is
// fail_closed.
func (s *Server) lookupResponses(ctx context.Context, r *http.Request, team string, up *upstream, body []byte, req *responsesRequest) (*cachedCall, *cachedAnswer, *apiError) {
	rc := s.passLimitsOf(team).cache
	if rc == nil {
		return nil, nil, nil
	}
	why := cacheableResponses(r, req, rc.cfg)
	if why == "" && webPlugin(body) {
		why = "web search"
	}
	if why != "" {
		s.logger.Debug("tokenwise/gateway: responses cache bypassed", "team", team, "reason", why)
		s.observe(team, middleware.CacheLookup{Status: middleware.CacheBypass, Reason: why, Model: req.Model})
		return nil, nil, nil
	}
	// The entry keeps the SHA-256 of the scope, the policy's variant, the
	// upstream (its endpoint and account: writeUpstream) and the body,
	// not the body: an agent's Responses calls resend their whole input
	// each turn (hundreds of KB), which 10,000 entries would keep many
	// times over. A hit is a match of the 256-bit digest.
	d := sha256.New()
	d.Write([]byte(rc.scope))
	d.Write([]byte{0})
	d.Write([]byte(rc.variant))
	d.Write([]byte{0})
	writeUpstream(d, up)
	if !digestMembers(d, body) {
		return nil, nil, nil
	}
	canon := d.Sum([]byte("tokenwise/responses/v4 sha256:"))
	cc := &cachedCall{c: rc, key: xxhash.Sum64(canon), canon: canon, s: s, team: team}
	e, err := rc.store.Get(ctx, cc.key)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: responses cache store failed", "team", team, "op", "get", "error", err)
		s.observe(team, middleware.StoreFailed{Store: "cache", Op: "get", Err: err})
		if rc.cfg.FailClosed {
			return nil, nil, classify(&cache.StoreError{Op: "get", Err: err}, s.secrets...)
		}
		s.observe(team, middleware.CacheLookup{Status: middleware.CacheMiss, Model: req.Model})
		return cc, nil, nil
	}
	if e != nil && e.Outlived(rc.cfg.TTL.Duration(), time.Now()) {
		// Kept under a longer TTL than the policy's (a reload shortened
		// it), and older than this one: a miss.
		e = nil
	}
	if e != nil {
		if sn, ok := e.Response.Native.(*middleware.StoredNative); ok && sn.Format == responsesFormat && len(sn.Data) > 0 &&
			bytes.Equal(e.Canonical(), canon) {
			if stream, _ := rawBool(req.Stream); !stream {
				return nil, &cachedAnswer{entry: e, body: sn.Data, contentType: "application/json"}, nil
			}
			if events, ok := replayStream(sn.Data); ok {
				return nil, &cachedAnswer{entry: e, body: events, contentType: "text/event-stream; charset=utf-8"}, nil
			}
			// (An answer that cannot be replayed is a miss.)
		}
	}
	s.observe(team, middleware.CacheLookup{Status: middleware.CacheMiss, Model: req.Model})
	return cc, nil, nil
}

// writeUpstream writes to d what names the server and account a call is
// sent to, not its name alone (the same name may be another server in
// another gateway file sharing a Redis cache, or after a restart): the
// name, the base URL (scheme, host, path — an Azure deployment — and
// query), the organization and project, and the SHA-256 of the key, each
// length-prefixed, as the chat cache keys on the endpoint and account.
func writeUpstream(d hash.Hash, up *upstream) {
	key := sha256.Sum256([]byte(up.key))
	for _, v := range [...][]byte{[]byte(up.Name), []byte(up.base.String()), []byte(up.Organization), []byte(up.Project), key[:]} {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
		d.Write(n[:])
		d.Write(v)
	}
}

// digestMembers writes to d the members of body, a JSON object, but
// stream and stream_options, each as its name and its value's bytes,
// length-prefixed; false when body is not read as one.
func digestMembers(d hash.Hash, body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	var n [8]byte
	put := func(b []byte) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		d.Write(n[:])
		d.Write(b)
	}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return false
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return false
		}
		if name == "stream" || name == "stream_options" {
			continue
		}
		put([]byte(name))
		put(v)
	}
	t, err := dec.Token()
	return err == nil && t == json.Delim('}')
}

// cachedAnswer is a cache hit as it is sent: the kept answer's JSON, or
// its replay as a stream.
type cachedAnswer struct {
	entry       *cache.Entry
	body        []byte
	contentType string
}

// serveCached writes a cached Responses answer.
func serveCached(w http.ResponseWriter, a *cachedAnswer) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	h.Set(twopenai.CacheHeader, "hit")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.body)
}

// recordHit reports a cache hit (Server.report, and a CacheLookup event),
// with what it saved: what the call it replaced cost, at the team's
// prices — the cached answer's usage, or, for an answer the call paid
// other answers for (a cascade's rejected answers, a final answer written
// again: the entry's Bill), every answer's usage, each at the model it was
// billed at.
//
// What it saved is priced at the tier the request asks for (tier, "" for
// the standard rates), as a chat call's hit is: what the call would have
// cost now. The hit is a call of asked, the model the caller asked for
// (CallFacts.RequestedModel, and the CacheLookup's model, as a chat call's
// hit is), answered by the model whose answer it is: the last of its
// bill's, else model, the model routing sent it to.
func (s *Server) recordHit(run *middleware.Run, team, asked, model, tier string, e *cache.Entry, start time.Time) {
	pl := s.passLimitsOf(team)
	price := func(billed string, u middleware.Usage) (int64, bool) {
		spec, ok := pl.pol.Model(billed)
		if !ok || !spec.HasPrice() {
			return 0, false
		}
		return int64(spec.Cost(policies.TokenCounts{Input: u.InputTokens, Output: u.OutputTokens,
			CachedInput: u.CachedInputTokens, CacheWrite: u.CacheWriteTokens, Reasoning: u.ReasoningTokens, ServiceTier: tier})), true
	}
	u := e.Response.Usage
	saved, _ := price(middleware.BilledModel(pl.pricer, model, e.Response.Model), u)
	if len(e.Bill) > 0 {
		var sum middleware.Usage
		var pico int64
		ok := true
		for _, b := range e.Bill {
			p, priced := price(b.Model, b.Usage)
			ok = ok && priced
			sum, pico = sum.Add(b.Usage), middleware.SatAdd(pico, p)
		}
		if ok {
			u, saved = sum, pico
		}
		// (An answer a cascade or a regeneration got from another model
		// than the call was sent to first.)
		model = e.Bill[len(e.Bill)-1].Model
	}
	u.ServiceTier = tier
	s.observe(team, middleware.CacheLookup{Status: middleware.CacheHit, Model: asked, Saved: u, SavedPico: saved})
	lat := time.Since(start)
	s.report(team, run, middleware.CallRecord{CallFacts: middleware.CallFacts{Team: team,
		RequestedModel: asked, Model: model, Cache: middleware.CacheHit, Saved: u, SavedPico: saved,
		Attempts: []middleware.Attempt{{Model: model, Latency: lat}}}, Latency: lat, Start: start})
}

// keep returns the answer's hook of a missed call: next (when not nil),
// then, for a completed JSON answer, the answer kept in the cache. The
// answer is passed on unchanged.
func (cc *cachedCall) keep(next func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		if next != nil {
			if err := next(resp); err != nil {
				return err
			}
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || cc.call.fellBack() {
			// (A fallback model's answer is not the routed model's: the
			// next identical call, its model healthy, would not get it.)
			return nil
		}
		ctx := context.WithoutCancel(resp.Request.Context())
		if isEventStream(resp) {
			// The stream keeps its final event's response, when it is one
			// that completed (the hook of the call read the stream).
			if rs, ok := resp.Body.(*responsesStream); ok {
				rs.completed = func(answer []byte) { cc.store(ctx, answer) }
			}
			return nil
		}
		// (Read whole by the charge before, most often: not read again.)
		body, whole, err := readAnswer(resp, maxResponsesEvent)
		if err != nil || !whole {
			return err
		}
		cc.store(ctx, body)
		return nil
	}
}

// store keeps answer, a response object's JSON, when it is one that
// completed and is not too large to keep.
func (cc *cachedCall) store(ctx context.Context, answer []byte) {
	if len(answer) > maxCachedAnswer {
		return
	}
	var o struct {
		Object string            `json:"object"`
		Status string            `json:"status"`
		Model  string            `json:"model"`
		Error  json.RawMessage   `json:"error"`
		Usage  *responsesUsage   `json:"usage"`
		Output []json.RawMessage `json:"output"`
	}
	// An answer whose output is not there is not kept: a stream's final
	// event may leave out the output its events carried (the SDKs rebuild
	// it from them), and a hit must be the whole answer.
	if json.Unmarshal(answer, &o) != nil || o.Object != "response" || o.Status != "completed" || present(o.Error) || len(o.Output) == 0 {
		return
	}
	u, _ := o.Usage.usage() // (none: a hit saves nothing it can name)
	e := &cache.Entry{Request: cc.canon, Response: middleware.Response{Model: o.Model, Usage: u,
		Native: &middleware.StoredNative{Format: responsesFormat, Data: answer}},
		Stored: time.Now(), TTL: cc.c.cfg.TTL.Duration()}
	if !u.IsZero() {
		// The answers the call paid before this one (a cascade's, a
		// regeneration's), which a hit saved too, and the model whose
		// answer it is, when routing sent the call to another first.
		e.Bill = cc.call.bill(u, o.Model)
	}
	if err := cc.c.store.Set(ctx, cc.key, e, cc.c.cfg.TTL.Duration()); err != nil {
		cc.s.logger.Warn("tokenwise/gateway: responses cache store failed", "team", cc.team, "op", "set", "error", err)
	}
}
