package breaker_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// memStore is a SharedStore in memory, standing for Redis
// (adapters/redis.BreakerStore, tested against a real server there).
type memStore struct {
	mu    sync.Mutex
	until map[string]time.Time
	reads int
	down  bool // every call fails, like an unreachable Redis
}

func newMemStore() *memStore { return &memStore{until: map[string]time.Time{}} }

var errDown = errors.New("store down")

func (s *memStore) OpenUntil(_ context.Context, model string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.down {
		return time.Time{}, errDown
	}
	return s.until[model], nil
}

func (s *memStore) Open(_ context.Context, model string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	if until.After(s.until[model]) {
		s.until[model] = until
	}
	return nil
}

// Two Sets on one shared store are two replicas: the failures one replica
// sees open its breaker, and that opens the model's breaker in the other
// for the open period (it refuses calls without making them); each
// replica counts its own calls; after the open period the replica that
// tripped probes; a store that cannot answer leaves each replica to its
// own breaker.
func TestSharedStoreOpensEveryReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		cfg := breaker.Config{ConsecutiveFailures: 3, OpenFor: time.Minute}
		a, b := mustSet(t, cfg, breaker.WithSharedStore(st)), mustSet(t, cfg, breaker.WithSharedStore(st))
		calls := 0
		fail := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
			calls++
			return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: http.StatusServiceUnavailable}
		})
		ok := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
			calls++
			return &middleware.Response{Model: "m"}, nil
		})
		req := &middleware.Request{Model: "m"}
		ctx := context.Background()
		// Each replica counts its own calls: two failures in each, three
		// in a row in neither.
		for _, h := range []middleware.Handler{a.Middleware()(fail), b.Middleware()(fail), a.Middleware()(fail), b.Middleware()(fail)} {
			if _, err := h.Handle(ctx, req); errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("refused before a replica saw three failures in a row: %v", err)
			}
		}
		if a.State("m") != "closed" || b.State("m") != "closed" {
			t.Fatalf("states %s / %s after two failures in each, want closed", a.State("m"), b.State("m"))
		}
		// A third in a row in a: a opens, and so does b.
		if _, err := a.Middleware()(fail).Handle(ctx, req); errors.Is(err, breaker.ErrOpen) {
			t.Fatal(err)
		}
		if a.State("m") != "open" || b.State("m") != "open" {
			t.Fatalf("states %s / %s, want open in both", a.State("m"), b.State("m"))
		}
		before := calls
		for _, h := range []middleware.Handler{a.Middleware()(ok), b.Middleware()(ok)} {
			if _, err := h.Handle(ctx, req); !errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("err = %v through an open shared breaker, want ErrOpen", err)
			}
		}
		if calls != before {
			t.Fatalf("an open breaker let %d calls through", calls-before)
		}
		// Another model is not affected.
		if _, err := b.Middleware()(ok).Handle(ctx, &middleware.Request{Model: "other"}); err != nil {
			t.Fatalf("another model: %v", err)
		}
		// After the open period: b calls again, a probes and closes.
		time.Sleep(time.Minute + time.Second)
		for name, s := range map[string]*breaker.Set{"b": b, "a": a} {
			if _, err := s.Middleware()(ok).Handle(ctx, req); err != nil {
				t.Fatalf("%s after the open period: %v", name, err)
			}
		}
		if a.State("m") != "closed" || b.State("m") != "closed" {
			t.Fatalf("states %s / %s after a successful probe, want closed", a.State("m"), b.State("m"))
		}
		// A store that cannot answer: each replica's own breaker decides.
		down := newMemStore()
		down.down = true
		c := mustSet(t, cfg, breaker.WithSharedStore(down))
		if _, err := c.Middleware()(ok).Handle(ctx, req); err != nil {
			t.Fatalf("with the store down: %v, want the call through", err)
		}
		for range 3 {
			_, _ = c.Middleware()(fail).Handle(ctx, req)
		}
		if _, err := c.Middleware()(ok).Handle(ctx, req); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("with the store down, after three failures: %v, want this replica's breaker open", err)
		}
	})
}

// TestSharedStoreKeepsTheLaterOpening: a replica that trips later moves
// the shared open period on; one that trips earlier never shortens it.
func TestSharedStoreKeepsTheLaterOpening(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		fail := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
			return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: http.StatusBadGateway}
		})
		long := mustSet(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: 10 * time.Minute}, breaker.WithSharedStore(st))
		short := mustSet(t, breaker.Config{ConsecutiveFailures: 1, OpenFor: time.Minute}, breaker.WithSharedStore(st))
		req := &middleware.Request{Model: "m"}
		_, _ = long.Middleware()(fail).Handle(context.Background(), req)
		// short is refused by long's opening: it cannot trip, nor shorten it.
		_, _ = short.Middleware()(fail).Handle(context.Background(), req)
		time.Sleep(2 * time.Minute)
		if short.State("m") != "open" {
			t.Fatalf("2 minutes after a 10-minute opening: %s, want open", short.State("m"))
		}
	})
}

// mustSet is breaker.New for a Config the test knows is good.
func mustSet(t *testing.T, cfg breaker.Config, opts ...breaker.Option) *breaker.Set {
	t.Helper()
	s, err := breaker.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
