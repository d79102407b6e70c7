package redis_test

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// cacheRedis returns a client of the test Redis server (TOKENWISE_REDIS_ADDR,
// default 127.0.0.1:6379), closed at the end of the test. It skips the
// test when the server is unreachable, unless CI is set.
func cacheRedis(t *testing.T) *goredis.Client {
	t.Helper()
	addr := os.Getenv("TOKENWISE_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is unreachable: %v", addr, err)
		}
		t.Skipf("Redis at %s is unreachable (set TOKENWISE_REDIS_ADDR): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// noLeaks checks, after every cleanup of the test, that it left no goroutine.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// cachePrefix is a key prefix of the test's own, with its keys deleted at the
// end of the test.
func cachePrefix(t *testing.T, c *goredis.Client) string {
	p := "tw-test-cache-" + t.Name() + "-" + time.Now().Format("150405.000000000")
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, p+":*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

// process is one replica: its own go-openai client and chain, sharing the
// Redis cache through its own Redis client.
func process(t *testing.T, srv *openaitest.Server, store cache.Store, opts ...llmwrap.Option) *openai.Client {
	t.Helper()
	pol := &policies.Policy{Version: policies.Version, Cache: policies.Cache{Enabled: true, Store: policies.StoreRedis}}
	chain := llmwrap.MustBuild(pol, append(opts, llmwrap.WithCacheStore(store))...)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg := openai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(base))
	return openai.NewClientWithConfig(cfg)
}

func cacheRequest() openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{Model: "gpt-4o-mini", Seed: new(1),
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "disk status?"}}}
}

// TestCacheStoreSharedByTwoProcesses: a second replica, with its own Redis
// client and chain, is served the first one's answer.
func TestCacheStoreSharedByTwoProcesses(t *testing.T) {
	noLeaks(t)
	a := cacheRedis(t)
	prefix := cachePrefix(t, a)
	b := cacheRedis(t)
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`)))
	pa := process(t, srv, twredis.NewCacheStore(a, prefix))
	pb := process(t, srv, twredis.NewCacheStore(b, prefix))
	ctx := context.Background()
	first, err := pa.CreateChatCompletion(ctx, cacheRequest())
	if err != nil {
		t.Fatal(err)
	}
	second, err := pb.CreateChatCompletion(ctx, cacheRequest())
	if err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 1 {
		t.Fatalf("the provider saw %d requests, want 1", srv.Count())
	}
	if second.Choices[0].Message.ToolCalls[0] != first.Choices[0].Message.ToolCalls[0] || second.Choices[0].FinishReason != first.Choices[0].FinishReason {
		t.Fatalf("replica b got %+v, want %+v", second.Choices[0], first.Choices[0])
	}
	// Another team does not see it (team scope by default).
	if _, err := pb.CreateChatCompletion(middleware.WithTeam(ctx, "other"), cacheRequest()); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 2 {
		t.Fatalf("another team was served the answer: %d provider requests", srv.Count())
	}
}

// TestCacheStoreTTL: the entry's TTL is the Redis key's expiry; once Redis
// expired it, the next call goes to the provider.
func TestCacheStoreTTL(t *testing.T) {
	noLeaks(t)
	c := cacheRedis(t)
	prefix := cachePrefix(t, c)
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "notify-keyspace-events", "Ex").Err(); err != nil {
		t.Skipf("cannot enable expiry notifications: %v", err)
	}
	sub := c.PSubscribe(ctx, "__keyevent@*__:expired")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("fine"))
	store := twredis.NewCacheStore(c, prefix)
	p := process(t, srv, store)
	// Long enough that the second call comes before it on a loaded machine
	// (300ms did not, once under -race); the expiry is awaited as an event.
	const ttl = 3 * time.Second
	if _, err := p.CreateChatCompletion(cache.WithTTL(ctx, ttl), cacheRequest()); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, prefix+":cache:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if d := c.PTTL(ctx, keys[0]).Val(); d <= 0 || d > ttl {
		t.Fatalf("Redis expiry %v, want (0, %v]", d, ttl)
	}
	if _, err := p.CreateChatCompletion(ctx, cacheRequest()); err != nil || srv.Count() != 1 {
		t.Fatalf("not a hit before the TTL: %v, %d provider requests", err, srv.Count())
	}
	// Wait for Redis to report the expiry (an event, not a sleep); the
	// timer only bounds a broken server.
	guard := time.NewTimer(30 * time.Second)
	defer guard.Stop()
	for expired := false; !expired; {
		select {
		case m := <-sub.Channel():
			expired = m.Payload == keys[0]
		case <-guard.C:
			t.Fatal("Redis never expired the entry")
		}
	}
	if _, err := p.CreateChatCompletion(ctx, cacheRequest()); err != nil || srv.Count() != 2 {
		t.Fatalf("after the TTL: %v, %d provider requests, want 2", err, srv.Count())
	}
}

// TestCacheStoreRedisDown: with Redis unreachable calls still succeed (fail
// open by default) and every failure is reported as a StoreFailed event.
func TestCacheStoreRedisDown(t *testing.T) {
	noLeaks(t)
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { down.Close() })
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("still works"))
	var mu sync.Mutex
	var failed []middleware.StoreFailed
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.StoreFailed); ok {
			mu.Lock()
			failed = append(failed, f)
			mu.Unlock()
		}
	})
	p := process(t, srv, twredis.NewCacheStore(down, "x"), llmwrap.WithObserver(obs))
	for range 2 {
		resp, err := p.CreateChatCompletion(context.Background(), cacheRequest())
		if err != nil || resp.Choices[0].Message.Content != "still works" {
			t.Fatalf("call failed with Redis down: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 4 || failed[0].Store != "cache" || failed[0].Op != "get" || failed[1].Op != "set" || failed[0].Err == nil {
		t.Fatalf("reported failures: %+v", failed)
	}
}

// TestCacheStoreHitIsLossless: through Redis too, a second replica's hit is
// the provider's body byte for byte (three choices with logprobs here),
// marked as a hit.
func TestCacheStoreHitIsLossless(t *testing.T) {
	noLeaks(t)
	a := cacheRedis(t)
	prefix := cachePrefix(t, a)
	b := cacheRedis(t)
	body := `{"id":"chatcmpl-n3","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"one","refusal":null},"logprobs":{"content":[{"token":"one","logprob":-0.1,"bytes":[111],"top_logprobs":[]}]},"finish_reason":"stop"},` +
		`{"index":1,"message":{"role":"assistant","content":"two","refusal":null},"logprobs":null,"finish_reason":"stop"},` +
		`{"index":2,"message":{"role":"assistant","content":null,"refusal":"no"},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Body: []byte(body)})
	pa := process(t, srv, twredis.NewCacheStore(a, prefix))
	pb := process(t, srv, twredis.NewCacheStore(b, prefix))
	req := cacheRequest()
	req.N, req.LogProbs = 3, true
	ctx := context.Background()
	first, err := pa.CreateChatCompletion(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := pb.CreateChatCompletion(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 1 {
		t.Fatalf("the provider saw %d requests, want 1", srv.Count())
	}
	if second.Header().Get(twopenai.CacheHeader) != "hit" {
		t.Fatalf("no hit header: %v", second.Header())
	}
	first.SetHeader(nil)
	second.SetHeader(nil)
	if !reflect.DeepEqual(first, second) || len(second.Choices) != 3 || second.Choices[2].Message.Refusal != "no" || second.Choices[0].LogProbs == nil {
		t.Fatalf("replica b got %+v, want %+v", second, first)
	}
}
