package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// A reasoning model thinks for minutes: under the embedded default policy
// a call of o3 (or of the other reasoning families the catalog has) that
// answers after 45s, streamed or not, is answered, in one upstream
// request billed once, not cut at timeouts.call (30s), retried and billed
// twice, then failed with the total timeout (60s).
func TestDefaultPolicyLetsAReasoningModelThink(t *testing.T) {
	for _, model := range []string{"o3", "o4-mini", "gpt-5", "gpt-5-mini", "o1"} {
		for _, stream := range []bool{false, true} {
			name := model
			if stream {
				name += " stream"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := openaitest.New()
					srv.On().Reply(openaitest.Reply{Content: "the answer", Latency: 45 * time.Second})
					c := goClient(t, srv, policies.Default())
					ctx, run := middleware.StartRun(context.Background(), "r")
					req := hangChatReq(model, stream)
					start := time.Now()
					var content string
					var err error
					if stream {
						req.StreamOptions = nil
						s, err2 := c.CreateChatCompletionStream(ctx, req)
						if err2 == nil {
							for {
								chunk, e := s.Recv()
								if e != nil {
									if !errors.Is(e, io.EOF) {
										err2 = e
									}
									break
								}
								for _, ch := range chunk.Choices {
									content += ch.Delta.Content
								}
							}
							s.Close()
						}
						err = err2
					} else {
						resp, err2 := c.CreateChatCompletion(ctx, req)
						if err2 == nil && len(resp.Choices) > 0 {
							content = resp.Choices[0].Message.Content
						}
						err = err2
					}
					el := time.Since(start)
					if err != nil || content != "the answer" {
						t.Fatalf("a %s call answering after 45s: %q, %v after %v (%d upstream requests)", model, content, err, el, srv.Count())
					}
					if n := srv.Count(); n != 1 {
						t.Errorf("%d upstream requests for one call answering after 45s, want 1 (each is billed)", n)
					}
					calls := run.Calls()
					if len(calls) != 1 || calls[0].Err != nil {
						t.Fatalf("run records %d calls (%+v), want one that succeeded", len(calls), calls)
					}
					u, micro := run.Spent()
					if micro <= 0 || u.InputTokens <= 0 || u.OutputTokens <= 0 {
						t.Errorf("run spent %d micro-USD for %+v, want the one answer's cost", micro, u)
					}
					want, ok := policies.Default().Model(model)
					if !ok {
						t.Fatalf("%s not in the catalog", model)
					}
					// One answer's cost, in micro-USD rounded up as Spent rounds it.
					if got := (int64(want.Cost(policies.TokenCounts{Input: u.InputTokens, Output: u.OutputTokens})) + 999_999) / 1_000_000; got != micro {
						t.Errorf("run spent %d micro-USD, want the one answer's %d", micro, got)
					}
				})
			})
		}
	}
}

// A hung upstream of a reasoning model is still bounded under the default
// policy: at its timeouts.models limit (10 minutes, the call's total as
// its one attempt's), with the total timeout, in one upstream request.
func TestDefaultPolicyBoundsAHungReasoningUpstream(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "o3", true: "o3 stream"}[stream], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(openaitest.Stall())
				c := goClient(t, srv, policies.Default())
				req := hangChatReq("o3", stream)
				start := time.Now()
				var err error
				if stream {
					s, err2 := c.CreateChatCompletionStream(context.Background(), req)
					if err2 == nil {
						_, err2 = s.Recv()
						s.Close()
					}
					err = err2
				} else {
					_, err = c.CreateChatCompletion(context.Background(), req)
				}
				el := time.Since(start)
				t.Logf("%d upstream requests, failed after %v: %v", srv.Count(), el, err)
				if el > 10*time.Minute {
					t.Errorf("a hung o3 upstream blocked the caller for %v, want at most 10m", el)
				}
				if el < 10*time.Minute {
					t.Errorf("a hung o3 upstream was given up after %v, before its 10m limit", el)
				}
				if !errors.Is(err, middleware.ErrTimeout) {
					t.Errorf("err %v, want a timeout", err)
				}
				if n := srv.Count(); n != 1 {
					t.Errorf("%d upstream requests, want 1: an attempt that ran out of the call's total is not sent again", n)
				}
			})
		})
	}
}

// Each attempt is bounded by the limits of its own model, the one routing
// or a fallback sent it to, and the call by the longest total of the model
// its caller asked for and of the models its attempts were sent to.
func TestTimeoutsOfTheAttemptsModel(t *testing.T) {
	const pol = `version: 1
timeouts:
  call: 30s
  total: 60s
  models:
    - match: ["o3*"]
      call: 5m
      total: 6m
    - match: [gpt-4.1]
      total: 20m
routing:
  rules:
    - name: think
      when: {requested_model: [gpt-4o, gpt-4.1]}
      model: o3
fallback:
  models: [gpt-4o-mini]
`
	for _, c := range []struct {
		name, model string
		want        time.Duration // when the call ends
		answered    bool          // by the fallback gpt-4o-mini, 10s after it is asked
		err         error
	}{
		// o3's attempt gets o3's 5m, then gpt-4o-mini its 30s.
		{"o3 asked", "o3", 5*time.Minute + 10*time.Second, true, nil},
		// The call's total follows the model it was routed to: o3's 6m,
		// not gpt-4o's 60s, lets the o3 attempt run its 5m.
		{"routed from gpt-4o", "gpt-4o", 5*time.Minute + 10*time.Second, true, nil},
		// gpt-4.1's total (20m) lets the o3 attempt run its 5m.
		{"routed from gpt-4.1", "gpt-4.1", 5*time.Minute + 10*time.Second, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On(openaitest.Model("o3")).Reply(openaitest.Stall())
				srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "ok", Latency: 10 * time.Second})
				cl := goClient(t, srv, mustPolicy(t, pol))
				start := time.Now()
				resp, err := cl.CreateChatCompletion(context.Background(), hangChatReq(c.model, false))
				el := time.Since(start)
				if el != c.want {
					t.Errorf("the call ended after %v, want %v (%d upstream requests: %v)", el, c.want, srv.Count(), err)
				}
				if c.answered {
					if err != nil || len(resp.Choices) == 0 || resp.Choices[0].Message.Content != "ok" {
						t.Fatalf("got %+v, %v; want the fallback's answer", resp, err)
					}
				} else if !errors.Is(err, c.err) {
					t.Errorf("err %v, want %v", err, c.err)
				}
				if reqs := srv.Requests(); len(reqs) == 0 || reqs[0].Chat == nil || reqs[0].Chat.Model != "o3" {
					t.Errorf("first upstream request not of o3: %d requests", len(reqs))
				}
			})
		})
	}
}

// A reasoning model named in another case than the catalog's ("O3",
// "GPT-5", "OpenAI/O4-Mini": some providers and users write names so, and
// the catalog prices them as its models) gets its model's limits under
// the default policy: a call answering after 45s, streamed or not, is
// answered in one upstream request, billed once, not cut at 30s and sent
// again.
func TestDefaultPolicyLetsAReasoningModelInAnotherCaseThink(t *testing.T) {
	for _, model := range []string{"O3", "GPT-5", "OpenAI/O4-Mini"} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", model, stream), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := openaitest.New()
					srv.On().Reply(openaitest.Reply{Content: "the answer", Latency: 45 * time.Second})
					c := goClient(t, srv, policies.Default())
					ctx, run := middleware.StartRun(context.Background(), "r")
					content, err := chatContent(ctx, c, hangChatReq(model, stream))
					if err != nil || content != "the answer" {
						t.Fatalf("a %s call answering after 45s: %q, %v (%d upstream requests)", model, content, err, srv.Count())
					}
					if n := srv.Count(); n != 1 {
						t.Errorf("%d upstream requests for one %s call answering after 45s, want 1 (each is billed)", n, model)
					}
					u, micro := run.Spent()
					spec, ok := policies.Default().Model(model)
					if !ok {
						t.Fatalf("the catalog does not price %s", model)
					}
					if want := (int64(spec.Cost(policies.TokenCounts{Input: u.InputTokens, Output: u.OutputTokens})) + 999_999) / 1_000_000; micro != want || want <= 0 {
						t.Errorf("run spent %d micro-USD, want the one answer's %d", micro, want)
					}
				})
			})
		}
	}
}

// chatContent makes a chat call with c, streamed when req asks, and
// returns its answer's content.
func chatContent(ctx context.Context, c *goopenai.Client, req goopenai.ChatCompletionRequest) (string, error) {
	if !req.Stream {
		resp, err := c.CreateChatCompletion(ctx, req)
		if err != nil {
			return "", err
		}
		if len(resp.Choices) == 0 {
			return "", errors.New("no choices")
		}
		return resp.Choices[0].Message.Content, nil
	}
	s, err := c.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return "", err
	}
	defer s.Close()
	var content string
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return content, nil
		}
		if err != nil {
			return content, err
		}
		for _, ch := range chunk.Choices {
			content += ch.Delta.Content
		}
	}
}
