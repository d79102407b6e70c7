package redis_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
)

// A call whose token need is beyond any limit (n × max_tokens saturated at
// the int64 range, a hostile max_tokens) is admitted by the Redis store as
// by the in-memory one: on an idle limit, running it into debt, so the
// next call is refused by tpm — never a store failure (which fails closed
// with "store" and 1s to wait, forever, or admits it by the local share).
func TestRedisHugeTokenNeedIsAdmittedAsInMemory(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	for _, need := range []int64{math.MaxInt64, 1 << 62, 1 << 50} {
		for name, store := range map[string]ratelimit.Store{"memory": ratelimit.NewMemoryStore(), "redis": redis.NewRateLimitStore(c)} {
			l, err := ratelimit.New(ratelimit.Config{
				Models:    map[string]ratelimit.ModelLimit{"m": {RPM: 600, TPM: 100_000}},
				OnLimit:   ratelimit.OnLimitReject,
				KeyPrefix: prefix + "-" + name + "-" + time.Duration(need).String(),
			}, ratelimit.WithStore(store))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tk, err := l.Reserve(ctx, "m", "", need)
			if err != nil {
				t.Errorf("%s: a need of %d tokens on an idle limit: %v, want admitted", name, need, err)
				continue
			}
			tk.Done(ctx, -1, 1)
			_, err = l.Reserve(ctx, "m", "", 10)
			var re *ratelimit.Error
			if !errors.As(err, &re) || !errors.Is(err, middleware.ErrRateLimited) || re.Limit != "tpm" || re.Err != nil {
				t.Errorf("%s: the call after a need of %d tokens: %v, want refused by tpm", name, need, err)
			}
		}
	}
}
