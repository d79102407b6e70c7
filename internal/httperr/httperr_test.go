package httperr_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/middleware"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status    int
		code, typ string
		want      error
		transient bool
	}{
		{429, "rate_limit_exceeded", "requests", middleware.ErrRateLimited, true},
		{429, "insufficient_quota", "insufficient_quota", middleware.ErrQuotaExceeded, false},
		{400, "context_length_exceeded", "invalid_request_error", middleware.ErrContextWindow, false},
		{400, "", "invalid_request_error", middleware.ErrBadRequest, false},
		{401, "invalid_api_key", "", middleware.ErrAuth, false},
		{500, "", "server_error", middleware.ErrUnavailable, true},
		{503, "", "", middleware.ErrUnavailable, true},
		{504, "", "", middleware.ErrTimeout, true},
		{400, "content_filter", "", middleware.ErrContentFilter, false},
	}
	for _, c := range cases {
		kind := httperr.Classify(c.status, c.code, c.typ)
		if kind != c.want {
			t.Errorf("Classify(%d,%q) = %v, want %v", c.status, c.code, kind, c.want)
		}
		err := error(&middleware.ProviderError{Kind: kind, StatusCode: c.status, Code: c.code})
		if !errors.Is(err, c.want) || middleware.Transient(err) != c.transient {
			t.Errorf("%d %q: Is=%v transient=%v", c.status, c.code, errors.Is(err, c.want), middleware.Transient(err))
		}
	}
	if middleware.Transient(context.Canceled) || !middleware.IsCancellation(context.Canceled) {
		t.Error("a cancellation is not transient")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		x := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			x.Set(kv[i], kv[i+1])
		}
		return x
	}
	cases := []struct {
		h    http.Header
		want time.Duration
	}{
		{h("Retry-After", "2"), 2 * time.Second},
		{h("Retry-After", "0.5"), 500 * time.Millisecond},
		{h("retry-after-ms", "1500", "Retry-After", "9"), 1500 * time.Millisecond},
		{h("Retry-After", now.Add(7*time.Second).Format(http.TimeFormat)), 7 * time.Second},
		{h("Retry-After", "soon"), 0},
		{h(), 0},
		// OpenRouter: no Retry-After, X-RateLimit-Reset in epoch ms.
		{h("X-RateLimit-Limit", "20", "X-RateLimit-Remaining", "0",
			"X-RateLimit-Reset", strconv.FormatInt(now.Add(2500*time.Millisecond).UnixMilli(), 10)), 2500 * time.Millisecond},
		{h("X-RateLimit-Reset", strconv.FormatInt(now.Add(8*time.Second).Unix(), 10)), 8 * time.Second},
		{h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "3"), 3 * time.Second},
		{h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", strconv.FormatInt(now.Add(-time.Second).UnixMilli(), 10)), 0},
		{h("X-RateLimit-Remaining", "7", "X-RateLimit-Reset", strconv.FormatInt(now.Add(9*time.Second).UnixMilli(), 10)), 0},
		{h("Retry-After", "1", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", strconv.FormatInt(now.Add(9*time.Second).UnixMilli(), 10)), time.Second},
		{h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "NaN"), 0},
	}
	for _, c := range cases {
		if got := httperr.ParseRetryAfter(c.h, now); got != c.want {
			t.Errorf("%v: got %v want %v", c.h, got, c.want)
		}
	}
}

func TestParseRateLimitHeaders(t *testing.T) {
	t.Parallel()
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
		got, ok := httperr.ParseRateLimitHeaders(tc.h, tc.status, now)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
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
		l, ok := httperr.ParseRateLimitHeaders(h, status, time.Now())
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

// Whatever a server's Retry-After, retry-after-ms, X-RateLimit-Reset and
// X-RateLimit-Remaining say, the wait read is never negative and never
// past the cap of a year, and a reset with requests left is no wait.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Add("", "", "1764158405000", "0")
	f.Add("2", "1500", "1764158405", "")
	f.Add("", "", "3", "7")
	f.Add("", "", "1e300", "0")
	f.Add("", "", "-1", "-0")
	f.Fuzz(func(t *testing.T, retryAfter, retryAfterMs, reset, remaining string) {
		h := http.Header{}
		for k, v := range map[string]string{"Retry-After": retryAfter, "Retry-After-Ms": retryAfterMs,
			"X-Ratelimit-Reset": reset, "X-Ratelimit-Remaining": remaining} {
			if v != "" {
				h.Set(k, v)
			}
		}
		d := httperr.ParseRetryAfter(h, now)
		if d < 0 || d > 365*24*time.Hour {
			t.Fatalf("%v: wait %v", h, d)
		}
		if retryAfter == "" && retryAfterMs == "" {
			if n, err := strconv.ParseFloat(strings.TrimSpace(remaining), 64); err == nil && n > 0 && d != 0 {
				t.Fatalf("%v: wait %v with requests left", h, d)
			}
		}
	})
}

// FuzzBodyRetryDelay: whatever the body, BodyRetryDelay never panics and
// returns a wait within a year, and a RetryInfo's delay of s seconds is
// read as s seconds in an object or an array.
func FuzzBodyRetryDelay(f *testing.F) {
	f.Add([]byte(`[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}]`), "17")
	f.Add([]byte(`{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.5s"}]}}`), "1.25")
	f.Add([]byte(`{"error":{"message":"x"}}`), "-3")
	f.Add([]byte(`[`), "1e400")
	f.Fuzz(func(t *testing.T, body []byte, secs string) {
		d := httperr.BodyRetryDelay(body)
		if d < 0 || d > 365*24*time.Hour {
			t.Fatalf("BodyRetryDelay(%q) = %v", body, d)
		}
		s, err := strconv.ParseFloat(secs, 64)
		if err != nil || s <= 0 || s > 1e6 || strings.ContainsAny(secs, `"\`) {
			return
		}
		want := time.Duration(s * float64(time.Second))
		obj := `{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"` + secs + `s"}]}}`
		for _, b := range []string{obj, "[" + obj + "]", " \n" + obj} {
			if got := httperr.BodyRetryDelay([]byte(b)); got != want {
				t.Errorf("BodyRetryDelay(%s) = %v, want %v", b, got, want)
			}
		}
	})
}
