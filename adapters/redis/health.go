package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A store that is only an optimisation or a hint (the response cache, the
// breakers' shared state) must not make calls slow or fail when Redis
// does not answer: each of its commands is bounded by a short timeout of
// its own, and after a command that found Redis unreachable (a timeout, a
// refused or broken connection) the store does not try Redis again for
// downFor, answering at once with an error (its caller then does without
// it: a cache miss, the replica's own breaker). An error Redis replied
// (WRONGTYPE, ...) is no sign of an unreachable server.
const (
	// cacheOpTimeout bounds each command of a CacheStore.
	cacheOpTimeout = 500 * time.Millisecond
	// breakerReadTimeout bounds the read of a breaker's shared state, made
	// before every call.
	breakerReadTimeout = 250 * time.Millisecond
	// downFor is how long a store skips Redis after finding it unreachable.
	downFor = time.Second
)

// ErrUnreachable: a store skipped Redis, which did not answer a moment
// ago.
var ErrUnreachable = errors.New("tokenwise/redis: Redis did not answer a moment ago; not retried yet")

// health remembers until when Redis is taken for unreachable.
type health struct {
	until atomic.Int64 // Unix nanoseconds
}

// check returns ErrUnreachable (naming key) while Redis is taken for
// unreachable.
func (h *health) check(key string) error {
	if time.Now().UnixNano() < h.until.Load() {
		return fmt.Errorf("%w (key %s)", ErrUnreachable, key)
	}
	return nil
}

// failed records the outcome err of a command run under parent: Redis is
// taken for unreachable when the command failed on the network (a
// timeout, a refused or broken connection), not when Redis replied an
// error or the value did not parse, nor when the caller's own context
// ended.
func (h *health) failed(parent context.Context, err error) {
	var ne net.Error
	if parent.Err() != nil || !(errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, goredis.ErrPoolTimeout)) {
		return
	}
	h.until.Store(time.Now().Add(downFor).UnixNano())
}
