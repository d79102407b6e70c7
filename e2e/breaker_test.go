package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func user(text string) *middleware.Request {
	return &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: text}}}
}

func count(srv *openaitest.Server, model string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Chat != nil && r.Chat.Model == model {
			n++
		}
	}
	return n
}

// Must show: a dead primary opens its breaker after N failures; further
// calls go straight to the fallback without touching the primary; after the
// open duration one probe is let through.
func TestDeadPrimaryOpensTheBreaker(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Unavailable()).Times(4)
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("primary is back"))
		srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Text("from the fallback"))
		ev := &events{}
		set := newSet(t, breaker.Config{ConsecutiveFailures: 3, OpenFor: 30 * time.Second})
		h := middleware.Then(twopenai.NewProvider(srv.URL, "sk-test", twopenai.WithBaseTransport(srv.Transport())),
			instrument.New(nil, ev),
			middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}})),
			set.Middleware())
		call := func() (*middleware.Response, error) { return h.Handle(context.Background(), user("status?")) }

		for i := range 3 {
			resp, err := call()
			if err != nil || resp.Message.Content != "from the fallback" {
				t.Fatalf("call %d: %v, %v", i+1, resp, err)
			}
		}
		if got := count(srv, "gpt-4o"); got != 3 {
			t.Fatalf("primary saw %d requests, want 3", got)
		}
		if st := set.State("gpt-4o"); st != "open" {
			t.Fatalf("state %s after 3 failures, want open", st)
		}
		if e := ev.take(); len(e) != 1 || e[0] != (middleware.BreakerChanged{Model: "gpt-4o", From: "closed", To: "open"}) {
			t.Fatalf("events %+v", e)
		}

		start := time.Now()
		for range 5 {
			if resp, err := call(); err != nil || resp.Message.Content != "from the fallback" {
				t.Fatalf("open breaker: %v, %v", resp, err)
			}
		}
		if time.Since(start) != 0 {
			t.Errorf("skipping an open breaker took %v, want no wait", time.Since(start))
		}
		if got := count(srv, "gpt-4o"); got != 3 {
			t.Fatalf("an open breaker let %d requests reach the primary", got-3)
		}

		// After the open period one probe goes through; it fails: open again.
		<-time.After(30*time.Second + time.Millisecond) // gobreaker: open until strictly after OpenFor
		if _, err := call(); err != nil {
			t.Fatal(err)
		}
		if got := count(srv, "gpt-4o"); got != 4 {
			t.Fatalf("primary saw %d requests, want 4 (one probe)", got)
		}
		if e := ev.take(); len(e) != 2 || e[0].To != "half-open" || e[1] != (middleware.BreakerChanged{Model: "gpt-4o", From: "half-open", To: "open"}) {
			t.Fatalf("events %+v", e)
		}
		call()
		if got := count(srv, "gpt-4o"); got != 4 {
			t.Fatalf("reopened breaker let a request through")
		}

		// Next probe succeeds: closed, the primary answers again.
		<-time.After(30*time.Second + time.Millisecond) // gobreaker: open until strictly after OpenFor
		resp, err := call()
		if err != nil || resp.Message.Content != "primary is back" {
			t.Fatalf("probe: %v, %v", resp, err)
		}
		if set.State("gpt-4o") != "closed" {
			t.Fatalf("state %s after a good probe", set.State("gpt-4o"))
		}
		if e := ev.take(); len(e) != 2 || e[1].To != "closed" {
			t.Fatalf("events %+v", e)
		}
	})
}

func fake(fail *error) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
		if *fail != nil {
			return nil, *fail
		}
		return &middleware.Response{}, nil
	})
}

// Cancellations, budget refusals and client errors never trip the breaker.
func TestWhatCounts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		set := newSet(t, breaker.Config{ConsecutiveFailures: 2})
		var fail error
		h := set.Middleware()(fake(&fail))
		for _, err := range []error{
			context.Canceled,
			&middleware.ProviderError{Kind: middleware.ErrBudget},
			&middleware.ProviderError{Kind: middleware.ErrBadRequest, StatusCode: 400},
			&middleware.ProviderError{Kind: middleware.ErrAuth, StatusCode: 401},
			&middleware.ProviderError{Kind: middleware.ErrContextWindow, StatusCode: 400},
		} {
			fail = err
			for range 5 {
				h.Handle(context.Background(), user("x"))
			}
			if st := set.State("gpt-4o"); st != "closed" {
				t.Fatalf("%v tripped the breaker", err)
			}
		}
		// A failure while the caller's context is ending is not counted either.
		fail = &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: 503}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for range 5 {
			h.Handle(ctx, user("x"))
		}
		if st := set.State("gpt-4o"); st != "closed" {
			t.Fatal("failures of a cancelled call tripped the breaker")
		}
		h.Handle(context.Background(), user("x"))
		_, err := h.Handle(context.Background(), user("x"))
		if !errors.Is(err, middleware.ErrUnavailable) || set.State("gpt-4o") != "open" {
			t.Fatalf("two 503s: %v, state %s", err, set.State("gpt-4o"))
		}
		_, err = h.Handle(context.Background(), user("x"))
		var oe *breaker.OpenError
		if !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &oe) || oe.Model != "gpt-4o" {
			t.Fatalf("open breaker returned %v", err)
		}
		if set.State("gpt-4o-mini") != "closed" {
			t.Fatal("breakers are per model")
		}
	})
}

func TestFailureRatioOverWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		set := newSet(t, breaker.Config{FailureRatio: 0.5, MinRequests: 4, Window: 10 * time.Second})
		var fail error
		h := set.Middleware()(fake(&fail))
		bad := &middleware.ProviderError{Kind: middleware.ErrUnavailable}
		// ok, bad, ok, bad -> 2/4 = 0.5: trips on the 4th.
		for i, e := range []error{nil, bad, nil} {
			fail = e
			h.Handle(context.Background(), user("x"))
			if set.State("gpt-4o") != "closed" {
				t.Fatalf("tripped after call %d", i+1)
			}
		}
		// The window rolls: after 10s the old counts are gone.
		<-time.After(11 * time.Second)
		fail = bad
		h.Handle(context.Background(), user("x"))
		if set.State("gpt-4o") != "closed" {
			t.Fatal("counts older than the window tripped the breaker")
		}
		fail = nil
		h.Handle(context.Background(), user("x"))
		h.Handle(context.Background(), user("x"))
		fail = bad
		h.Handle(context.Background(), user("x"))
		if set.State("gpt-4o") != "open" {
			t.Fatalf("2 failures in 4 requests did not trip at ratio 0.5: %s", set.State("gpt-4o"))
		}
	})
}

// A stream is judged when it ends: a stream cut mid-way is a failure even
// though chunks were delivered.
func TestStreamJudgedAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.CutAfter(3))
		set := newSet(t, breaker.Config{ConsecutiveFailures: 1})
		h := set.Middleware()(twopenai.NewProvider(srv.URL, "k", twopenai.WithBaseTransport(srv.Transport())))
		req := user("x")
		chunks := 0
		req.Stream = func(ctx context.Context, c middleware.Chunk) error {
			chunks++
			if st := set.State("gpt-4o"); st != "closed" {
				t.Errorf("judged before the end: %s", st)
			}
			return nil
		}
		_, err := h.Handle(context.Background(), req)
		if !errors.Is(err, middleware.ErrStreamCut) || chunks == 0 || set.State("gpt-4o") != "open" {
			t.Fatalf("err %v, %d chunks, state %s", err, chunks, set.State("gpt-4o"))
		}
	})
}

func TestHalfOpenProbesLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		set := newSet(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Second, HalfOpenProbes: 2})
		release := make(chan struct{})
		var fail error = &middleware.ProviderError{Kind: middleware.ErrUnavailable}
		slow := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			if fail != nil {
				return nil, fail
			}
			<-release
			return &middleware.Response{}, nil
		})
		h := set.Middleware()(slow)
		h.Handle(context.Background(), user("x"))
		<-time.After(2 * time.Second)
		fail = nil
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { h.Handle(context.Background(), user("x")) })
		}
		synctest.Wait()
		if _, err := h.Handle(context.Background(), user("x")); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("third concurrent probe: %v, want refused", err)
		}
		close(release)
		wg.Wait()
		if set.State("gpt-4o") != "closed" {
			t.Fatalf("two good probes left the breaker %s", set.State("gpt-4o"))
		}
	})
}

func newSet(t *testing.T, cfg breaker.Config) *breaker.Set {
	t.Helper()
	set, err := breaker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestOffAddsNoLayer(t *testing.T) {
	set := newSet(t, breaker.Config{OpenFor: time.Second})
	if set.Middleware() != nil || set.State("gpt-4o") != "closed" {
		t.Fatal("a breaker that trips on nothing must add no layer")
	}
}

func TestBadConfigIsAnError(t *testing.T) {
	for _, cfg := range []breaker.Config{{ConsecutiveFailures: -1}, {FailureRatio: 1.5}, {FailureRatio: -0.1},
		{ConsecutiveFailures: 1, MinRequests: -1}, {ConsecutiveFailures: 1, OpenFor: -1}, {ConsecutiveFailures: 1, HalfOpenProbes: -1},
		{ConsecutiveFailures: 1, Window: -time.Second}} {
		if _, err := breaker.New(cfg); !errors.Is(err, breaker.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}
