package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

func TestParseRateLimitHeaders(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		h      http.Header
		status int
		want   middleware.ProviderLimits
		ok     bool
	}{
		{"none", http.Header{"Content-Type": {"application/json"}}, 200, middleware.ProviderLimits{}, false},
		{"openai", http.Header{
			"X-Ratelimit-Limit-Requests": {"5000"}, "X-Ratelimit-Remaining-Requests": {"4999"}, "X-Ratelimit-Reset-Requests": {"12ms"},
			"X-Ratelimit-Limit-Tokens": {"800000"}, "X-Ratelimit-Remaining-Tokens": {"799100"}, "X-Ratelimit-Reset-Tokens": {"1m30.5s"},
		}, 200, middleware.ProviderLimits{Status: 200, LimitRequests: 5000, RemainingRequests: 4999, ResetRequests: 12 * time.Millisecond,
			LimitTokens: 800000, RemainingTokens: 799100, ResetTokens: 90500 * time.Millisecond}, true},
		{"seconds and garbage", http.Header{"X-Ratelimit-Remaining-Requests": {"lots"}, "X-Ratelimit-Reset-Tokens": {"2.5"}}, 200,
			middleware.ProviderLimits{Status: 200, LimitRequests: -1, LimitTokens: -1, RemainingRequests: -1, RemainingTokens: -1,
				ResetTokens: 2500 * time.Millisecond}, true},
		{"429", http.Header{"Retry-After": {"3"}}, 429, middleware.ProviderLimits{Status: 429, LimitRequests: -1, LimitTokens: -1,
			RemainingRequests: -1, RemainingTokens: -1, RetryAfter: 3 * time.Second}, true},
	} {
		got, ok := middleware.ParseRateLimitHeaders(tc.h, tc.status, now)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// A refusal carrying a TimeToWait gives it to middleware.RetryAfter.
type waitErr time.Duration

func (w waitErr) Error() string             { return "wait" }
func (w waitErr) TimeToWait() time.Duration { return time.Duration(w) }

func TestRetryAfterOfRefusals(t *testing.T) {
	if d, ok := middleware.RetryAfter(waitErr(2 * time.Second)); !ok || d != 2*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := middleware.RetryAfter(waitErr(0)); ok {
		t.Error("a zero wait is no wait")
	}
}

// The run report shows the calls that waited for a rate limit and the
// refusals, in the table and in JSON.
func TestReportRateLimits(t *testing.T) {
	ctx, run := middleware.StartRun(context.Background(), "r1")
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) { f.RateWait += 1500 * time.Millisecond; f.RateRefusals++ })
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	h := middleware.Then(provider, middleware.Instrument(nil, nil))
	for range 2 {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o"}); err != nil {
			t.Fatal(err)
		}
	}
	tot := run.Totals()
	if tot.RateWaits != 2 || tot.RateWait != 3*time.Second || tot.RateRefusals != 2 {
		t.Errorf("totals: %d waits, %v, %d refusals", tot.RateWaits, tot.RateWait, tot.RateRefusals)
	}
	if rep := run.Report(); !strings.Contains(rep, "rate limits: 2 calls waited 3s, 2 refused") {
		t.Errorf("report lacks the rate-limit line:\n%s", rep)
	}
	b, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		RateWaitMs float64 `json:"rate_wait_ms"`
		Refusals   int     `json:"rate_refusals"`
		Calls      []struct {
			RateWaitMs float64 `json:"rate_wait_ms"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.RateWaitMs != 3000 || out.Refusals != 2 || len(out.Calls) != 2 || out.Calls[0].RateWaitMs != 1500 {
		t.Errorf("JSON: %s", b)
	}
}

// Whatever the headers say, parsing never panics, counts are -1 or
// non-negative, durations non-negative, and a 429 is always reported.
func FuzzParseRateLimitHeaders(f *testing.F) {
	f.Add("5000", "4999", "12ms", "1m30.5s", "3", 200)
	f.Add("x", "-1", "-5s", "1e400", "Wed, 21 Oct 2015 07:28:00 GMT", 429)
	f.Fuzz(func(t *testing.T, limit, remaining, resetReq, resetTok, retryAfter string, status int) {
		h := http.Header{"X-Ratelimit-Limit-Requests": {limit}, "X-Ratelimit-Remaining-Requests": {remaining},
			"X-Ratelimit-Reset-Requests": {resetReq}, "X-Ratelimit-Reset-Tokens": {resetTok}, "Retry-After": {retryAfter}}
		l, ok := middleware.ParseRateLimitHeaders(h, status, time.Now())
		if status == http.StatusTooManyRequests && !ok {
			t.Fatal("a 429 was not reported")
		}
		for _, n := range []int64{l.LimitRequests, l.LimitTokens, l.RemainingRequests, l.RemainingTokens} {
			if n < -1 {
				t.Fatalf("count %d", n)
			}
		}
		if l.ResetRequests < 0 || l.ResetTokens < 0 || l.RetryAfter < 0 {
			t.Fatalf("negative duration: %+v", l)
		}
	})
}
