package e2e

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
)

// Retries below the rate limit are requests the provider counts: a call
// whose first two attempts failed with a 503 (a server that sends no
// x-ratelimit headers, as vLLM or a proxy) made three requests, and the
// next call is admitted against all three. The layer charged retries only
// when the provider reported its limits with every answer, so that such a
// call counted once and the provider saw three times the limit.
func TestRetriesCountAgainstTheRequestLimit(t *testing.T) {
	for _, learn := range []bool{true, false} {
		t.Run(map[bool]string{true: "learning", false: "not learning"}[learn], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On(openaitest.LastContains("first")).Reply(openaitest.Unavailable(), openaitest.Unavailable(), openaitest.Text("ok"))
				srv.Default(openaitest.Text("ok"))
				p := policy(policies.RateLimits{
					Models:            map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 60}}, // one a second, burst 1s
					MaxWait:           policies.Duration(time.Minute),
					LearnFromProvider: &learn,
				})
				p.Fallback.Retry = policies.Retry{MaxAttempts: 3, BaseDelay: policies.Duration(time.Millisecond)}
				c := rlClient(srv, build(p, nil))
				if _, err := rlAsk(context.Background(), c, "gpt-4o", "first"); err != nil {
					t.Fatal(err)
				}
				if _, err := rlAsk(context.Background(), c, "gpt-4o", "second"); err != nil {
					t.Fatal(err)
				}
				reqs := srv.Requests()
				if len(reqs) != 4 {
					t.Fatalf("provider saw %d requests, want 4 (3 of the first call)", len(reqs))
				}
				// 60 a minute: the fourth request no sooner than 3s after the first.
				if gap := reqs[3].Time.Sub(reqs[0].Time); gap < 3*time.Second-10*time.Millisecond {
					t.Errorf("4 requests within %v: the retries were not counted against 60 rpm", gap)
				}
			})
		})
	}
}
