package retry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// fake is a provider that fails its first calls with the scripted errors
// and answers after them. When chunks is set and the request streams, it
// sends them before failing or answering.
type fake struct {
	mu     sync.Mutex
	errs   []error
	chunks int
	at     []time.Time // when each call arrived
}

func (f *fake) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	f.mu.Lock()
	f.at = append(f.at, time.Now())
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	f.mu.Unlock()
	if req.Stream != nil {
		for range f.chunks {
			if serr := req.Stream(ctx, middleware.Chunk{Content: "Disk "}); serr != nil {
				return nil, serr
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "Disk at 42%."}}, nil
}

func (f *fake) calls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

func fail(kind error) error {
	return &middleware.ProviderError{Kind: kind, Provider: "openai", Model: "gpt-4o", StatusCode: 503}
}

func request() *middleware.Request {
	return &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "How full is the disk?"}}}
}

// half is a jitter source that always draws 0.5: backoff n waits half of
// min(MaxDelay, BaseDelay·2^(n-1)).
func half() float64 { return 0.5 }

// Every transient kind is retried with a growing backoff, and the waits
// are reported in Retrying events and in the call's facts.
func TestRetriesTransientKindsWithBackoff(t *testing.T) {
	t.Parallel()
	for _, kind := range []error{middleware.ErrRateLimited, middleware.ErrUnavailable, middleware.ErrTimeout,
		middleware.ErrNetwork, middleware.ErrStreamCut} {
		t.Run(kind.Error(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				rec := &middlewaretest.Recorder{}
				info := &middleware.CallInfo{}
				ctx := middleware.WithCallInfo(middleware.WithObserver(context.Background(), rec), info)
				f := &fake{errs: []error{fail(kind), fail(kind), fail(kind)}}
				h := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 4, BaseDelay: time.Second, MaxDelay: 3 * time.Second},
					retry.WithJitter(half)))(f)
				start := time.Now()
				resp, err := h.Handle(ctx, request())
				if err != nil || resp.Message.Content != "Disk at 42%." {
					t.Fatalf("Handle = %v, %v; want the answer of the 4th attempt", resp, err)
				}
				at := f.calls()
				want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3000 * time.Millisecond}
				if len(at) != len(want) {
					t.Fatalf("%d attempts, want %d", len(at), len(want))
				}
				for i, w := range want {
					if got := at[i].Sub(start); got != w {
						t.Errorf("attempt %d at %v, want %v (backoffs 0.5s, 1s, 1.5s capped)", i+1, got, w)
					}
				}
				ev := middlewaretest.Of[middleware.Retrying](rec)
				if len(ev) != 3 || ev[0].Wait != 500*time.Millisecond || ev[2].Attempt != 3 || !errors.Is(ev[2].Err, kind) {
					t.Errorf("Retrying events %+v", ev)
				}
				if r := info.Facts().Retries; len(r) != 3 || r[1].Wait != time.Second {
					t.Errorf("call facts' retries %+v", r)
				}
			})
		})
	}
}

// A provider's Retry-After replaces the backoff; one longer than MaxDelay
// is not waited for.
func TestHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		limited := &middleware.ProviderError{Kind: middleware.ErrRateLimited, StatusCode: 429, RetryAfter: 7 * time.Second}
		f := &fake{errs: []error{limited}}
		h := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3, MaxDelay: 10 * time.Second}, retry.WithJitter(half)))(f)
		start := time.Now()
		if _, err := h.Handle(context.Background(), request()); err != nil {
			t.Fatal(err)
		}
		if at := f.calls(); len(at) != 2 || at[1].Sub(start) != 7*time.Second {
			t.Fatalf("attempts at %v, want the second 7s after the first", at)
		}

		tooLong := &middleware.ProviderError{Kind: middleware.ErrRateLimited, StatusCode: 429, RetryAfter: time.Minute}
		f = &fake{errs: []error{tooLong}}
		h = middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3, MaxDelay: 10 * time.Second}))(f)
		start = time.Now()
		if _, err := h.Handle(context.Background(), request()); err != tooLong {
			t.Fatalf("err = %v, want the provider's own error", err)
		}
		if len(f.calls()) != 1 || time.Since(start) != 0 {
			t.Fatalf("%d attempts after %v, want 1 at once (a minute is over MaxDelay)", len(f.calls()), time.Since(start))
		}
	})
}

// Permanent errors, budget refusals and cancellations are returned at
// once, unchanged.
func TestStopsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{fail(middleware.ErrBadRequest), fail(middleware.ErrAuth), fail(middleware.ErrContextWindow),
		fail(middleware.ErrContentFilter), fail(middleware.ErrQuotaExceeded), fail(middleware.ErrMalformed),
		fmt.Errorf("run limit: %w", middleware.ErrBudget), context.Canceled, errors.New("another layer refused")} {
		f := &fake{errs: []error{err}}
		h := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 5}))(f)
		if _, got := h.Handle(context.Background(), request()); got != err {
			t.Errorf("%v: got %v, want the error unchanged", err, got)
		}
		if n := len(f.calls()); n != 1 {
			t.Errorf("%v: %d attempts, want 1", err, n)
		}
	}
}

// After MaxAttempts the last error is returned; the waits never outlast
// the call's deadline or MaxTotalWait.
func TestGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		always := func() *fake {
			return &fake{errs: []error{fail(middleware.ErrUnavailable), fail(middleware.ErrUnavailable),
				fail(middleware.ErrUnavailable), fail(middleware.ErrUnavailable), fail(middleware.ErrUnavailable)}}
		}
		f := always()
		h := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3, BaseDelay: time.Second}, retry.WithJitter(half)))(f)
		if _, err := h.Handle(context.Background(), request()); !errors.Is(err, middleware.ErrUnavailable) || len(f.calls()) != 3 {
			t.Fatalf("%v after %d attempts, want the provider's error after 3", err, len(f.calls()))
		}

		// Backoffs of 0.5s, 1s, 2s, 4s: a total wait cap of 2s allows the
		// first two (1.5s), not the third.
		f = always()
		h = middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 5, BaseDelay: time.Second, MaxTotalWait: 2 * time.Second},
			retry.WithJitter(half)))(f)
		if _, err := h.Handle(context.Background(), request()); !errors.Is(err, middleware.ErrUnavailable) || len(f.calls()) != 3 {
			t.Fatalf("MaxTotalWait: %v after %d attempts, want 3", err, len(f.calls()))
		}

		// A deadline 1.2s away allows the 0.5s wait, not the next 1s one.
		f = always()
		h = middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 5, BaseDelay: time.Second}, retry.WithJitter(half)))(f)
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := h.Handle(ctx, request()); !errors.Is(err, middleware.ErrUnavailable) || len(f.calls()) != 2 {
			t.Fatalf("deadline: %v after %d attempts, want the provider's error after 2", err, len(f.calls()))
		}
		if time.Since(start) != 500*time.Millisecond {
			t.Fatalf("returned after %v, want 500ms (no wait into the deadline)", time.Since(start))
		}
	})
}

// A stream that has sent a chunk to the caller is never retried (the
// caller would see its text twice); one that failed before its first
// chunk is.
func TestNeverRetriesAStartedStream(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got int
		req := request()
		req.Stream = func(context.Context, middleware.Chunk) error { got++; return nil }
		h := func(f *fake) middleware.Handler {
			return middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3}, retry.WithJitter(half)))(f)
		}

		started := &fake{errs: []error{fail(middleware.ErrStreamCut)}, chunks: 2}
		if _, err := h(started).Handle(context.Background(), req); !errors.Is(err, middleware.ErrStreamCut) {
			t.Fatalf("cut stream: %v, want the cut", err)
		}
		if len(started.calls()) != 1 || got != 2 {
			t.Fatalf("cut stream: %d attempts, %d chunks; want 1 attempt, 2 chunks", len(started.calls()), got)
		}

		got = 0
		early := &fake{errs: []error{fail(middleware.ErrUnavailable)}}
		if _, err := h(early).Handle(context.Background(), req); err != nil {
			t.Fatalf("stream refused before its first chunk: %v, want the retry's answer", err)
		}
		if len(early.calls()) != 2 {
			t.Fatalf("stream refused before its first chunk: %d attempts, want 2", len(early.calls()))
		}
	})
}

// A call cancelled during the backoff returns the provider's error at
// once.
func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := &fake{errs: []error{fail(middleware.ErrUnavailable), fail(middleware.ErrUnavailable)}}
		h := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3, BaseDelay: 10 * time.Second}, retry.WithJitter(half)))(f)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		if _, err := h.Handle(ctx, request()); !errors.Is(err, middleware.ErrUnavailable) {
			t.Fatalf("err = %v, want the provider's error", err)
		}
		if time.Since(start) != time.Second || len(f.calls()) != 1 {
			t.Fatalf("returned after %v and %d attempts, want 1s and 1", time.Since(start), len(f.calls()))
		}
	})
}

// One attempt adds no layer; a negative field is ErrConfig.
func TestConfig(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1} {
		if mw := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: n})); mw != nil {
			t.Errorf("MaxAttempts %d: a layer, want none", n)
		}
	}
	for _, c := range []retry.Config{{MaxAttempts: -1}, {MaxAttempts: 2, BaseDelay: -1}, {MaxAttempts: 2, MaxTotalWait: -1}} {
		if _, err := retry.New(c); !errors.Is(err, retry.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
}
