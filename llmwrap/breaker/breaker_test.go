package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// fake is a provider that answers its calls with the scripted errors in
// turn (nil: an answer), and with answers once the script is spent.
type fake struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (f *fake) Handle(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
}

func (f *fake) script(errs ...error) {
	f.mu.Lock()
	f.errs = append(f.errs, errs...)
	f.mu.Unlock()
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func failure(kind error) error {
	return &middleware.ProviderError{Kind: kind, Provider: "openai", Model: "gpt-4o", StatusCode: 503}
}

func call(ctx context.Context, h middleware.Handler, model string) error {
	_, err := h.Handle(ctx, &middleware.Request{Model: model, Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "disk?"}}})
	return err
}

// transitions returns the recorded breaker changes as "model:from>to".
func transitions(rec *middlewaretest.Recorder) []string {
	var out []string
	for _, e := range middlewaretest.Of[middleware.BreakerChanged](rec) {
		out = append(out, fmt.Sprintf("%s:%s>%s", e.Model, e.From, e.To))
	}
	return out
}

// A model's breaker opens after ConsecutiveFailures, refuses calls without
// reaching the provider for OpenFor, then lets HalfOpenProbes probes
// through: a failed probe opens it again, successful probes close it.
// Another model's breaker is not affected.
func TestBreakerOpensHalfOpensAndCloses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &middlewaretest.Recorder{}
		ctx := middleware.WithObserver(context.Background(), rec)
		set, err := breaker.New(breaker.Config{ConsecutiveFailures: 3, OpenFor: 10 * time.Second, HalfOpenProbes: 2})
		if err != nil {
			t.Fatal(err)
		}
		f := &fake{}
		h := set.Middleware()(f)
		f.script(failure(middleware.ErrUnavailable), failure(middleware.ErrRateLimited), failure(middleware.ErrMalformed))
		for i := range 3 {
			if err := call(ctx, h, "gpt-4o"); !errors.Is(err, middleware.ErrUnavailable) && !errors.Is(err, middleware.ErrRateLimited) && !errors.Is(err, middleware.ErrMalformed) {
				t.Fatalf("call %d: %v, want the provider's error", i+1, err)
			}
		}
		if got := set.State("gpt-4o"); got != "open" {
			t.Fatalf("state after 3 failures = %q, want open", got)
		}
		err = call(ctx, h, "gpt-4o")
		var oe *breaker.OpenError
		if !errors.As(err, &oe) || !errors.Is(err, breaker.ErrOpen) || oe.Model != "gpt-4o" || oe.State != "open" {
			t.Fatalf("call on an open breaker: %v, want an OpenError for gpt-4o", err)
		}
		if f.count() != 3 {
			t.Fatalf("the provider saw %d calls, want 3 (the open breaker refuses)", f.count())
		}
		if err := call(ctx, h, "gpt-4o-mini"); err != nil || set.State("gpt-4o-mini") != "closed" {
			t.Fatalf("another model: %v (state %s), want an answer", err, set.State("gpt-4o-mini"))
		}

		time.Sleep(10*time.Second + time.Millisecond) // gobreaker half-opens once OpenFor has passed
		if got := set.State("gpt-4o"); got != "half-open" {
			t.Fatalf("state after OpenFor = %q, want half-open", got)
		}
		f.script(failure(middleware.ErrUnavailable))
		if err := call(ctx, h, "gpt-4o"); !errors.Is(err, middleware.ErrUnavailable) {
			t.Fatalf("failed probe: %v", err)
		}
		if got := set.State("gpt-4o"); got != "open" {
			t.Fatalf("state after a failed probe = %q, want open", got)
		}

		time.Sleep(10*time.Second + time.Millisecond) // gobreaker half-opens once OpenFor has passed
		for i := range 2 {
			if err := call(ctx, h, "gpt-4o"); err != nil {
				t.Fatalf("probe %d: %v", i+1, err)
			}
		}
		if got := set.State("gpt-4o"); got != "closed" {
			t.Fatalf("state after 2 good probes = %q, want closed", got)
		}
		want := []string{"gpt-4o:closed>open", "gpt-4o:open>half-open", "gpt-4o:half-open>open",
			"gpt-4o:open>half-open", "gpt-4o:half-open>closed"}
		if got := transitions(rec); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	})
}

// While the probes are out, further calls are refused as half-open.
func TestHalfOpenRefusesBeyondTheProbes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		set, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		calls := 0
		slow := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			calls++
			if calls == 1 {
				return nil, failure(middleware.ErrUnavailable)
			}
			<-release
			return &middleware.Response{Model: req.Model}, nil
		})
		h := set.Middleware()(slow)
		_ = call(context.Background(), h, "gpt-4o")
		time.Sleep(time.Second + time.Millisecond)
		done := make(chan error)
		go func() { done <- call(context.Background(), h, "gpt-4o") }()
		synctest.Wait() // the probe is with the provider
		var oe *breaker.OpenError
		if err := call(context.Background(), h, "gpt-4o"); !errors.As(err, &oe) || oe.State != "half-open" {
			t.Fatalf("second call during the probe: %v, want a half-open refusal", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("probe: %v", err)
		}
		if set.State("gpt-4o") != "closed" {
			t.Fatalf("state %s, want closed", set.State("gpt-4o"))
		}
	})
}

// Only the provider's faults count. A caller's cancellation, a budget
// refusal or another layer's error is not counted at all (it neither
// trips nor resets the run of failures); a request the model answered
// with a client error (bad request, auth, context window, content filter,
// quota) counts as a success and resets the run.
func TestBreakerCountsOnlyProviderFaults(t *testing.T) {
	t.Parallel()
	fault := failure(middleware.ErrUnavailable)
	excluded := map[string]error{
		"cancelled":     context.Canceled,
		"budget":        fmt.Errorf("refused: %w", middleware.ErrBudget),
		"another layer": errors.New("guard: tool not allowed"),
	}
	answered := map[string]error{
		"bad request":    failure(middleware.ErrBadRequest),
		"auth":           failure(middleware.ErrAuth),
		"context window": failure(middleware.ErrContextWindow),
		"content filter": failure(middleware.ErrContentFilter),
		"quota":          failure(middleware.ErrQuotaExceeded),
	}
	run := func(t *testing.T, between error) string {
		set, err := breaker.New(breaker.Config{ConsecutiveFailures: 2})
		if err != nil {
			t.Fatal(err)
		}
		f := &fake{}
		h := set.Middleware()(f)
		// Many of the neutral error alone never trip the breaker.
		for range 5 {
			f.script(between)
			_ = call(context.Background(), h, "gpt-4o")
		}
		if set.State("gpt-4o") != "closed" {
			t.Fatalf("%v alone opened the breaker", between)
		}
		f.script(fault, between, fault)
		for range 3 {
			_ = call(context.Background(), h, "gpt-4o")
		}
		return set.State("gpt-4o")
	}
	for name, e := range excluded {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := run(t, e); got != "open" {
				t.Fatalf("failure, %s, failure: state %s, want open (not counted, the run goes on)", name, got)
			}
		})
	}
	for name, e := range answered {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := run(t, e); got != "closed" {
				t.Fatalf("failure, %s, failure: state %s, want closed (a success resets the run)", name, got)
			}
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		set, err := breaker.New(breaker.Config{ConsecutiveFailures: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// The provider fails, but the caller had gone: not the provider's fault.
		_ = call(ctx, set.Middleware()(&fake{errs: []error{fault}}), "gpt-4o")
		if set.State("gpt-4o") != "closed" {
			t.Fatal("a failure after the caller cancelled opened the breaker")
		}
	})
}

// FailureRatio trips on a failure once MinRequests calls in the window
// failed in that proportion, and not before MinRequests.
func TestFailureRatio(t *testing.T) {
	t.Parallel()
	set, err := breaker.New(breaker.Config{FailureRatio: 0.5, MinRequests: 4})
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{}
	h := set.Middleware()(f)
	fault := failure(middleware.ErrUnavailable)
	f.script(fault, nil, fault)
	for i := range 3 {
		_ = call(context.Background(), h, "gpt-4o")
		if set.State("gpt-4o") != "closed" {
			t.Fatalf("opened after %d calls, before MinRequests", i+1)
		}
	}
	f.script(fault)
	_ = call(context.Background(), h, "gpt-4o")
	if set.State("gpt-4o") != "open" {
		t.Fatalf("3 failures in 4 calls at ratio 0.5: state %s, want open", set.State("gpt-4o"))
	}
}

// A Config that trips on nothing adds no layer; a bad one is ErrConfig.
func TestConfig(t *testing.T) {
	t.Parallel()
	set, err := breaker.New(breaker.Config{})
	if err != nil || set.Middleware() != nil {
		t.Fatalf("zero Config: %v, middleware %v; want no layer", err, set.Middleware() != nil)
	}
	for _, c := range []breaker.Config{{ConsecutiveFailures: -1}, {FailureRatio: 1.5}, {ConsecutiveFailures: 1, OpenFor: -time.Second}} {
		if _, err := breaker.New(c); !errors.Is(err, breaker.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

// FailureRatio is the failures' share of the calls that count: calls not
// counted (cancelled by their caller, a hedge that lost, a budget
// refusal) neither dilute it nor make up MinRequests. Five failures in
// five counted calls, between five cancelled ones, trip a breaker of
// ratio 0.6; before, the cancelled calls counted as requests, and the
// ratio read 5/10.
func TestFailureRatioIgnoresCallsNotCounted(t *testing.T) {
	t.Parallel()
	set, err := breaker.New(breaker.Config{FailureRatio: 0.6, MinRequests: 5})
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{}
	h := set.Middleware()(f)
	fault := failure(middleware.ErrUnavailable)
	for range 5 {
		f.script(context.Canceled, fault)
		_ = call(context.Background(), h, "gpt-4o")
		_ = call(context.Background(), h, "gpt-4o")
	}
	if got := set.State("gpt-4o"); got != "open" {
		t.Fatalf("5 failures in 5 counted calls (and 5 cancelled) at ratio 0.6: state %s, want open", got)
	}
	// Cancelled calls alone never make up MinRequests.
	set, err = breaker.New(breaker.Config{FailureRatio: 0.25, MinRequests: 4})
	if err != nil {
		t.Fatal(err)
	}
	f = &fake{}
	h = set.Middleware()(f)
	f.script(context.Canceled, context.Canceled, context.Canceled, fault)
	for range 4 {
		_ = call(context.Background(), h, "gpt-4o")
	}
	if got := set.State("gpt-4o"); got != "closed" {
		t.Fatalf("1 failure in 1 counted call (and 3 cancelled; MinRequests 4): state %s, want closed", got)
	}
}
