package e2e

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// client returns a go-openai client whose calls run through mw and reach
// srv in memory (usable inside a synctest bubble).
func client(srv *openaitest.Server, mw middleware.Middleware) *openai.Client {
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(mw, twopenai.WithBaseTransport(srv.Transport()))
	return openai.NewClientWithConfig(cfg)
}

func ask(ctx context.Context, c *openai.Client) (openai.ChatCompletionResponse, error) {
	return c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Check the disk."}}})
}

func chain(ev *events, p retry.Config, opts ...retry.Option) middleware.Middleware {
	return middleware.Chain(instrument.New(nil, ev), middlewaretest.Must(retry.New(p, opts...)))
}

// Must show: 429 with Retry-After: 2 then success — one retry, after 2 s of
// fake time, no earlier.
func TestRetryAfterIsHonouredExactly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.RateLimited(2*time.Second), openaitest.Text("Disk is fine."))
		ev := &events{}
		c := client(srv, chain(ev, retry.Config{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond}))

		start := time.Now()
		resp, err := ask(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content != "Disk is fine." {
			t.Fatalf("content %q", resp.Choices[0].Message.Content)
		}
		reqs := srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2 (one retry)", len(reqs))
		}
		if gap := reqs[1].Time.Sub(reqs[0].Time); gap != 2*time.Second {
			t.Errorf("retry sent %v after the 429, want exactly 2s", gap)
		}
		if el := time.Since(start); el != 2*time.Second {
			t.Errorf("call took %v, want 2s", el)
		}
		r := ev.retries()
		if len(r) != 1 || r[0].Wait != 2*time.Second || r[0].Attempt != 1 || !errors.Is(r[0].Err, middleware.ErrRateLimited) {
			t.Errorf("retry events %+v", r)
		}
	})
}

func TestRetryAfterHeaderForms(t *testing.T) {
	date := func(now time.Time) string { return now.Add(3 * time.Second).UTC().Format(http.TimeFormat) }
	for _, tc := range []struct {
		name   string
		header func(now time.Time) http.Header
		want   time.Duration
	}{
		{"retry-after-ms", func(time.Time) http.Header { return http.Header{"Retry-After-Ms": {"1500"}} }, 1500 * time.Millisecond},
		{"seconds", func(time.Time) http.Header { return http.Header{"Retry-After": {"4"}} }, 4 * time.Second},
		{"http-date", func(now time.Time) http.Header { return http.Header{"Retry-After": {date(now)}} }, 3 * time.Second},
		// OpenRouter's 429 names no Retry-After: X-RateLimit-Reset is the
		// epoch in milliseconds when its window opens again.
		{"openrouter reset epoch ms", func(now time.Time) http.Header {
			return http.Header{"X-Ratelimit-Limit": {"20"}, "X-Ratelimit-Remaining": {"0"},
				"X-Ratelimit-Reset": {strconv.FormatInt(now.Add(5*time.Second).UnixMilli(), 10)}}
		}, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				limited := openaitest.RateLimited(0)
				// fake time starts on a whole second, so an HTTP date is exact
				limited.Header = tc.header(time.Now())
				srv.On().Reply(limited, openaitest.Text("ok"))
				c := client(srv, chain(&events{}, retry.Config{MaxAttempts: 2}))
				if _, err := ask(context.Background(), c); err != nil {
					t.Fatal(err)
				}
				reqs := srv.Requests()
				if len(reqs) != 2 || reqs[1].Time.Sub(reqs[0].Time) != tc.want {
					t.Fatalf("%d requests, gap %v, want 2 and %v", len(reqs), reqs[len(reqs)-1].Time.Sub(reqs[0].Time), tc.want)
				}
			})
		})
	}
}

func TestNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply openaitest.Reply
		kind  error
	}{
		{"insufficient_quota", openaitest.InsufficientQuota(), middleware.ErrQuotaExceeded},
		{"bad request", openaitest.Error(400, "invalid_request_error", "", "bad"), middleware.ErrBadRequest},
		{"auth", openaitest.InvalidAPIKey(), middleware.ErrAuth},
		{"context window", openaitest.ContextLengthExceeded(128000, 130000), middleware.ErrContextWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(tc.reply, openaitest.Text("never"))
				var got error
				mw := middleware.Chain(func(next middleware.Handler) middleware.Handler {
					return middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
						resp, err := next.Handle(ctx, r)
						got = err
						return resp, err
					})
				}, middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 5})))
				_, err := ask(context.Background(), client(srv, mw))
				if err == nil || !errors.Is(got, tc.kind) {
					t.Fatalf("err %v (chain: %v), want %v", err, got, tc.kind)
				}
				if n := srv.Count(); n != 1 {
					t.Fatalf("%d requests, want 1: %v is not transient", n, tc.kind)
				}
			})
		})
	}
}

// A wait that would pass the call's deadline is not started: the call
// fails at once with the provider's error, so a fallback can move on —
// whether the wait is a Retry-After or OpenRouter's X-RateLimit-Reset (an
// epoch in milliseconds).
func TestNeverSleepsPastTheDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		limited func(now time.Time) openaitest.Reply
	}{
		{"retry-after", func(time.Time) openaitest.Reply { return openaitest.RateLimited(20 * time.Second) }},
		{"openrouter reset", func(now time.Time) openaitest.Reply {
			r := openaitest.RateLimited(0)
			r.Header = http.Header{"X-Ratelimit-Limit": {"20"}, "X-Ratelimit-Remaining": {"0"},
				"X-Ratelimit-Reset": {strconv.FormatInt(now.Add(20*time.Second).UnixMilli(), 10)}}
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(tc.limited(time.Now()), openaitest.Text("too late"))
				c := client(srv, chain(&events{}, retry.Config{MaxAttempts: 3, MaxDelay: time.Minute}))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				_, err := ask(ctx, c)
				var apiErr *openai.APIError
				if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 429 {
					t.Fatalf("err %v, want the 429", err)
				}
				if el := time.Since(start); el != 0 {
					t.Errorf("failed after %v, want at once", el)
				}
				if srv.Count() != 1 {
					t.Errorf("%d requests", srv.Count())
				}
			})
		})
	}
}

func TestBackoffWithJitterAndTotalCap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Unavailable())
		ev := &events{}
		// u = 0.5: waits are half of 100ms, 200ms, 400ms, 800ms...; the
		// total cap of 400ms allows 50+100+200 = 350ms and stops before 400.
		p := retry.Config{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, MaxTotalWait: 400 * time.Millisecond}
		c := client(srv, chain(ev, p, retry.WithJitter(func() float64 { return 0.5 })))
		start := time.Now()
		_, err := ask(context.Background(), c)
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 503 {
			t.Fatalf("err %v, want the 503", err)
		}
		var waits []time.Duration
		for _, r := range ev.retries() {
			waits = append(waits, r.Wait)
		}
		want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
		if len(waits) != len(want) || waits[0] != want[0] || waits[1] != want[1] || waits[2] != want[2] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
		if el := time.Since(start); el != 350*time.Millisecond || srv.Count() != 4 {
			t.Errorf("elapsed %v with %d requests, want 350ms and 4", el, srv.Count())
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, maxd := 100*time.Millisecond, time.Second
	for _, tc := range []struct {
		attempt int
		u       float64
		want    time.Duration
	}{
		{1, 0.999, 99900 * time.Microsecond}, {2, 1.0, 200 * time.Millisecond}, {3, 0.5, 200 * time.Millisecond},
		{5, 1.0, time.Second}, {60, 1.0, time.Second}, {4, 0, 0},
	} {
		if got := retry.Backoff(base, maxd, tc.attempt, tc.u); got != tc.want {
			t.Errorf("Backoff(attempt %d, u %g) = %v, want %v", tc.attempt, tc.u, got, tc.want)
		}
	}
}

// A stream is retried while nothing reached the caller, and never after.
func TestStreamRetriedOnlyBeforeFirstChunk(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastContains("before")).Reply(openaitest.Unavailable(), openaitest.Text("second try"))
		srv.On(openaitest.LastContains("after")).Reply(openaitest.CutAfter(2), openaitest.Text("never"))
		c := client(srv, chain(&events{}, retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond}))
		read := func(q string) (string, error) {
			return streamText(context.Background(), c, openai.ChatCompletionRequest{Model: "gpt-4o",
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: q}}})
		}
		if got, err := read("before"); err != nil || got != "second try" {
			t.Fatalf("got %q, %v", got, err)
		}
		srv.Reset()
		got, err := read("after")
		if err == nil || !errors.Is(err, middleware.ErrStreamCut) {
			t.Fatalf("cut stream: got %q, err %v; want ErrStreamCut", got, err)
		}
		if srv.Count() != 1 {
			t.Fatalf("%d requests after a cut that reached the caller, want 1", srv.Count())
		}
	})
}

func TestCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.RateLimited(5 * time.Second))
		c := client(srv, chain(&events{}, retry.Config{MaxAttempts: 3}))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := ask(ctx, c)
		if err == nil || time.Since(start) != time.Second {
			t.Fatalf("err %v after %v, want a failure after 1s", err, time.Since(start))
		}
	})
}

func TestNilWhenOff(t *testing.T) {
	if middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 1})) != nil || middlewaretest.Must(retry.New(retry.Config{})) != nil {
		t.Fatal("a single attempt must add no layer")
	}
}

func TestNegativeFieldIsAnError(t *testing.T) {
	for _, cfg := range []retry.Config{{MaxAttempts: -1}, {MaxAttempts: 2, BaseDelay: -1}, {MaxDelay: -time.Second}, {MaxTotalWait: -1}} {
		if _, err := retry.New(cfg); !errors.Is(err, retry.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}
