package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisAddr is the test server: TOKENWISE_REDIS_ADDR, default 127.0.0.1:6379.
func redisAddr() string {
	if a := os.Getenv("TOKENWISE_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// testRedis returns a client of the test Redis server, closed by
// t.Cleanup. When the server is unreachable the test is skipped, or fails
// when the CI environment variable is set.
func testRedis(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr(), PoolSize: 32})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is unreachable (CI is set): %v", redisAddr(), err)
		}
		t.Skipf("Redis at %s is unreachable (set TOKENWISE_REDIS_ADDR to run this test): %v", redisAddr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a key prefix unique to this test run, and deletes its
// keys at cleanup.
func testPrefix(t testing.TB, c *goredis.Client) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "twtest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "*"+p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
