package e2e

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
)

// A panic below the rate limit after retries were admitted and sent (here
// the caller's langchaingo streaming function panics on the answer of the
// third request) settles the call at the requests it sent: the next call
// is admitted against all three. The cleanup charged one request and gave
// back the two retries the limiter had admitted, so that the next call
// went out 2s after the first request at 60 rpm, where 3s are due.
func TestPanicAfterRetriesChargesTheRequestsSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastContains("first")).Reply(openaitest.Unavailable(), openaitest.Unavailable(), openaitest.Text("ok"))
		srv.Default(openaitest.Text("ok"))
		p := policy(policies.RateLimits{
			Models:  map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 60}}, // one a second, burst 1s
			MaxWait: policies.Duration(time.Minute),
		})
		p.Fallback.Retry = policies.Retry{MaxAttempts: 3, BaseDelay: policies.Duration(time.Millisecond)}
		m := lcModel(t, srv, p)
		_, err := m.GenerateContent(context.Background(), []llms.MessageContent{human("first")},
			llms.WithStreamingFunc(func(context.Context, []byte) error { panic("caller's stream function") }))
		if err == nil {
			t.Fatal("a panicking stream function: no error")
		}
		if _, err := m.GenerateContent(context.Background(), []llms.MessageContent{human("second")}); err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		if len(reqs) != 4 {
			t.Fatalf("provider saw %d requests, want 4 (3 of the first call)", len(reqs))
		}
		// 60 a minute: the fourth request no sooner than 3s after the first.
		if gap := reqs[3].Time.Sub(reqs[0].Time); gap < 3*time.Second-10*time.Millisecond {
			t.Errorf("4 requests within %v at 60 rpm: the retries sent before the panic were given back", gap)
		}
	})
}
