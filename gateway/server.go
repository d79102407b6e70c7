package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// Server is an OpenAI-compatible gateway that runs every chat completion
// through the policy of its caller's team. Build one with [New], serve
// [Server.Handler] yourself or call [Server.ListenAndServe] / [Server.Serve],
// and stop it with [Server.Shutdown].
//
// A Server is safe for concurrent use.
type Server struct {
	cfg     *Config
	logger  *slog.Logger
	secrets []string // upstream keys, masked out of every message
	// budgetOpts are the budget options given with WithLLMOptions (a
	// clock): the spend endpoint's budget reads the ledgers with them.
	budgetOpts []budget.Option

	keys atomic.Pointer[keySet]
	cors atomic.Pointer[corsPolicy] // the file's cors (reloaded with the keys); nil: none

	pol  *policies.Registry
	reg  *llmwrap.Registry
	tr   *twopenai.Transport
	base http.RoundTripper
	// pass carries the requests passed through (any /v1/ path but chat
	// completions): base, or the default transport's net/http Transport,
	// which answers an upload the upstream refuses early with its answer.
	pass      http.RoundTripper
	upstreams []*upstream
	budgets   budget.Store
	rates     ratelimit.Store // the chains' rate limit store, which passed-through calls share
	// The local shares (on_unavailable: local) spent while Redis is down,
	// by chat and passed-through calls alike, kept across reloads.
	budgetLocal *budget.MemoryStore
	rateLocal   *ratelimit.MemoryStore

	passMu sync.Mutex
	passBy map[string]*passLimits // by team: the budget and limiter of passed-through calls
	// The stores of the Responses cache (responses_cache.go): Redis's
	// when the gateway has one, else memory stores by cache scope.
	respRedis cache.Store
	respMem   map[string]*cache.Memory

	est      *tokens.Estimator // counts embeddings inputs
	rdb      goredis.UniversalClient
	ownRedis bool
	metrics  *metrics

	runs *runTable
	// background holds the Responses calls answered in the background
	// until they are seen done (responses_background.go).
	background backgroundHolds
	// owners are the teams that created the responses the gateway passed
	// (responses_owner.go).
	owners responseOwners
	// objects are the teams that created the objects of the owned
	// families the gateway passed: files, batches, vector stores…
	// (objects_owner.go).
	objects responseOwners
	// listResumes: where owned lists that passed their bound stopped.
	listResumes listResumes

	srv     *http.Server
	handler http.Handler
	baseCtx context.Context
	// redisPinged counts the start's checks of Redis (Serve) running.
	redisPinged sync.WaitGroup
	cancelBase  context.CancelFunc
	stopWatch   context.CancelFunc
	// stopFileWatch ends the watch of the gateway file.
	stopFileWatch func()
	watchDone     func() error
	draining      atomic.Bool
	closeOnce     sync.Once
}

type upstream struct {
	Upstream
	base    *url.URL
	chat    string
	chatURL *url.URL // chat, parsed
	// chatReq is http.NewRequest's POST of chat without a body: newChat
	// copies it.
	chatReq *http.Request
	auth    http.Header // the credentials of a call sent here (none: Authorization removed)
	key     string
	models  map[string]bool
}

type keyEntry struct {
	name, team string
	// token is the caller's virtual key, the bearer token it was
	// authenticated by (set per request, never stored in a keySet); ""
	// for Server.TransportFor's team, which needs none.
	token string
}

// The headers of the organization and project a call bills, in canonical
// form.
var (
	orgHeader     = http.CanonicalHeaderKey("OpenAI-Organization")
	projectHeader = http.CanonicalHeaderKey("OpenAI-Project")
)

// keySet is the virtual keys in force. A reload replaces it whole, so a
// revoked key's memo goes with it.
type keySet struct {
	byHash map[[sha256.Size]byte]keyEntry
	// seen memoizes the tokens found valid, so that a known key costs a
	// map lookup rather than a SHA-256 per request. Only valid tokens are
	// stored: its size is bounded by the keys in the file.
	seen sync.Map // string → keyEntry
}

// lookup returns the entry of a bearer token.
func (ks *keySet) lookup(tok string) (keyEntry, bool) {
	if tok == "" {
		return keyEntry{}, false
	}
	if k, ok := ks.seen.Load(tok); ok {
		return k.(keyEntry), true
	}
	k, ok := ks.byHash[sha256.Sum256([]byte(tok))]
	if ok {
		ks.seen.Store(tok, k)
	}
	return k, ok
}

// Option configures New with code-side things.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	base    http.RoundTripper
	redis   goredis.UniversalClient
	llm     []llmwrap.Option
	noWatch bool
}

// WithPolicyWatch turns the watches of the policy directory and of the
// gateway file (its keys) on (the default) or off (reload both with
// Server.Reload, e.g. on SIGHUP).
func WithPolicyWatch(on bool) Option { return func(o *options) { o.noWatch = !on } }

// WithLogger sets the logger of requests, reloads and problems. Default:
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBaseTransport sets the RoundTripper that carries requests to the
// upstreams. Default: for chat completions to a plain-HTTP upstream, a
// synchronous HTTP/1.1 transport (the calling goroutine writes the request
// and reads the answer: no hand-offs to connection goroutines; at most 16
// dials at once per upstream, calls beyond them wait for a connection
// given back; up to 2,048 idle connections per upstream); for the rest
// (https, a proxy from the environment, passed-through requests)
// http.DefaultTransport's settings with as many idle connections
// (http.DefaultTransport keeps 2, which under load makes a new connection
// for most calls).
func WithBaseTransport(rt http.RoundTripper) Option { return func(o *options) { o.base = rt } }

// WithRedisClient gives the gateway a Redis client for its shared state
// (instead of dialing redis.addr). The caller owns it.
func WithRedisClient(c goredis.UniversalClient) Option { return func(o *options) { o.redis = c } }

// WithLLMOptions passes more options to every chain the gateway builds
// (observers, stores).
func WithLLMOptions(opts ...llmwrap.Option) Option {
	return func(o *options) { o.llm = append(o.llm, opts...) }
}

// New builds a gateway from cfg: it loads the policy directory (strictly:
// any invalid file is an error) and the token-counting tables of the
// models it names, reads the upstreams' keys, connects the shared stores,
// and starts following changes of the policy directory.
func New(cfg *Config, opts ...Option) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("tokenwise/gateway: no config")
	}
	o := &options{logger: slog.Default(), base: defaultTransport()}
	for _, opt := range opts {
		opt(o)
	}
	s := &Server{cfg: cfg, logger: o.logger, base: o.base, pass: o.base}
	if st, ok := o.base.(*syncTransport); ok {
		s.pass = st.fallback
	}
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("tokenwise/gateway: no upstream")
	}
	for i, u := range cfg.Upstreams {
		key, err := cfg.apiKey(i, u)
		if err != nil {
			return nil, err
		}
		if key != "" {
			s.secrets = append(s.secrets, key)
		}
		base, err := url.Parse(u.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("tokenwise/gateway: upstream %s: %w", u.Name, err)
		}
		// The path without its trailing slash; a query (an Azure
		// deployment's ?api-version=) is sent with every request.
		base.Path, base.RawPath = strings.TrimSuffix(base.Path, "/"), strings.TrimSuffix(base.RawPath, "/")
		chat := *base
		chat.Path += "/chat/completions"
		if chat.RawPath != "" {
			chat.RawPath += "/chat/completions"
		}
		up := &upstream{Upstream: u, base: base, chat: chat.String(), key: key, models: map[string]bool{}}
		if up.chatURL, err = url.Parse(up.chat); err != nil {
			return nil, fmt.Errorf("tokenwise/gateway: upstream %s: %w", u.Name, err)
		}
		if up.chatReq, err = http.NewRequest(http.MethodPost, up.chat, nil); err != nil {
			return nil, fmt.Errorf("tokenwise/gateway: upstream %s: %w", u.Name, err)
		}
		// No key: the default upstream's is not sent; nor a client's
		// organization or project (see Upstream.Organization).
		up.auth = http.Header{"Authorization": nil, orgHeader: nil, projectHeader: nil}
		if key != "" {
			up.auth["Authorization"] = []string{"Bearer " + key}
		}
		if u.Organization != "" {
			up.auth[orgHeader] = []string{u.Organization}
		}
		if u.Project != "" {
			up.auth[projectHeader] = []string{u.Project}
		}
		for _, m := range u.Models {
			up.models[m] = true
		}
		s.upstreams = append(s.upstreams, up)
	}
	s.setKeys(cfg.Keys)
	s.cors.Store(newCORS(cfg.CORS))

	pol, err := policies.NewRegistry(cfg.PolicyDir(), policies.WithRegistryLogger(s.logger))
	if err != nil {
		return nil, err
	}
	s.pol = pol
	for _, w := range cfg.Warnings() {
		s.logger.Warn("tokenwise/gateway: " + w.String())
	}
	s.warnKeyTeams(cfg)
	warmTokenizers(pol, s.upstreams)

	llmOpts := []llmwrap.Option{llmwrap.WithLogger(s.logger)}
	s.rdb = o.redis
	if s.rdb == nil && cfg.Redis.Addr != "" {
		pw := ""
		if cfg.Redis.PasswordEnv != "" {
			pw = getenv(cfg.Redis.PasswordEnv)
		}
		s.rdb = goredis.NewClient(&goredis.Options{Addr: cfg.Redis.Addr, Password: pw, DB: cfg.Redis.DB, ContextTimeoutEnabled: true})
		s.ownRedis = true
	}
	prefix := cfg.Redis.Prefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	if s.rdb != nil {
		s.budgets = twredis.NewBudgetStore(s.rdb)
		llmOpts = append(llmOpts,
			llmwrap.WithCacheStore(twredis.NewCacheStore(s.rdb, prefix)),
			llmwrap.WithBreakerStore(twredis.NewBreakerStore(s.rdb, prefix)),
		)
		s.rates = twredis.NewRateLimitStore(s.rdb)
		s.respRedis = twredis.NewCacheStore(s.rdb, prefix+":responses")
	} else {
		s.budgets = budget.NewMemoryStore()
		s.rates = ratelimit.NewMemoryStore()
	}
	llmOpts = append(llmOpts, llmwrap.WithBudgetStore(s.budgets), llmwrap.WithRateLimitStore(s.rates))
	s.budgetLocal, s.rateLocal = budget.NewMemoryStore(), ratelimit.NewMemoryStore()
	llmOpts = append(llmOpts, llmwrap.WithBudgetOptions(budget.WithLocalStore(s.budgetLocal)),
		llmwrap.WithRateLimitOptions(ratelimit.WithLocalStore(s.rateLocal)))
	s.est = tokens.New()
	m, err := newMetrics()
	if err != nil {
		s.closeRedis()
		return nil, err
	}
	s.metrics = m
	llmOpts = append(llmOpts, llmwrap.WithObserver(m.observer))
	llmOpts = append(llmOpts, o.llm...)
	// The spend endpoint's budget reads the ledgers by the chains' clock.
	s.budgetOpts = llmwrap.BudgetOptions(o.llm...)
	reg, err := llmwrap.NewRegistry(pol, llmOpts...)
	if err != nil {
		s.closeRedis()
		return nil, err
	}
	s.reg = reg
	if err := s.registerBudgetGauges(); err != nil {
		s.closeRedis()
		return nil, err
	}
	// A chat call no timeout of its team bounds is bounded by
	// limits.upstream_idle (upstreamidle.go).
	trOpts := []twopenai.Option{twopenai.WithBaseTransport(idleBound{next: s.base, limit: s.upstreamIdle})}
	if len(s.upstreams) > 1 {
		// Each call goes to the upstream of the model the chain settled
		// on (a fallback or a route may move it to another upstream's).
		trOpts = append(trOpts, twopenai.WithUpstream(s.route))
	}
	s.tr = twopenai.NewTransport(noteStored(reg.Middleware()), trOpts...)

	runIdle := durationOr(cfg.Limits.RunIdle, DefaultRunIdle)
	maxRuns := cfg.Limits.MaxRuns
	if maxRuns <= 0 {
		maxRuns = DefaultMaxRuns
	}
	var runStore middleware.RunStore
	if s.rdb != nil {
		// A run of X-Run-Id is one run in every replica: its call count,
		// start and per-run budget are in Redis, kept for runIdle.
		runStore = twredis.NewRunStore(s.rdb, prefix, runIdle)
	}
	s.runs = newRunTable(maxRuns, runIdle, runStore)
	s.background.ttl = runIdle
	s.objects.forever = true // a file, a vector store… lives until it is deleted
	if s.rdb != nil {
		s.background.done = &backgroundDone{rdb: s.rdb, prefix: prefix, ttl: runIdle + time.Minute}
		s.owners.rdb, s.owners.key = s.rdb, prefix+":responses:owner:"
		s.objects.rdb, s.objects.key = s.rdb, prefix+":objects:owner:"
	}

	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	if !o.noWatch {
		watchCtx, stop := context.WithCancel(context.Background())
		wait, err := pol.StartWatch(watchCtx)
		if err != nil {
			stop()
			s.logger.Warn("tokenwise/gateway: the policy directory is not watched; reload it with SIGHUP", "dir", cfg.PolicyDir(), "err", err)
		} else {
			s.stopWatch, s.watchDone = stop, wait
		}
		if cfg.file != "" {
			if stop, err := s.watchFile(cfg.file); err != nil {
				s.logger.Warn("tokenwise/gateway: the gateway file is not watched; reload its keys with SIGHUP", "file", cfg.file, "err", err)
			} else {
				s.stopFileWatch = stop
			}
		}
	}
	s.handler = s.routes()
	s.srv = &http.Server{
		Addr:              cfg.listen(),
		Handler:           s.handler,
		ReadHeaderTimeout: durationOr(cfg.Limits.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		IdleTimeout:       durationOr(cfg.Limits.IdleTimeout, DefaultIdleTimeout),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func (c *Config) listen() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

func (s *Server) setKeys(keys []Key) {
	ks := &keySet{byHash: make(map[[sha256.Size]byte]keyEntry, len(keys))}
	for _, k := range keys {
		var sum [sha256.Size]byte
		if n, err := hex.Decode(sum[:], []byte(k.SHA256)); err != nil || n != len(sum) {
			continue // LoadConfig refuses such a key: never reached
		}
		ks.byHash[sum] = keyEntry{name: k.Name, team: k.Team}
	}
	s.keys.Store(ks)
}

// Reload re-reads the gateway file's keys (a key removed is refused from
// now on; a key added is accepted) and the policy directory. Other
// settings of the file need a restart: a change to them is logged. Both
// are also followed by watches unless WithPolicyWatch(false).
func (s *Server) Reload() error {
	polErr := s.pol.Reload()
	return errors.Join(s.reloadFile(), polErr)
}

// reloadFile re-reads the gateway file's keys and cors.
func (s *Server) reloadFile() error {
	if s.cfg.file == "" {
		return nil
	}
	c, err := LoadConfig(s.cfg.file)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: reload refused: the gateway file is invalid; the keys in force stay", "file", s.cfg.file, "err", err)
		return err
	}
	s.setKeys(c.Keys)
	s.cors.Store(newCORS(c.CORS))
	s.warnKeyTeams(c)
	if c.Listen != s.cfg.Listen || c.Policies != s.cfg.Policies || c.Redis != s.cfg.Redis || !slices.EqualFunc(c.Upstreams, s.cfg.Upstreams, sameUpstream) || c.Limits != s.cfg.Limits {
		s.logger.Warn("tokenwise/gateway: reload applied the keys only: listen, policies, upstreams, redis and limits take effect at the next start (keys and cors are applied)", "file", s.cfg.file)
	}
	s.logger.Info("tokenwise/gateway: reloaded", "file", s.cfg.file, "keys", len(c.Keys))
	return nil
}

// warnKeyTeams logs each key of c whose team has no policy file: its calls
// get the default policy (or are refused, under teams.unknown: error),
// which a typo of a team that has one ("devps" beside devops.yaml) was not
// meant to; `tokenwise gateway check` reports the same.
func (s *Server) warnKeyTeams(c *Config) {
	known := s.pol.Names()
	for _, k := range c.keyTeamIssues(known) {
		attrs := []any{"key", k.name, "team", k.team, "dir", s.pol.Dir()}
		if k.suggestion != "" {
			attrs = append(attrs, "did_you_mean", k.suggestion)
		}
		msg := "tokenwise/gateway: a key's team has no policy file: its calls get the default policy"
		if s.pol.Policy(policies.DefaultTeam).Teams.Unknown == policies.UnknownTeamsError {
			msg = "tokenwise/gateway: a key's team has no policy file: its calls are refused (teams.unknown: error)"
		}
		s.logger.Warn(msg, attrs...)
	}
}

func sameUpstream(a, b Upstream) bool {
	return a.Name == b.Name && a.BaseURL == b.BaseURL && a.APIKeyEnv == b.APIKeyEnv && a.APIKeyFile == b.APIKeyFile && slices.Equal(a.Models, b.Models)
}

// Handler returns the gateway's HTTP handler, to serve on a server of the
// caller's (ListenAndServe uses it too).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the configured listen address.
func (s *Server) Addr() string { return s.srv.Addr }

// ListenAndServe listens on the configured address and serves until
// Shutdown; it returns http.ErrServerClosed after a Shutdown.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("tokenwise/gateway: %w", err)
	}
	return s.Serve(l)
}

// Serve serves on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.logger.Info("tokenwise/gateway: serving", "addr", l.Addr().String(), "policies", s.cfg.PolicyDir(), "teams", s.pol.Names(), "shared_state", s.rdb != nil)
	if s.rdb != nil {
		// Said at once, not found out from the first calls: a Redis that
		// does not answer at start (as /readyz checks it). Checked beside
		// serving, which a silent Redis must not delay; close waits for it.
		s.redisPinged.Add(1)
		go s.warnOfSilentRedis()
	}
	return s.srv.Serve(l)
}

// warnOfSilentRedis logs a warning when Redis does not answer a ping
// within 2s (as /readyz asks it), or before the Server closes.
func (s *Server) warnOfSilentRedis() {
	defer s.redisPinged.Done()
	ctx, cancel := context.WithTimeout(s.baseCtx, 2*time.Second)
	err := s.rdb.Ping(ctx).Err()
	cancel()
	if err != nil && s.baseCtx.Err() == nil {
		s.logger.Warn("tokenwise/gateway: redis does not answer: what is shared through it (budgets, rate limits, the cache, breakers) cannot be until it does, and /readyz answers 503",
			"addr", s.cfg.Redis.Addr, "err", err)
	}
}

// Shutdown stops accepting connections, reports not ready, and waits for
// the requests in flight (streams included) to finish until ctx ends;
// those still running then are cut (their chains' contexts cancelled, a
// stream ending with an error event, never with [DONE]) and Shutdown
// returns ctx's error. It then stops following the policy directory and
// closes what New opened.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Cut what still runs: the chains' contexts end, and each handler
		// ends its stream with an error event (never [DONE]) before the
		// connections are closed.
		s.cancelBase()
		cut, cancel := context.WithTimeout(context.Background(), cutGrace)
		_ = s.srv.Shutdown(cut)
		cancel()
		_ = s.srv.Close()
	}
	s.close()
	return err
}

// cutGrace is how long Shutdown lets handlers whose requests it cut write
// their last event.
const cutGrace = time.Second

// Close closes the gateway at once, cutting requests in flight.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.cancelBase()
	err := s.srv.Close()
	s.close()
	return err
}

func (s *Server) close() {
	s.closeOnce.Do(func() {
		s.cancelBase()
		if s.stopWatch != nil {
			s.stopWatch()
			_ = s.watchDone()
		}
		if s.stopFileWatch != nil {
			s.stopFileWatch()
		}
		s.background.close()
		_ = s.reg.Close()
		s.redisPinged.Wait()
		s.closeRedis()
		if st, ok := s.base.(*syncTransport); ok {
			st.CloseIdleConnections() // the default transport is the Server's own
		}
	})
}

func (s *Server) closeRedis() {
	if s.ownRedis && s.rdb != nil {
		_ = s.rdb.Close()
	}
}

// warmTokenizers loads, before the gateway serves, the token-counting
// tables of the encodings of the models its upstreams and policies name
// (o200k_base takes ≈0.1 s, once per process). Otherwise the first
// requests wait for them, and under load pile up behind them: at 2,000
// requests/s a cold gateway held ~1,000 calls, and as many connections on
// each side, within its first half second. A model named nowhere still
// loads its encoding on first use.
func warmTokenizers(pol *policies.Registry, ups []*upstream) {
	var models []string
	for _, u := range ups {
		models = append(models, u.Models...)
	}
	for _, name := range pol.Names() {
		p := pol.Policy(name)
		models = append(models, p.Routing.Default, p.Budget.DowngradeTo)
		for _, r := range p.Routing.Rules {
			models = append(models, r.Model)
		}
		models = append(models, p.Routing.Cascade.Models...)
		models = append(models, p.Routing.LargerWindow...)
		models = append(models, p.Fallback.Models...)
	}
	e := tokens.New()
	warm := map[string]bool{}
	for _, m := range models {
		if enc := e.Encoding(m); m != "" && !warm[enc] {
			warm[enc] = true
			e.Text(m, "warm up") // an unknown encoding ("") counts with cl100k_base: loaded too
		}
	}
}

// credentials sets in h the upstream's credentials, organization and
// project (auth), removing the caller's (see Upstream.Organization). The
// values are shared: nobody modifies a request's header values.
func (up *upstream) credentials(h http.Header) {
	for k, v := range up.auth {
		if len(v) == 0 {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
}

// route is the gateway's twopenai.WithUpstream: a call of model goes to
// pick(model) with its key.
func (s *Server) route(model string) (*url.URL, http.Header, bool) {
	up := s.pick(model)
	return up.chatURL, up.auth, true
}

// newChat returns the request of a chat completion to up with ctx and
// body: what http.NewRequestWithContext(ctx, "POST", up.chat, body)
// returns, without parsing the URL again nor a header map of its own
// (the caller sets Header). The URL is shared: requests only read it.
func (up *upstream) newChat(ctx context.Context, body io.ReadCloser) *http.Request {
	r := up.chatReq.WithContext(ctx)
	r.Header, r.Body = nil, body
	return r
}

// pick returns the upstream of a model.
func (s *Server) pick(model string) *upstream {
	if len(s.upstreams) > 1 {
		for _, u := range s.upstreams {
			if u.models[model] {
				return u
			}
		}
	}
	return s.upstreams[0]
}

// newID returns a random id (96 bits) with prefix. Ids name calls in logs
// and headers; they are not secrets, so the runtime's fast generator
// (ChaCha8, seeded from the OS) serves.
func newID(prefix string) string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return prefix + hex.EncodeToString(b[:])
}

// since is time.Since, in milliseconds with a fraction.
func since(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// maxIdleConnsPerUpstream is how many idle connections the default
// transport keeps to each upstream. A call holds its upstream connection
// for as long as the upstream takes, so the gateway needs as many as it has
// calls in flight: a burst beyond the pool (a latency spike at 2,000
// requests/s is hundreds of calls) otherwise closes the surplus when it
// ends and dials them again at the next, which cost the gateway ≈10% of its
// CPU under load with 256. Idle connections still close after
// IdleConnTimeout (90 s).
const maxIdleConnsPerUpstream = 2048

// defaultTransport is the transport to the upstreams: the synchronous
// HTTP/1.1 transport for plain-HTTP upstreams (syncTransport), and
// http.DefaultTransport's settings, with as many idle connections, for
// the rest (https, proxies).
func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * maxIdleConnsPerUpstream
	t.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
	return newSyncTransport(t)
}
