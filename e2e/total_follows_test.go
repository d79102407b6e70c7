package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// The reasoning timeouts of the default policy, gpt-4o's 30s and 60s
// beside o3's 10m; routed or fallback is appended.
const followTimeouts = `version: 1
timeouts:
  call: 30s
  total: 60s
  models:
    - match: ["o3*"]
      call: 10m
      total: 10m
      first_token: 10m
      idle: 5m
`

const followRouted = followTimeouts + `routing:
  rules:
    - name: think
      when: {requested_model: [gpt-4o]}
      model: o3
`

const followFallback = followTimeouts + `fallback:
  models: [o3]
  retry: {max_attempts: 2, base_delay: 100ms}
`

// A call's total follows the model that answers it: a gpt-4o call (60s
// total) that a rule routes to o3, or that falls back to o3, is bounded by
// o3's total (10m), not cut at gpt-4o's 60s, retried and billed again:
// o3 thinking 3 minutes answers, in one o3 request, billed once; a hung o3
// ends at o3's 10m from the call's start, in one o3 request, with the
// total timeout. A call of o3 that falls back to gpt-4o keeps o3's total.
// Through go-openai's transport, streamed and not.
func TestTotalFollowsTheModelThatAnswers(t *testing.T) {
	o3pro := `version: 1
timeouts:
  call: 30s
  total: 60s
  models:
    - match: ["o3*"]
      call: 2m
      total: 10m
fallback:
  models: [gpt-4o]
`
	for _, c := range []struct {
		name, pol, model string
		gpt4o, o3        *openaitest.Reply
		min, max         time.Duration // when the call ends
		answered         bool
		o3Reqs           int
	}{
		{"routed, o3 thinks 3m", followRouted, "gpt-4o", nil, &openaitest.Reply{Content: "ok", Latency: 3 * time.Minute}, 3 * time.Minute, 3 * time.Minute, true, 1},
		{"routed, o3 hung", followRouted, "gpt-4o", nil, ptr(openaitest.Stall()), 10 * time.Minute, 10 * time.Minute, false, 1},
		{"fell back, o3 thinks 3m", followFallback, "gpt-4o", ptr(openaitest.ServerError()), &openaitest.Reply{Content: "ok", Latency: 3 * time.Minute}, 3 * time.Minute, 3*time.Minute + time.Second, true, 1},
		{"fell back, o3 hung", followFallback, "gpt-4o", ptr(openaitest.ServerError()), ptr(openaitest.Stall()), 10 * time.Minute, 10 * time.Minute, false, 1},
		{"o3 falls back to gpt-4o", o3pro, "o3", &openaitest.Reply{Content: "ok", Latency: 20 * time.Second}, ptr(openaitest.Stall()), 2*time.Minute + 20*time.Second, 2*time.Minute + 20*time.Second, true, 1},
	} {
		for _, stream := range []bool{false, true} {
			name := c.name
			if stream {
				name += " stream"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := openaitest.New()
					if c.gpt4o != nil {
						srv.On(openaitest.Model("gpt-4o")).Reply(*c.gpt4o)
					}
					srv.On(openaitest.Model("o3")).Reply(*c.o3)
					cl := goClient(t, srv, mustPolicy(t, c.pol))
					ctx, run := middleware.StartRun(context.Background(), "r")
					start := time.Now()
					content, err := chatContent(ctx, cl, hangChatReq(c.model, stream))
					el := time.Since(start)
					o3 := 0
					for _, r := range srv.Requests() {
						if r.Chat != nil && r.Chat.Model == "o3" {
							o3++
						}
					}
					if el < c.min || el > c.max {
						t.Errorf("the call ended after %v, want %v to %v (%v; %d upstream requests)", el, c.min, c.max, err, srv.Count())
					}
					if o3 != c.o3Reqs {
						t.Errorf("%d o3 requests, want %d (each is billed)", o3, c.o3Reqs)
					}
					if !c.answered {
						if !errors.Is(err, timeout.ErrTotal) || !errors.Is(err, middleware.ErrTimeout) {
							t.Errorf("err %v, want the total timeout", err)
						}
						return
					}
					if err != nil || content != "ok" {
						t.Fatalf("got %q, %v; want the answer", content, err)
					}
					u, micro := run.Spent()
					if c.model == "o3" {
						// o3's cut attempt is charged its input beside
						// gpt-4o's answer.
						if micro <= 0 {
							t.Errorf("run spent %d micro-USD, want the answer's cost", micro)
						}
						return
					}
					spec, _ := policies.Default().Model("o3")
					if want := (int64(spec.Cost(policies.TokenCounts{Input: u.InputTokens, Output: u.OutputTokens})) + 999_999) / 1_000_000; micro != want || want <= 0 {
						t.Errorf("run spent %d micro-USD, want the one o3 answer's %d", micro, want)
					}
				})
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The same through langchaingo: a gpt-4o call routed to o3, which thinks
// 3 minutes, is answered in one o3 request; a hung o3 ends at its 10m.
func TestTotalFollowsTheRoutedModelLangchaingo(t *testing.T) {
	for _, hung := range []bool{false, true} {
		t.Run(map[bool]string{false: "thinks 3m", true: "hung"}[hung], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				if hung {
					srv.On(openaitest.Model("o3")).Reply(openaitest.Stall())
				} else {
					srv.On(openaitest.Model("o3")).Reply(openaitest.Reply{Content: "ok", Latency: 3 * time.Minute})
				}
				chain, err := llmwrap.Build(mustPolicy(t, followRouted))
				if err != nil {
					t.Fatal(err)
				}
				models := twlc.Models{}
				for _, name := range []string{"gpt-4o", "o3"} {
					m, err := lcopenai.New(lcopenai.WithModel(name), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL(srv.URL),
						lcopenai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
					if err != nil {
						t.Fatal(err)
					}
					models[name] = m
				}
				llm := twlc.New(models, chain, twlc.WithDefaultModel("gpt-4o"))
				start := time.Now()
				resp, err := llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")}, llms.WithModel("gpt-4o"))
				el := time.Since(start)
				if n := srv.Count(); n != 1 {
					t.Errorf("%d upstream requests, want 1 (each is billed)", n)
				}
				if hung {
					if el != 10*time.Minute || !errors.Is(err, timeout.ErrTotal) {
						t.Errorf("a hung routed o3 ended after %v with %v, want 10m and the total timeout", el, err)
					}
					return
				}
				if err != nil || len(resp.Choices) == 0 || resp.Choices[0].Content != "ok" || el != 3*time.Minute {
					t.Errorf("got %+v, %v after %v; want o3's answer after 3m", resp, err, el)
				}
			})
		})
	}
}
