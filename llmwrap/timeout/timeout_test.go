package timeout_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// streamer is a provider that, for a streaming request, sends one chunk
// after each of its gaps, then answers after tail; for a plain request it
// answers after the sum of both. It gives up when its context ends.
type streamer struct {
	gaps []time.Duration
	tail time.Duration
	sent int
}

func (s *streamer) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	for _, g := range s.gaps {
		if err := wait(g); err != nil {
			return nil, err
		}
		if req.Stream != nil {
			if err := req.Stream(ctx, middleware.Chunk{Content: "Disk "}); err != nil {
				return nil, err
			}
			s.sent++
		}
	}
	if err := wait(s.tail); err != nil {
		return nil, err
	}
	return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "Disk at 42%."}}, nil
}

// run sends req through cfg's layer to p and returns how long the call
// took and its error.
func run(t *testing.T, cfg timeout.Config, p *streamer, stream middleware.StreamFunc) (time.Duration, error) {
	t.Helper()
	req := &middleware.Request{Model: "gpt-4o", Stream: stream, Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "disk?"}}}
	start := time.Now()
	_, err := middlewaretest.Must(timeout.New(cfg))(p).Handle(context.Background(), req)
	return time.Since(start), err
}

func nop(context.Context, middleware.Chunk) error { return nil }

// Call bounds the whole call, streaming or not, with an error that
// matches ErrCall, middleware.ErrTimeout and context.DeadlineExceeded.
func TestCallLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := timeout.Config{Call: 5 * time.Second}
		took, err := run(t, cfg, &streamer{tail: 6 * time.Second}, nil)
		var de *middleware.DeadlineError
		if !errors.Is(err, timeout.ErrCall) || !errors.Is(err, middleware.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) ||
			!errors.As(err, &de) || de.Limit != 5*time.Second {
			t.Fatalf("err = %v, want the call timeout of 5s", err)
		}
		if took != 5*time.Second {
			t.Fatalf("the call ended after %v, want 5s", took)
		}
		// A stream whose chunks keep coming is still bounded by Call.
		took, err = run(t, cfg, &streamer{gaps: []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}}, nop)
		if !errors.Is(err, timeout.ErrCall) || took != 5*time.Second {
			t.Fatalf("stream: %v after %v, want the call timeout after 5s", err, took)
		}
		if _, err := run(t, cfg, &streamer{tail: 4 * time.Second}, nil); err != nil {
			t.Fatalf("a call within the limit: %v", err)
		}
	})
}

// FirstToken bounds the wait for a stream's first chunk only; a plain
// call is not bound by it.
func TestFirstTokenLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := timeout.Config{FirstToken: 2 * time.Second}
		took, err := run(t, cfg, &streamer{gaps: []time.Duration{3 * time.Second}}, nop)
		if !errors.Is(err, timeout.ErrFirstToken) || !errors.Is(err, middleware.ErrTimeout) || took != 2*time.Second {
			t.Fatalf("late first chunk: %v after %v, want ErrFirstToken after 2s", err, took)
		}
		// After a first chunk in time, later gaps are not FirstToken's.
		p := &streamer{gaps: []time.Duration{time.Second, 5 * time.Second, 5 * time.Second}}
		if _, err := run(t, cfg, p, nop); err != nil || p.sent != 3 {
			t.Fatalf("first chunk in time: %v after %d chunks", err, p.sent)
		}
		if took, err := run(t, cfg, &streamer{tail: 10 * time.Second}, nil); err != nil || took != 10*time.Second {
			t.Fatalf("plain call: %v after %v, want its answer after 10s", err, took)
		}
	})
}

// Idle bounds the gap between two chunks, counted from the end of the
// caller's stream function: a slow consumer is not a stalled provider.
func TestIdleLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := timeout.Config{Idle: 2 * time.Second}
		p := &streamer{gaps: []time.Duration{10 * time.Second, time.Second, time.Second, 3 * time.Second}}
		took, err := run(t, cfg, p, nop)
		if !errors.Is(err, timeout.ErrIdle) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrIdle", err)
		}
		// The first wait is not Idle's; the stall after the third chunk
		// ends the call 2s later.
		if p.sent != 3 || took != 14*time.Second {
			t.Fatalf("%d chunks, ended after %v; want 3 and 14s", p.sent, took)
		}

		slow := func(context.Context, middleware.Chunk) error { time.Sleep(5 * time.Second); return nil }
		p = &streamer{gaps: []time.Duration{time.Second, time.Second, time.Second}}
		if took, err := run(t, cfg, p, slow); err != nil || took != 18*time.Second {
			t.Fatalf("slow consumer: %v after %v, want the answer after 18s", err, took)
		}
	})
}

// The zero Config adds no layer; a negative limit is ErrConfig.
func TestConfig(t *testing.T) {
	t.Parallel()
	if mw := middlewaretest.Must(timeout.New(timeout.Config{})); mw != nil {
		t.Error("zero Config: a layer, want none")
	}
	// Total alone: the total layer, no per-attempt one; and the other
	// way round.
	total := mustTimeout(t, timeout.Config{Total: time.Minute})
	if total.Middleware() != nil || total.TotalMiddleware() == nil {
		t.Errorf("Config{Total}: attempt layer %v, total layer %v; want the total one only", total.Middleware() != nil, total.TotalMiddleware() != nil)
	}
	if call := mustTimeout(t, timeout.Config{Call: time.Minute}); call.TotalMiddleware() != nil {
		t.Error("Config{Call}: a total layer")
	}
	for _, c := range []timeout.Config{{Call: -1}, {FirstToken: -time.Second}, {Idle: -1}, {Total: -1}} {
		if _, err := timeout.New(c); !errors.Is(err, timeout.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

func mustTimeout(t *testing.T, cfg timeout.Config) *timeout.Timeout {
	t.Helper()
	tm, err := timeout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// stuck is a provider that never answers: it counts its attempts and
// returns when its context ends.
type stuck struct{ attempts atomic.Int32 }

func (s *stuck) Handle(ctx context.Context, _ *middleware.Request) (*middleware.Response, error) {
	s.attempts.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// Total bounds a call with all its attempts, retry waits and fallbacks:
// an attempt it cuts short fails the call with ErrTotal at the total
// limit, and no retry or fallback starts after it; a retry wait that
// would end past it is not waited.
func TestTotalLimit(t *testing.T) {
	t.Parallel()
	noJitter := retry.WithJitter(func() float64 { return 0 })
	isTotal := func(err error) bool {
		var de *middleware.DeadlineError
		return errors.Is(err, timeout.ErrTotal) && errors.Is(err, middleware.ErrTimeout) && errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, timeout.ErrCall) && errors.As(err, &de) && de.Limit == 5*time.Second
	}
	chain := func(t *testing.T, inner ...middleware.Middleware) middleware.Middleware {
		mws := append([]middleware.Middleware{mustTimeout(t, timeout.Config{Total: 5 * time.Second}).TotalMiddleware()}, inner...)
		return middleware.Chain(mws...)
	}
	t.Run("retries", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &stuck{}
			h := chain(t, middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3}, noJitter)),
				middlewaretest.Must(timeout.New(timeout.Config{Call: 3 * time.Second})))(p)
			start := time.Now()
			_, err := h.Handle(context.Background(), request(nil))
			// 3s, then the second attempt until the total's 5s; no third.
			if el := time.Since(start); !isTotal(err) || el != 5*time.Second || p.attempts.Load() != 2 {
				t.Fatalf("err %v after %v and %d attempts; want ErrTotal after 5s and 2 attempts", err, el, p.attempts.Load())
			}
		})
	})
	t.Run("fallback", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &stuck{}
			h := chain(t, middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}})),
				middlewaretest.Must(timeout.New(timeout.Config{Call: 10 * time.Second})))(p)
			start := time.Now()
			_, err := h.Handle(context.Background(), request(nil))
			if el := time.Since(start); !isTotal(err) || el != 5*time.Second || p.attempts.Load() != 1 {
				t.Fatalf("err %v after %v and %d attempts; want ErrTotal after 5s and no fallback", err, el, p.attempts.Load())
			}
		})
	})
	t.Run("a retry wait past it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			attempts := 0
			busy := &middleware.ProviderError{Kind: middleware.ErrRateLimited, StatusCode: 429, RetryAfter: 6 * time.Second}
			p := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
				attempts++
				return nil, busy
			})
			h := chain(t, middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3}, noJitter)))(p)
			start := time.Now()
			_, err := h.Handle(context.Background(), request(nil))
			if el := time.Since(start); err != busy || el != 0 || attempts != 1 {
				t.Fatalf("err %v after %v and %d attempts; want the provider's 429 at once, without waiting its 6s", err, el, attempts)
			}
		})
	})
}
