package redis_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/sony/gobreaker/v2"

	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// The store keeps data under its prefix, its lock excludes a second
// holder (of this or another client) until released, and a released
// lock can be taken again.
func TestBreakerStoreLockAndData(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	a, b := twredis.NewBreakerStore(c, prefix), twredis.NewBreakerStore(c, prefix)
	if d, err := a.GetData("gobreaker:state:m"); err != nil || d != nil {
		t.Fatalf("empty: %q, %v", d, err)
	}
	if err := a.SetData("gobreaker:state:m", []byte(`{"state":2}`)); err != nil {
		t.Fatal(err)
	}
	if d, err := b.GetData("gobreaker:state:m"); err != nil || string(d) != `{"state":2}` {
		t.Fatalf("read by another store: %q, %v", d, err)
	}
	if n, _ := c.Exists(context.Background(), prefix+":breaker:gobreaker:state:m").Result(); n != 1 {
		t.Fatalf("the state is not under the prefix")
	}
	if err := a.Lock("mu"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock("mu"); !errors.Is(err, twredis.ErrLockBusy) {
		t.Fatalf("second holder: %v, want ErrLockBusy", err)
	}
	if err := b.Unlock("mu"); err != nil { // b does not hold it: no effect
		t.Fatal(err)
	}
	if err := b.Lock("mu"); !errors.Is(err, twredis.ErrLockBusy) {
		t.Fatalf("a's lock released by b's unlock: %v", err)
	}
	if err := a.Unlock("mu"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock("mu"); err != nil {
		t.Fatalf("after the release: %v", err)
	}
	_ = b.Unlock("mu")
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
	if st := b.State("gpt-4o"); st != gobreaker.StateOpen.String() {
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
