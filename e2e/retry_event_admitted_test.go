package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// Property: a Retrying event (what the OTel retries counter, its span
// event and the slog line count) is a retry that went out. Whatever the
// rate limit refuses, each call's events match the retries the provider
// saw and the call's facts. The event was sent before the backoff wait,
// so that a retry the limit then refused (on_limit: reject) was counted:
// one call retried once against 60 rpm showed 1 Retrying event for 1
// request.
func TestRetryingEventsAreRetriesSent(t *testing.T) {
	r := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	for i := range 10 {
		calls, fails := 1+r.IntN(4), 1+r.IntN(3)
		rpm := []int{60, 120, 600, 6000}[r.IntN(4)]
		onLimit := []policies.OnLimit{policies.OnLimitReject, policies.OnLimitWait}[r.IntN(2)]
		if i == 0 {
			calls, fails, rpm, onLimit = 1, 1, 60, policies.OnLimitReject
		}
		t.Run(fmt.Sprintf("%d/calls=%d,fails=%d,rpm=%d,%s", i, calls, fails, rpm, onLimit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				for c := range calls {
					var rs []openaitest.Reply
					for range fails {
						rs = append(rs, openaitest.Unavailable())
					}
					srv.On(openaitest.LastContains(fmt.Sprintf("call %d.", c))).Reply(append(rs, openaitest.Text("ok"))...)
				}
				srv.Default(openaitest.Text("ok"))
				p := policy(policies.RateLimits{
					Models:  map[string]policies.ModelRateLimit{"gpt-4o": {RPM: int64(rpm)}},
					OnLimit: onLimit,
					MaxWait: policies.Duration(500 * time.Millisecond),
				})
				p.Fallback.Retry = policies.Retry{MaxAttempts: fails + 1, BaseDelay: policies.Duration(time.Millisecond)}
				var rec recorder
				c := rlClient(srv, build(p, &rec.Recorder))
				var wg sync.WaitGroup
				for i := range calls {
					wg.Go(func() { _, _ = rlAsk(context.Background(), c, "gpt-4o", fmt.Sprintf("call %d.", i)) })
				}
				wg.Wait()
				sent := len(srv.Requests())
				firsts := 0 // the calls the limit admitted
				var facts int
				for _, f := range rec.callFacts() {
					facts += len(f.Retries)
					if len(f.Attempts) > 0 {
						firsts++
					}
				}
				got := len(middlewaretest.Of[middleware.Retrying](&rec.Recorder))
				if got != sent-firsts || got != facts {
					t.Errorf("%d Retrying events, %d retries in the calls' facts; the provider saw %d requests of %d calls sent",
						got, facts, sent, firsts)
				}
			})
		})
	}
}
