// Package guard is a layer of the chain, the run guard: it caps the LLM
// calls (agent iterations) of a run and bounds every call of the run by the
// run's deadline.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Guard whose Middleware method gives the middleware.Middleware.
// Config is plain data whose zero fields are documented defaults or "off"
// (as gobreaker's Settings), so the layer is usable without a policy file;
// package llmwrap maps a policy's section to it. Options are functional
// options (as in connect-go and go-kit) for code-side dependencies (none yet
// for this layer) only, never policy data.
package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

var (
	// ErrMaxCalls: the run already made its maximum number of LLM calls.
	ErrMaxCalls = errors.New("tokenwise/guard: run reached its call limit")
	// ErrRunDeadline: the run's deadline ran out. Errors carrying it also
	// match context.DeadlineExceeded and middleware.ErrTimeout.
	ErrRunDeadline = errors.New("tokenwise/guard: run deadline exceeded")
)

// LimitError reports a call refused by the run guard. It matches
// ErrMaxCalls with errors.Is.
type LimitError struct {
	Run   string
	Limit int // the run's call limit
	Call  int // the number of the refused call
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: run %q is limited to %d calls, call %d refused", ErrMaxCalls, e.Run, e.Limit, e.Call)
}

// Is matches ErrMaxCalls.
func (e *LimitError) Is(target error) bool { return target == ErrMaxCalls }

// ErrConfig: New was given a Config it cannot use (a negative limit).
var ErrConfig = errors.New("tokenwise/guard: invalid config")

// Config configures the guard. The zero Config guards nothing
// (Middleware returns nil).
type Config struct {
	// MaxCalls caps the LLM calls of a run. Zero: unlimited.
	MaxCalls int
	// RunTimeout is the deadline of a run, from middleware.Run.Started
	// (for a shared run, its first call in any process). Zero: none.
	RunTimeout time.Duration
}

// Option configures code-side dependencies of the guard. It has none yet;
// the type keeps its constructor the shape of every layer's.
type Option func(*options)

type options struct{}

// Guard is the run guard layer. It is safe for concurrent use.
type Guard struct {
	cfg Config
}

// New returns the run guard for cfg. It fails (with an error matching
// ErrConfig) on a negative limit.
func New(cfg Config, opts ...Option) (*Guard, error) {
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if cfg.MaxCalls < 0 || cfg.RunTimeout < 0 {
		return nil, fmt.Errorf("%w: negative limit (max calls %d, run timeout %v)", ErrConfig, cfg.MaxCalls, cfg.RunTimeout)
	}
	return &Guard{cfg: cfg}, nil
}

// Middleware returns the run guard middleware, or nil when the Config
// limits nothing. Calls outside a run (middleware.StartRun) are not
// limited. Place it inside the instrument layer (llmwrap/instrument.New),
// which numbers the calls; without it, the guard numbers them itself. A shared run's calls
// (middleware.OpenSharedRun) are numbered by its RunStore, so the limit
// holds across every process sharing the run. The middleware is safe for
// concurrent use.
func (g *Guard) Middleware() middleware.Middleware {
	l := g.cfg
	if l.MaxCalls <= 0 && l.RunTimeout <= 0 {
		return nil
	}
	// DeadlineErrors are immutable: one serves every call.
	cause := &middleware.DeadlineError{Cause: ErrRunDeadline, Limit: l.RunTimeout}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			run := middleware.RunFrom(ctx)
			if run == nil {
				return next.Handle(ctx, req)
			}
			if l.MaxCalls > 0 {
				seq := middleware.CallInfoFrom(ctx).Seq()
				if seq == 0 {
					var err error
					if seq, err = run.NextSeqContext(ctx); err != nil {
						return nil, err
					}
				}
				if seq > l.MaxCalls {
					return nil, &LimitError{Run: run.ID(), Limit: l.MaxCalls, Call: seq}
				}
			}
			if l.RunTimeout <= 0 {
				return next.Handle(ctx, req)
			}
			if ctx.Err() == nil && !time.Now().Before(run.Started().Add(l.RunTimeout)) {
				return nil, cause
			}
			// Its timer starts only if something watches it; inside, the
			// timeout layer's call deadline shares one with it (see
			// middleware.Deadline).
			d := middleware.WithDeadline(ctx, run.Started().Add(l.RunTimeout), cause)
			defer d.Stop()
			ctx = d
			resp, err := next.Handle(ctx, req)
			if err != nil {
				if de := middleware.DeadlineCause(ctx, l.RunTimeout, ErrRunDeadline); de != nil {
					return resp, de
				}
			}
			return resp, err
		})
	}
}
