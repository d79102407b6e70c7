package breaker_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// memStore is gobreaker's SharedDataStore in memory, standing for Redis
// (adapters/redis.BreakerStore, tested against a real server there).
type memStore struct {
	mu     sync.Mutex
	data   map[string][]byte
	locked map[string]bool
	down   bool // every call fails, like an unreachable Redis
}

func newMemStore() *memStore {
	return &memStore{data: map[string][]byte{}, locked: map[string]bool{}}
}

var errDown = errors.New("store down")

func (s *memStore) Lock(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	if s.locked[name] {
		return errors.New("locked")
	}
	s.locked[name] = true
	return nil
}

func (s *memStore) Unlock(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.locked, name)
	return nil
}

func (s *memStore) GetData(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errDown
	}
	return s.data[name], nil
}

func (s *memStore) SetData(name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	s.data[name] = append([]byte(nil), data...)
	return nil
}

// Two Sets on one shared store are two replicas: failures seen by one
// open the breaker in both; its successes count for both; a store that
// cannot answer lets calls through.
func TestSharedStoreOpensEveryReplica(t *testing.T) {
	st := newMemStore()
	s := breaker.Config{ConsecutiveFailures: 3, FailureRatio: 0.5, MinRequests: 4}
	a, b := mustSet(t, s, breaker.WithSharedStore(st)), mustSet(t, s, breaker.WithSharedStore(st))
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
	ha, hb := a.Middleware()(fail), b.Middleware()(fail)
	// Failures alternate between the replicas: neither sees three in a
	// row on its own, together they do.
	for _, h := range []middleware.Handler{ha, hb, ha} {
		if _, err := h.Handle(ctx, req); errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("refused before the breaker should open: %v", err)
		}
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
	if _, err := a.Middleware()(ok).Handle(ctx, &middleware.Request{Model: "other"}); err != nil {
		t.Fatalf("another model: %v", err)
	}
	// A store that cannot answer: the breaker fails open.
	down := newMemStore()
	down.down = true
	c := mustSet(t, s, breaker.WithSharedStore(down))
	if _, err := c.Middleware()(ok).Handle(ctx, req); err != nil {
		t.Fatalf("with the store down: %v, want the call through", err)
	}
	// The failure ratio counts each call once, not its admission too:
	// 1 failure in 4 calls and 2 in 5 keep a 0.5 breaker closed, 3 in 6
	// open it (counted with the admissions, 3 in 12 would not).
	st2 := newMemStore()
	r := mustSet(t, breaker.Config{FailureRatio: 0.5, MinRequests: 4}, breaker.WithSharedStore(st2))
	for _, h := range []middleware.Handler{r.Middleware()(ok), r.Middleware()(ok), r.Middleware()(ok), r.Middleware()(fail)} {
		_, _ = h.Handle(ctx, req)
	}
	if r.State("m") != "closed" {
		t.Fatalf("1 failure in 4 calls opened a 0.5 breaker")
	}
	_, _ = r.Middleware()(fail).Handle(ctx, req)
	if r.State("m") != "closed" {
		t.Fatalf("2 failures in 5 calls opened a 0.5 breaker")
	}
	_, _ = r.Middleware()(fail).Handle(ctx, req)
	if r.State("m") != "open" {
		t.Fatalf("3 failures in 6 calls: state %s, want open", r.State("m"))
	}
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
