package compact

import (
	"context"
	"errors"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// Strategy is one way to shrink a conversation that does not fit.
type Strategy string

// The strategies, in the order a policy usually lists them (least lossy
// first).
const (
	// Offload replaces old tool results larger than Config.OffloadOverBytes
	// by the excerpt an [Offloader] returns (which names the artifact the
	// agent can read back). Lossless; needs WithOffloader.
	Offload Strategy = "offload"
	// Drop replaces a block of old turns by a one-line marker saying how
	// many turns were dropped.
	Drop Strategy = "drop"
	// Summarise replaces a block of old turns by a summary written by
	// Config.SummaryModel through the chain below the compactor (or the
	// handler given with WithSummariser).
	Summarise Strategy = "summarise"
)

// Defaults of the zero Config fields.
const (
	DefaultKeepLastTurns    = 4
	DefaultOffloadOverBytes = 2048
	DefaultBlockSize        = 10
	DefaultSummaryMaxTokens = 512
	DefaultSummaryCacheSize = 1024
)

var (
	// ErrTooLarge: the request still exceeds its token ceiling after every
	// strategy was applied. Errors carrying it also match
	// middleware.ErrContextWindow.
	ErrTooLarge = errors.New("tokenwise/compact: request exceeds its input token ceiling")
	// ErrSummary: the summary call of the summarise strategy failed (and no
	// later strategy could replace it).
	ErrSummary = errors.New("tokenwise/compact: summary call failed")
)

// TooLargeError reports a request that cannot be made to fit. It matches
// ErrTooLarge and middleware.ErrContextWindow with errors.Is; Unwrap returns
// the cause that stopped a strategy, if any.
type TooLargeError struct {
	Model    string
	Estimate int64      // estimated input tokens after every strategy ran
	Original int64      // estimated input tokens of the request as sent
	Ceiling  int64      // the input token ceiling
	Tried    []Strategy // the strategies that were available
	Err      error
}

func (e *TooLargeError) Error() string {
	s := fmt.Sprintf("%v: model %s: estimated %d input tokens (%d before compaction) > ceiling %d", ErrTooLarge,
		e.Model, e.Estimate, e.Original, e.Ceiling)
	if len(e.Tried) > 0 {
		names := make([]string, len(e.Tried))
		for i, t := range e.Tried {
			names[i] = string(t)
		}
		s += " after " + strings.Join(names, ", ")
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches ErrTooLarge and middleware.ErrContextWindow.
func (e *TooLargeError) Is(target error) bool {
	return target == ErrTooLarge || target == middleware.ErrContextWindow
}

// Unwrap returns the cause, if any.
func (e *TooLargeError) Unwrap() error { return e.Err }

// ErrConfig: New was given a Config it cannot use.
var ErrConfig = errors.New("tokenwise/compact: invalid config")

// Config is the compaction policy. It is plain data; the zero value turns
// compaction off (no ceiling).
type Config struct {
	// MaxInputTokens is an absolute input ceiling. Zero: none.
	MaxInputTokens int64
	// WindowFraction in (0,1] caps the input at this share of the routed
	// model's context window (see WithWindow). Zero: not used. With both
	// set, the smaller ceiling wins.
	WindowFraction float64
	// Strategies are applied in this order until the request fits. Empty:
	// nothing is compacted and a request over the ceiling fails with a
	// *TooLargeError. Offload without an Offloader is skipped.
	Strategies []Strategy
	// KeepLastTurns turns at the end are never compacted. A turn is an
	// assistant message with all its tool results, or any other single
	// message. Zero: DefaultKeepLastTurns.
	KeepLastTurns int
	// OffloadOverBytes: tool results larger than this are offloaded.
	// Zero: DefaultOffloadOverBytes.
	OffloadOverBytes int
	// BlockSize is the number of turns compacted together. Compacted
	// blocks are frozen for the rest of the run, so that the prefix sent to
	// the provider stays byte-identical and its prompt cache keeps hitting.
	// Zero: DefaultBlockSize.
	BlockSize int
	// SummaryModel writes the summaries. Empty: the request's model.
	SummaryModel string
	// SummaryMaxTokens caps a summary's length. Zero: DefaultSummaryMaxTokens.
	SummaryMaxTokens int
}

// Estimator estimates the input tokens of a request sent to model.
// *tokens.Estimator and [Approx] satisfy it. A request's count must be a
// sum over its messages plus a part that does not depend on them (the
// compactor counts the blocks it replaces on their own and subtracts).
// Implementations must be safe for concurrent use and should memoise per
// message.
type Estimator interface {
	Request(model string, req *middleware.Request) int64
}

// Offloader stores a large tool result as an artifact of run and returns
// the excerpt that replaces it in the conversation (a few lines and the
// artifact id the agent reads it back with, e.g. with read_artifact).
// Implementations must be safe for concurrent use.
type Offloader interface {
	Offload(ctx context.Context, run, tool, content string) (excerpt string, err error)
}

// OffloaderFunc adapts a function to an Offloader.
type OffloaderFunc func(ctx context.Context, run, tool, content string) (string, error)

// Offload calls f.
func (f OffloaderFunc) Offload(ctx context.Context, run, tool, content string) (string, error) {
	return f(ctx, run, tool, content)
}

// Option configures code-side dependencies of the compactor.
type Option func(*options)

type options struct {
	est        Estimator
	offloader  Offloader
	summariser middleware.Handler
	pricer     middleware.Pricer
	window     func(model string) int64
	cacheSize  int
}

// WithEstimator sets the token estimator. Default: a new tokens.Estimator
// (exact for OpenAI encodings, conservative for other models). With a
// *tokens.Estimator the count of the request as received is shared with
// the other layers of the call (tokens.ForCall).
func WithEstimator(e Estimator) Option { return func(o *options) { o.est = e } }

// WithOffloader sets where the offload strategy stores tool results.
// Without one the offload strategy is skipped.
func WithOffloader(off Offloader) Option { return func(o *options) { o.offloader = off } }

// WithSummariser sets the handler the summary calls go to. Default: the
// handler the middleware wraps, so that summaries pass through the inner
// layers (budget, fallback, retry) and are billed like any call.
func WithSummariser(h middleware.Handler) Option { return func(o *options) { o.summariser = h } }

// WithPricer prices the tokens a compaction saved (CallFacts.SavedPico)
// and the summary calls. Default: none (savings in tokens only).
func WithPricer(p middleware.Pricer) Option { return func(o *options) { o.pricer = p } }

// WithWindow tells the compactor the context window of a model, for
// Config.WindowFraction; it returns 0 for an unknown model.
func WithWindow(fn func(model string) int64) Option { return func(o *options) { o.window = fn } }

// WithSummaryCacheSize bounds the summaries kept across runs (entries).
// Default: DefaultSummaryCacheSize.
func WithSummaryCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// Compactor holds a compaction policy and the state shared by its
// middlewares (the summary cache). It is safe for concurrent use.
type Compactor struct {
	cfg        Config
	strategies []Strategy
	o          options
	summaries  *lru.Cache[summaryKey, string]
	flight     singleflight.Group
}

// New validates cfg and returns the Compactor of the context compaction
// layer. It fails (with an error matching ErrConfig) on a negative field,
// a WindowFraction above 1, or an unknown or repeated strategy.
func New(cfg Config, opts ...Option) (*Compactor, error) {
	c := &Compactor{cfg: cfg}
	for _, opt := range opts {
		opt(&c.o)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c, nil
}

func (c *Compactor) validate() error {
	var errs []error
	if c.cfg.MaxInputTokens < 0 {
		errs = append(errs, fmt.Errorf("MaxInputTokens %d < 0", c.cfg.MaxInputTokens))
	}
	if c.cfg.WindowFraction < 0 || c.cfg.WindowFraction > 1 {
		errs = append(errs, fmt.Errorf("WindowFraction %g not in [0,1]", c.cfg.WindowFraction))
	}
	if c.cfg.KeepLastTurns < 0 || c.cfg.BlockSize < 0 || c.cfg.OffloadOverBytes < 0 || c.cfg.SummaryMaxTokens < 0 {
		errs = append(errs, errors.New("KeepLastTurns, BlockSize, OffloadOverBytes and SummaryMaxTokens must not be negative"))
	}
	if c.cfg.KeepLastTurns == 0 {
		c.cfg.KeepLastTurns = DefaultKeepLastTurns
	}
	if c.cfg.BlockSize == 0 {
		c.cfg.BlockSize = DefaultBlockSize
	}
	if c.cfg.OffloadOverBytes == 0 {
		c.cfg.OffloadOverBytes = DefaultOffloadOverBytes
	}
	if c.cfg.SummaryMaxTokens == 0 {
		c.cfg.SummaryMaxTokens = DefaultSummaryMaxTokens
	}
	seen := map[Strategy]bool{}
	for _, s := range c.cfg.Strategies {
		switch s {
		case Offload, Drop, Summarise:
		default:
			errs = append(errs, fmt.Errorf("unknown strategy %q", s))
			continue
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("strategy %q listed twice", s))
			continue
		}
		seen[s] = true
		if s == Offload && c.o.offloader == nil {
			continue // documented: skipped without an Offloader
		}
		c.strategies = append(c.strategies, s)
	}
	if c.o.est == nil {
		c.o.est = tokens.New()
	}
	n := c.o.cacheSize
	if n <= 0 {
		n = DefaultSummaryCacheSize
	}
	var err error
	if c.summaries, err = lru.New[summaryKey, string](n); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Enabled reports whether the configuration sets a ceiling.
func (c *Compactor) Enabled() bool { return c.cfg.MaxInputTokens > 0 || c.cfg.WindowFraction > 0 }

// Ceiling returns the input token ceiling for model, 0 for none.
func (c *Compactor) Ceiling(model string) int64 {
	ceil := c.cfg.MaxInputTokens
	if c.cfg.WindowFraction > 0 && c.o.window != nil {
		if w := c.o.window(model); w > 0 {
			if f := int64(float64(w) * c.cfg.WindowFraction); ceil == 0 || f < ceil {
				ceil = f
			}
		}
	}
	return ceil
}

// Middleware returns the context compaction middleware, or nil when the
// Config sets no ceiling. See the package doc for how it works. The
// middleware is safe for concurrent use.
func (c *Compactor) Middleware() middleware.Middleware {
	if !c.Enabled() {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return &handler{c: c, next: next}
	}
}

type handler struct {
	c    *Compactor
	next middleware.Handler
}

func (h *handler) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	c := h.c
	ceiling := c.Ceiling(req.Model)
	if ceiling <= 0 {
		return h.next.Handle(ctx, req)
	}
	run := middleware.RunFrom(ctx)
	var st *runState
	if run != nil {
		st = middleware.RunValue(run, stateKey{c}, newRunState)
	}
	var before int64
	if te, ok := c.o.est.(*tokens.Estimator); ok {
		if st == nil || st.empty() {
			// A request whose bound fits needs no count (see
			// tokens.BoundForCall): its new text is not tokenised.
			if n, _ := tokens.BoundForCall(ctx, te, req.Model, req); n <= ceiling {
				return h.next.Handle(ctx, req)
			}
		}
		before = tokens.ForCall(ctx, te, req.Model, req)
	} else {
		before = c.o.est.Request(req.Model, req)
	}
	if before <= ceiling && (st == nil || st.empty()) {
		return h.next.Handle(ctx, req) // fast path: fits, nothing compacted in this run
	}
	out, res, err := c.compact(ctx, h.next, run, st, req, before, ceiling)
	if err != nil {
		return nil, err
	}
	if out == req {
		return h.next.Handle(ctx, req)
	}
	if saved := before - res.after; saved > 0 {
		var pico int64
		if c.o.pricer != nil {
			// What the input cost before, less what it costs now: a
			// request's fee is paid either way, and the rates of a long
			// context may apply to the one and not the other.
			tier := middleware.RequestServiceTier(req)
			was, ok1 := c.o.pricer.Cost(req.Model, middleware.Usage{InputTokens: before, ServiceTier: tier})
			now, ok2 := c.o.pricer.Cost(req.Model, middleware.Usage{InputTokens: res.after, ServiceTier: tier})
			if ok1 && ok2 {
				pico = max(was-now, 0)
			}
		}
		note := fmt.Sprintf("context: %d -> %d input tokens (ceiling %d; %s)", before, res.after, ceiling, res.describe())
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
			f.Saved.InputTokens += saved
			f.SavedPico += pico
			f.Notes = append(f.Notes, note)
		})
	}
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.ContextCompacted{Strategy: res.strategy(), BeforeTokens: before, AfterTokens: res.after})
	}
	return h.next.Handle(ctx, out)
}
