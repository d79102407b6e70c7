package e2e

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
)

// geminiExhausted answers its first request as Gemini's OpenAI-compatible
// endpoint answers a 429: no Retry-After, the wait in the body's
// google.rpc.RetryInfo (retryDelay), the error object in an array; the
// others through srv. times are the requests' times.
type geminiExhausted struct {
	srv   http.Handler
	body  string
	mu    sync.Mutex
	times []time.Time
}

func (g *geminiExhausted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.times = append(g.times, time.Now())
	n := len(g.times)
	g.mu.Unlock()
	if n > 1 {
		g.srv.ServeHTTP(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = io.WriteString(w, g.body)
}

// A 429 whose wait is only in the body, as Gemini sends it
// (RESOURCE_EXHAUSTED with a google.rpc.RetryInfo retryDelay of "17s" or
// "1.5s"), is retried after that wait, as a Retry-After is honoured. It
// was retried after the layer's own backoff (within 1ms here), which
// Gemini refuses again and counts against the quota.
func TestGeminiRetryDelayIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want time.Duration
	}{
		{"array", `[{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[` +
			`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},` +
			`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},` +
			`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}]`, 17 * time.Second},
		{"object", `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[` +
			`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`, 1500 * time.Millisecond},
	} {
		for _, client := range []string{"go-openai", "langchaingo"} {
			t.Run(tc.name+"/"+client, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := openaitest.New()
					srv.Default(openaitest.Text("ok"))
					g := &geminiExhausted{srv: srv, body: tc.body}
					p := policy(policies.RateLimits{})
					p.Fallback.Retry = policies.Retry{MaxAttempts: 2, BaseDelay: policies.Duration(time.Millisecond), MaxDelay: policies.Duration(time.Minute)}
					chain := build(p, nil)
					var err error
					if client == "go-openai" {
						_, err = rlAsk(context.Background(), rlClient(g, chain), "gemini-2.0-flash", "hello")
					} else {
						inner, lerr := lcopenai.New(lcopenai.WithModel("gemini-2.0-flash"), lcopenai.WithToken("test-key"),
							lcopenai.WithBaseURL("http://provider.test/v1"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(openaitest.NewTransport(g))}))
						if lerr != nil {
							t.Fatal(lerr)
						}
						m := twlc.New(twlc.Models{"gemini-2.0-flash": inner}, chain)
						_, err = m.GenerateContent(context.Background(), []llms.MessageContent{human("hello")})
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(g.times) != 2 {
						t.Fatalf("%d requests, want 2", len(g.times))
					}
					if gap := g.times[1].Sub(g.times[0]); gap < tc.want {
						t.Errorf("retried %v after a 429 asking for %v (retryDelay)", gap, tc.want)
					}
				})
			})
		}
	}
}
