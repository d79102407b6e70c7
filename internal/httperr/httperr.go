// Package httperr is the adapters' reader of a provider's HTTP answer: it
// classifies a failed response (its status and the OpenAI error body's code
// and type) into a sentinel of the [middleware] error taxonomy, and parses
// the rate-limit and Retry-After headers. Both adapters (adapters/openai and
// adapters/langchaingo) use it, so a status code is interpreted in one
// place; the core (package middleware) only names the kinds of failure.
package httperr

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Classify maps an HTTP status and the provider's error code and type to a
// sentinel of the taxonomy. It is the one place where status codes are
// interpreted; every adapter uses it.
func Classify(status int, code, typ string) error {
	switch {
	case code == "context_length_exceeded" || code == "string_above_max_length" && status == 400:
		return middleware.ErrContextWindow
	case code == "content_filter" || code == "content_policy_violation":
		return middleware.ErrContentFilter
	case code == "insufficient_quota" || typ == "insufficient_quota":
		return middleware.ErrQuotaExceeded
	}
	switch {
	case status == http.StatusTooManyRequests:
		return middleware.ErrRateLimited
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return middleware.ErrAuth
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return middleware.ErrTimeout
	case status == 529 || status >= 500:
		return middleware.ErrUnavailable
	case status >= 400:
		return middleware.ErrBadRequest
	}
	return middleware.ErrMalformed
}

// ErrorType is the OpenAI error type for an error answer of status that
// names none (an empty body, another server's shape): server_error for a
// 5xx, rate_limit_error for a 429, invalid_request_error otherwise, as
// OpenAI's own answers of those statuses carry.
func ErrorType(status int) string {
	switch {
	case status >= 500:
		return "server_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	}
	return "invalid_request_error"
}

// EmbeddedStatus is the HTTP status an error object found inside a 2xx
// body or a stream stands for, when there was no status of its own: a
// numeric code of an HTTP error (OpenRouter's {"code": 429}), else what
// its type or code names; an unknown failure of the provider (500)
// otherwise.
func EmbeddedStatus(code, typ string) int {
	if n, err := strconv.Atoi(code); err == nil && n >= 400 && n <= 599 {
		return n
	}
	switch {
	case code == "rate_limit_exceeded" || typ == "rate_limit_error" || typ == "requests" || typ == "tokens":
		return http.StatusTooManyRequests
	case code == "insufficient_quota" || typ == "insufficient_quota":
		return http.StatusTooManyRequests
	case typ == "invalid_request_error":
		return http.StatusBadRequest
	case typ == "authentication_error" || code == "invalid_api_key":
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// maxHeaderWait caps the waits read from headers: beyond it a value is
// nonsense, and converting it would overflow a Duration.
const maxHeaderWait = 365 * 24 * time.Hour

// seconds converts a non-negative number of seconds from a header to a
// Duration, capped at maxHeaderWait; NaN is no wait.
func seconds(s float64) time.Duration {
	switch {
	case s != s:
		return 0
	case s >= maxHeaderWait.Seconds():
		return maxHeaderWait
	}
	return time.Duration(s * float64(time.Second))
}

// ParseRateLimitHeaders reads OpenAI's rate-limit headers
// (x-ratelimit-limit-requests, -limit-tokens, -remaining-requests,
// -remaining-tokens, -reset-requests, -reset-tokens) and the Retry-After
// of a response. ok is false when the response carries none of them.
// Unknown counts are -1; resets are Go durations ("1s", "6m0s", "20ms").
func ParseRateLimitHeaders(h http.Header, status int, now time.Time) (l middleware.ProviderLimits, ok bool) {
	l = middleware.ProviderLimits{Status: status, LimitRequests: -1, LimitTokens: -1, RemainingRequests: -1, RemainingTokens: -1}
	count := func(name string, dst *int64) {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				*dst, ok = n, true
			}
		}
	}
	reset := func(name string, dst *time.Duration) {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				*dst, ok = d, true
			} else if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
				*dst, ok = seconds(s), true
			}
		}
	}
	count("X-Ratelimit-Limit-Requests", &l.LimitRequests)
	count("X-Ratelimit-Limit-Tokens", &l.LimitTokens)
	count("X-Ratelimit-Remaining-Requests", &l.RemainingRequests)
	count("X-Ratelimit-Remaining-Tokens", &l.RemainingTokens)
	reset("X-Ratelimit-Reset-Requests", &l.ResetRequests)
	reset("X-Ratelimit-Reset-Tokens", &l.ResetTokens)
	if status == http.StatusTooManyRequests {
		l.RetryAfter, ok = ParseRetryAfter(h, now), true
	}
	return l, ok
}

// ParseRetryAfter reads the provider's requested wait from response
// headers: retry-after-ms (milliseconds), then Retry-After as seconds
// (fractions allowed) or an HTTP date relative to now, then — for servers
// that name no Retry-After, as OpenRouter — X-RateLimit-Reset when no
// request is left (X-RateLimit-Remaining 0 or absent): an epoch in
// milliseconds (OpenRouter's) or seconds, or else seconds from now. It
// returns 0 when none is given or the value is unusable.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return seconds(ms / 1000)
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return resetAfter(h, now)
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return seconds(s)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Epochs in X-RateLimit-Reset: a value from epochMillis on is in
// milliseconds (1973 onwards: as seconds it would be past the year 5000),
// from epochSeconds on in seconds (1973 onwards: as a wait, three years);
// below, it counts seconds from now.
const (
	epochMillis  = 1e11
	epochSeconds = 1e8
)

// resetAfter is the wait X-RateLimit-Reset names when the window it
// resets has no request left: 0 when it names none, the window has
// requests left, or its time has passed.
func resetAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("X-Ratelimit-Reset"))
	if v == "" {
		return 0
	}
	if r := strings.TrimSpace(h.Get("X-Ratelimit-Remaining")); r != "" {
		if n, err := strconv.ParseFloat(r, 64); err != nil || n > 0 {
			return 0 // requests left: the reset is not a wait
		}
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || s != s || s <= 0 {
		return 0
	}
	var at time.Time
	switch {
	case s >= 1e18: // beyond any date a Time holds in int64 units
		return maxHeaderWait
	case s >= epochMillis:
		at = time.UnixMilli(int64(s))
	case s >= epochSeconds:
		at = time.Unix(int64(s), int64((s-math.Floor(s))*1e9))
	default:
		return seconds(s)
	}
	d := at.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxHeaderWait)
}

// BodyRetryDelay reads the wait a provider names in its error body rather
// than in a header: Google's google.rpc.RetryInfo detail, which Gemini
// sends with a 429 RESOURCE_EXHAUSTED (its OpenAI-compatible endpoint
// too, in an array: [{"error":{"code":429,"status":"RESOURCE_EXHAUSTED",
// "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo",
// "retryDelay":"17s"}]}}]). The delay is a protobuf Duration in JSON
// (seconds with up to nine decimals and an "s"). It returns 0 when the
// body names none or the value is unusable.
func BodyRetryDelay(body []byte) time.Duration {
	type errorBody struct {
		Error struct {
			Details []struct {
				Type       string `json:"@type"`
				RetryDelay string `json:"retryDelay"`
			} `json:"details"`
		} `json:"error"`
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 || !bytes.Contains(b, []byte("RetryInfo")) {
		return 0
	}
	var objs []errorBody
	if b[0] == '[' {
		if json.Unmarshal(b, &objs) != nil {
			return 0
		}
	} else {
		var o errorBody
		if json.Unmarshal(b, &o) != nil {
			return 0
		}
		objs = []errorBody{o}
	}
	for _, o := range objs {
		for _, d := range o.Error.Details {
			if !strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
				continue
			}
			v, ok := strings.CutSuffix(strings.TrimSpace(d.RetryDelay), "s")
			if !ok {
				continue
			}
			if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
				return seconds(s)
			}
		}
	}
	return 0
}
