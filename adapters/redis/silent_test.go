package redis_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	twredis "github.com/tokenwise/tokenwise/adapters/redis"
)

// silentRedis returns a client of a server that accepts connections and
// never answers (a stopped Redis, a black-holed network).
func silentRedis(t *testing.T) *goredis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	c := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), ContextTimeoutEnabled: true})
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return c
}

// The response cache and the breakers' shared state are helpers: with a
// Redis that does not answer, each command gives up after a short timeout
// of its own (not the call's deadline, nor go-redis's seconds), names the
// key, and the store then skips Redis for a while, failing at once with
// ErrUnreachable.
func TestHelperStoresGiveUpOnASilentRedis(t *testing.T) {
	c := silentRedis(t)
	cs := twredis.NewCacheStore(c, "")
	bs := twredis.NewBreakerStore(c, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, op := range []struct {
		name string
		call func() error
	}{
		{"cache get", func() error { _, err := cs.Get(ctx, 7); return err }},
		{"breaker read", func() error { _, err := bs.OpenUntil(ctx, "gpt-4o"); return err }},
	} {
		start := time.Now()
		err := op.call()
		if el := time.Since(start); err == nil || el > 1500*time.Millisecond {
			t.Fatalf("%s on a silent Redis: %v after %v, want an error within its short timeout", op.name, err, el)
		}
		if errors.Is(err, twredis.ErrUnreachable) || !strings.Contains(err.Error(), "tokenwise/redis") {
			t.Errorf("%s: first failure %v, want the command's own error naming the key", op.name, err)
		}
		start = time.Now()
		err = op.call()
		if !errors.Is(err, twredis.ErrUnreachable) || time.Since(start) > 100*time.Millisecond {
			t.Errorf("%s right after: %v after %v, want ErrUnreachable at once", op.name, err, time.Since(start))
		}
	}
}

// An error Redis replied (a cache key of the wrong type, left by another
// program) or a value that does not parse (a breaker key holding "abc")
// is that key's failure, not a sign of an unreachable Redis: the next
// command asks Redis again.
func TestReplyErrorsAreNoOutage(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	cs := twredis.NewCacheStore(c, prefix)
	ctx := context.Background()
	if err := c.HSet(ctx, cs.Key(1), "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := cs.Get(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), cs.Key(1)) {
		t.Fatalf("get of a hash key: %v, want WRONGTYPE naming %s", err, cs.Key(1))
	}
	if e, err := cs.Get(ctx, 2); e != nil || err != nil {
		t.Fatalf("the next lookup: %v %v, want a plain miss", e, err)
	}
	// A breaker's end of open period that another program overwrote.
	bs := twredis.NewBreakerStore(c, prefix)
	if err := c.Set(ctx, prefix+":breaker:open:gpt-4o", "abc", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.OpenUntil(ctx, "gpt-4o"); err == nil || errors.Is(err, twredis.ErrUnreachable) {
		t.Fatalf("a breaker key holding abc: %v, want a parse error", err)
	}
	if until, err := bs.OpenUntil(ctx, "gpt-4o-mini"); err != nil || !until.IsZero() {
		t.Fatalf("another model's breaker after it: %v %v, want closed (Redis answered)", until, err)
	}
}
