package redis_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// The store keeps the end of a model's open period under its prefix,
// in milliseconds rounded up, expiring then; a later end replaces it, an
// earlier one does not; another store on the same Redis reads it.
func TestBreakerStoreKeepsTheLaterOpening(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	ctx := context.Background()
	a, b := twredis.NewBreakerStore(c, prefix), twredis.NewBreakerStore(c, prefix)
	if u, err := a.OpenUntil(ctx, "m"); err != nil || !u.IsZero() {
		t.Fatalf("never opened: %v, %v", u, err)
	}
	end := time.Now().Add(time.Minute).Truncate(time.Millisecond).Add(300 * time.Microsecond)
	if err := a.Open(ctx, "m", end); err != nil {
		t.Fatal(err)
	}
	if u, err := b.OpenUntil(ctx, "m"); err != nil || !u.Equal(end.Truncate(time.Millisecond).Add(time.Millisecond)) {
		t.Fatalf("read by another store: %v, %v; want %v rounded up", u, err, end)
	}
	if err := b.Open(ctx, "m", end.Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.OpenUntil(ctx, "m"); u.Before(end) {
		t.Fatalf("an earlier end replaced a later one: %v", u)
	}
	if err := b.Open(ctx, "m", end.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.OpenUntil(ctx, "m"); u.Before(end.Add(time.Minute)) {
		t.Fatalf("a later end did not replace an earlier one: %v", u)
	}
	ttl, err := c.PTTL(ctx, prefix+":breaker:open:m").Result()
	if err != nil || ttl < time.Minute || ttl > 2*time.Minute+time.Second {
		t.Fatalf("the key expires in %v (%v), want at the end of the open period", ttl, err)
	}
	if u, _ := a.OpenUntil(ctx, "other"); !u.IsZero() {
		t.Fatalf("another model: %v", u)
	}
}

// Two breaker Sets on one Redis (two replicas): failures seen by one open
// the model's breaker in the other.
func TestBreakerSharedThroughRedis(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	s := breaker.Config{ConsecutiveFailures: 2}
	a := mustSet(t, s, breaker.WithSharedStore(twredis.NewBreakerStore(c, prefix)))
	b := mustSet(t, s, breaker.WithSharedStore(twredis.NewBreakerStore(c, prefix)))
	fail := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: http.StatusBadGateway}
	})
	req := &middleware.Request{Model: "gpt-4o"}
	for range 2 {
		if _, err := a.Middleware()(fail).Handle(context.Background(), req); !errors.Is(err, middleware.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	called := false
	ok := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		called = true
		return &middleware.Response{}, nil
	})
	if _, err := b.Middleware()(ok).Handle(context.Background(), req); !errors.Is(err, breaker.ErrOpen) || called {
		t.Fatalf("b: err = %v (called %v), want ErrOpen without a call", err, called)
	}
	if st := b.State("gpt-4o"); st != "open" {
		t.Fatalf("b's state: %s", st)
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

// BenchmarkSharedBreakerRedis: calls of one model through a breaker whose
// state Redis shares, 32 at once (-cpu 2): what the shared state costs a
// call (the call itself is instant).
func BenchmarkSharedBreakerRedis(b *testing.B) {
	c := testRedis(b)
	prefix := testPrefix(b, c)
	s, err := breaker.New(breaker.Config{ConsecutiveFailures: 5}, breaker.WithSharedStore(twredis.NewBreakerStore(c, prefix)))
	if err != nil {
		b.Fatal(err)
	}
	h := s.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{}, nil
	}))
	req := &middleware.Request{Model: "gpt-4o"}
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Handle(context.Background(), req); err != nil {
				b.Error(err)
			}
		}
	})
}
