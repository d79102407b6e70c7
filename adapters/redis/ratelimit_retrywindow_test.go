package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// Each retry is admitted by the shared requests-per-minute limit when it
// is sent: 6 concurrent calls, each failing twice with a 503 before its
// answer, through two replicas sharing a limit in Redis, never send more
// requests than the limit admits over the whole run, however long it
// took (⌊(elapsed + burst) / interval⌋: a count, not a timed assertion).
// The retries were charged only when their calls ended, and all 18
// requests went out within the burst of 3 (reject) or 10 (wait).
func TestRedisRetriesAreAdmittedWhenSent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rpm     int64
		burst   time.Duration
		onLimit policies.OnLimit
	}{
		{"reject", 60, 3 * time.Second, policies.OnLimitReject},
		{"wait", 600, time.Second, policies.OnLimitWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix(t, testRedis(t))
			srv := openaitest.NewServer(t)
			const calls = 6
			for i := range calls {
				srv.On(openaitest.LastContains(fmt.Sprintf("call %d.", i))).Reply(openaitest.Unavailable(), openaitest.Unavailable(), openaitest.Text("ok"))
			}
			srv.Default(openaitest.Text("ok"))
			p := &policies.Policy{Version: 1, RateLimits: policies.RateLimits{
				Models:  map[string]policies.ModelRateLimit{"gpt-4o": {RPM: tc.rpm, Burst: policies.Duration(tc.burst)}},
				OnLimit: tc.onLimit,
				MaxWait: policies.Duration(time.Minute),
				Store:   policies.RateLimitStore{Kind: policies.StoreRedis, KeyPrefix: prefix},
			}, Fallback: policies.Fallback{Retry: policies.Retry{MaxAttempts: 3, BaseDelay: policies.Duration(time.Millisecond)}}}
			var replicas []*goopenai.Client
			for range 2 {
				chain := llmwrap.MustBuild(p, llmwrap.WithRateLimitStore(redis.NewRateLimitStore(testRedis(t))))
				cfg := goopenai.DefaultConfig("k")
				cfg.BaseURL = srv.URL
				cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(srv.Transport()))
				replicas = append(replicas, goopenai.NewClientWithConfig(cfg))
			}
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			answered := 0
			for i := range calls {
				wg.Go(func() {
					_, err := replicas[i%2].CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
						Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("call %d.", i)}}})
					if err == nil {
						mu.Lock()
						answered++
						mu.Unlock()
					} else if tc.onLimit == policies.OnLimitWait {
						t.Errorf("call %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			iv := time.Minute / time.Duration(tc.rpm)
			allowed := int((elapsed + tc.burst) / iv)
			if n := srv.Count(); n > allowed {
				t.Errorf("the provider saw %d requests in %v, %d allowed at %d rpm with a burst of %v", n, elapsed, allowed, tc.rpm, tc.burst)
			}
			if tc.onLimit == policies.OnLimitWait && answered != calls {
				t.Errorf("%d calls answered, want %d", answered, calls)
			}
		})
	}
}
