package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// maxInWindow returns the most of times in any closed window of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	top := 0
	for _, a := range times {
		n := 0
		for _, b := range times {
			if !b.Before(a) && !b.After(a.Add(w)) {
				n++
			}
		}
		top = max(top, n)
	}
	return top
}

// allowedInWindow is what a GCRA of rpm per minute with a burst of burst
// admits in a closed window of length w: ⌊(w + burst) / interval⌋.
func allowedInWindow(rpm int, burst, w time.Duration) int {
	iv := time.Minute / time.Duration(rpm)
	return int((w + max(burst, iv)) / iv)
}

// runRetried sends calls concurrent calls of gpt-4o, each answered fails
// 503s before its answer, through a chain limited to rpm with burst, and
// returns the times the provider saw requests at.
func runRetried(t *testing.T, calls, fails, rpm int, burst time.Duration) []time.Time {
	t.Helper()
	srv := openaitest.New()
	for i := range calls {
		var rs []openaitest.Reply
		for range fails {
			rs = append(rs, openaitest.Unavailable())
		}
		rs = append(rs, openaitest.Text("ok"))
		srv.On(openaitest.LastContains(fmt.Sprintf("call %d.", i))).Reply(rs...)
	}
	srv.Default(openaitest.Text("ok"))
	p := policy(policies.RateLimits{
		Models:  map[string]policies.ModelRateLimit{"gpt-4o": {RPM: int64(rpm), Burst: policies.Duration(burst)}},
		MaxWait: policies.Duration(time.Hour),
	})
	p.Fallback.Retry = policies.Retry{MaxAttempts: fails + 1, BaseDelay: policies.Duration(time.Millisecond)}
	c := rlClient(srv, build(p, nil))
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			if _, err := rlAsk(context.Background(), c, "gpt-4o", fmt.Sprintf("call %d.", i)); err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	var times []time.Time
	for _, r := range srv.Requests() {
		times = append(times, r.Time)
	}
	if len(times) != calls*(fails+1) {
		t.Fatalf("provider saw %d requests, want %d", len(times), calls*(fails+1))
	}
	return times
}

// Each retry is admitted by the requests-per-minute limit when it is
// sent, as a first attempt is: at 60 rpm with a 1s burst, 6 calls each
// retried twice after 503s sent 3 requests in the first second (2
// allowed) and 15 in 5s (6 allowed) when the retries were only charged as
// the calls ended.
func TestRetriesAreAdmittedByTheRequestLimitWhenSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		times := runRetried(t, 6, 2, 60, time.Second)
		for _, w := range []time.Duration{0, time.Second, 5 * time.Second, 10 * time.Second} {
			if got, allowed := maxInWindow(times, w), allowedInWindow(60, time.Second, w); got > allowed {
				t.Errorf("%d requests within %v, %d allowed at 60 rpm", got, w, allowed)
			}
		}
	})
}

// Property: whatever the concurrency, the retries and the limit, no
// window sees more requests than the limit admits.
func TestRetriesNeverPassTheRequestLimitInAnyWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for i := range 12 {
		calls, fails := 1+r.IntN(8), r.IntN(3)
		rpm := []int{30, 60, 120, 600}[r.IntN(4)]
		burst := []time.Duration{0, time.Second, 3 * time.Second}[r.IntN(3)]
		t.Run(fmt.Sprintf("%d/calls=%d,fails=%d,rpm=%d,burst=%v", i, calls, fails, rpm, burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := burst
				if b == 0 {
					b = time.Second // the default burst
				}
				times := runRetried(t, calls, fails, rpm, burst)
				for _, w := range []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, time.Minute} {
					if got, allowed := maxInWindow(times, w), allowedInWindow(rpm, b, w); got > allowed {
						t.Errorf("%d requests within %v, %d allowed at %d rpm with burst %v", got, w, allowed, rpm, b)
					}
				}
			})
		})
	}
}

// tokensAdmittedAfter returns how long after its first request the
// provider saw a second call, through a chain limited to 600 tokens a
// minute, when the first call's first fails attempts got 503s: the tokens
// the first call was charged, at 100ms a token.
func tokensAdmittedAfter(t *testing.T, prompt string, fails int) time.Duration {
	t.Helper()
	srv := openaitest.New()
	var rs []openaitest.Reply
	for range fails {
		rs = append(rs, openaitest.Unavailable())
	}
	ok := openaitest.Text("ok")
	ok.Usage = &openaitest.Usage{PromptTokens: 50, CompletionTokens: 1, TotalTokens: 51}
	srv.On(openaitest.LastContains("first")).Reply(append(rs, ok)...)
	srv.Default(ok)
	p := policy(policies.RateLimits{
		Models:  map[string]policies.ModelRateLimit{"gpt-4o": {TPM: 600}},
		MaxWait: policies.Duration(time.Hour),
	})
	p.Fallback.Retry = policies.Retry{MaxAttempts: fails + 1, BaseDelay: policies.Duration(time.Millisecond)}
	c := rlClient(srv, build(p, nil))
	ask := func(text string) {
		if _, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 1,
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: text}}}); err != nil {
			t.Fatal(err)
		}
	}
	ask("first " + prompt)
	ask("second")
	reqs := srv.Requests()
	if len(reqs) != fails+2 {
		t.Fatalf("provider saw %d requests, want %d", len(reqs), fails+2)
	}
	return reqs[fails+1].Time.Sub(reqs[0].Time)
}

// Each request sent counts its input against the tokens per minute: a
// call whose first two requests failed with 503s sent its prompt three
// times. Only the answered request's usage was counted, so that a second
// call was admitted as early (51 tokens) as after a call answered at once,
// not after the two failed requests' input too.
func TestRetriedInputCountsAgainstTheTokenLimit(t *testing.T) {
	prompt := strings.Repeat("lorem ipsum dolor ", 40)
	input := tokens.New().Text("gpt-4o", prompt)
	var once, retried time.Duration
	synctest.Test(t, func(t *testing.T) { once = tokensAdmittedAfter(t, prompt, 0) })
	synctest.Test(t, func(t *testing.T) { retried = tokensAdmittedAfter(t, prompt, 2) })
	// 600 tokens a minute: 100ms a token.
	if want := time.Duration(2*input) * 100 * time.Millisecond; retried-once < want {
		t.Errorf("second call admitted %v after a call retried twice, %v after one answered at once: "+
			"the two failed requests' %d input tokens each were not counted (want %v more)", retried, once, input, want)
	}
}
