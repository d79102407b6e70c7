package redis_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRedisReloadToAShorterTTLHolds: a reload that shortens cache.ttl holds
// the answers a Redis store kept before it to the new TTL, as a memory
// store does (TestReloadToAShorterTTLHolds): an answer older than the new
// TTL is not served, though Redis keeps it for the TTL it was stored with;
// one younger than it still is.
func TestRedisReloadToAShorterTTLHolds(t *testing.T) {
	c := cacheRedis(t)
	prefix := cachePrefix(t, c)
	synctest.Test(t, func(t *testing.T) {
		rdb := goredis.NewClient(&goredis.Options{Addr: c.Options().Addr, MaxRetries: -1})
		defer rdb.Close()
		store := twredis.NewCacheStore(rdb, prefix)
		srv := openaitest.New()
		srv.Default(openaitest.Text("an answer"))
		client := func(ttl time.Duration) *openai.Client {
			pol := &policies.Policy{Version: policies.Version, Cache: policies.Cache{Enabled: true, Store: policies.StoreRedis, TTL: policies.Duration(ttl)}}
			cfg := openai.DefaultConfig("k")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = &http.Client{Transport: twopenai.NewTransport(llmwrap.MustBuild(pol, llmwrap.WithCacheStore(store)), twopenai.WithBaseTransport(srv.Transport()))}
			return openai.NewClientWithConfig(cfg)
		}
		ask := func(cl *openai.Client, want int, when string) {
			t.Helper()
			if _, err := cl.CreateChatCompletion(context.Background(), cacheRequest()); err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if n := srv.Count(); n != want {
				t.Fatalf("%s: %d provider calls, want %d", when, n, want)
			}
		}
		ask(client(24*time.Hour), 1, "under ttl: 24h")
		minute := client(time.Minute) // the reload
		time.Sleep(30 * time.Second)  // fake time
		ask(minute, 1, "a 30-second-old answer under ttl: 1m (a hit)")
		time.Sleep(90 * time.Second)
		ask(minute, 2, "a two-minute-old answer under ttl: 1m (a miss)")
		ask(minute, 2, "the answer stored again (a hit)")
	})
}
