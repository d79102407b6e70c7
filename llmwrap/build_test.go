package llmwrap_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/policies"
)

func client(srv *openaitest.Server, p *policies.Policy) *goopenai.Client {
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	return goopenai.NewClientWithConfig(cfg)
}

func chatReq() goopenai.ChatCompletionRequest {
	return goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "status?"}}}
}

// A call over the policy's call timeout fails with an error that matches
// both context.DeadlineExceeded and timeout.ErrCall, through the real
// go-openai client, after exactly the configured time, and leaves no
// goroutine behind.
func TestPolicyCallTimeoutThroughGoOpenAI(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		defer srv.Close()
		srv.On().Reply(openaitest.Stall())
		p, err := policies.LoadBytes([]byte("version: 1\ntimeouts: {call: 30s}\n"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = client(srv, p).CreateChatCompletion(context.Background(), chatReq())
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, timeout.ErrCall) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d != 30*time.Second {
			t.Fatalf("timed out after %v, want 30s", d)
		}
	})
}

// The run guard built from a policy refuses the 11th call of a run limited
// to 10, through the go-openai client, with a typed error.
func TestPolicyRunGuardThroughGoOpenAI(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text("ok"))
	p, err := policies.LoadBytes([]byte("version: 1\nlimits: {max_calls: 10}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := client(srv, p)
	ctx, run := middlewareRun()
	for i := 1; i <= 10; i++ {
		if _, err := c.CreateChatCompletion(ctx, chatReq()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = c.CreateChatCompletion(ctx, chatReq())
	var le *guard.LimitError
	if !errors.Is(err, guard.ErrMaxCalls) || !errors.As(err, &le) || le.Call != 11 {
		t.Fatalf("11th call: %v", err)
	}
	if srv.Count() != 10 {
		t.Fatalf("provider saw %d requests, want 10", srv.Count())
	}
	if got := len(run.Calls()); got != 11 {
		t.Fatalf("run recorded %d calls", got)
	}
}

func TestBuildRejectsInvalidPolicy(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Routing: policies.Routing{Default: "no-such-model"}}
	if _, err := llmwrap.Build(p); err == nil || !errors.Is(err, policies.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

// TestWithStateKeepsTheCache: two Builds of a cache policy given the same
// State share the in-memory cache (an answer stored through the first
// chain is a hit through the second); without a State they do not.
func TestWithStateKeepsTheCache(t *testing.T) {
	t.Parallel()
	p, err := policies.LoadBytes([]byte("version: 1\ncache: {enabled: true, ttl: 1h}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		state *llmwrap.State
		want  int // provider requests for two identical calls through two builds
	}{{"with state", llmwrap.NewState(), 1}, {"without state", nil, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.New()
			defer srv.Close()
			srv.On().Reply(openaitest.Text("the disk is fine"))
			var opts []llmwrap.Option
			if tc.state != nil {
				opts = append(opts, llmwrap.WithState(tc.state))
			}
			var answers []string
			for range 2 {
				cfg := goopenai.DefaultConfig("test")
				cfg.BaseURL = srv.URL
				cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, opts...), twopenai.WithBaseTransport(srv.Transport()))
				resp, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), chatReq())
				if err != nil {
					t.Fatal(err)
				}
				answers = append(answers, resp.Choices[0].Message.Content)
			}
			if n := srv.Count(); n != tc.want {
				t.Fatalf("%d provider requests, want %d", n, tc.want)
			}
			if answers[0] != "the disk is fine" || answers[1] != answers[0] {
				t.Fatalf("answers %q", answers)
			}
		})
	}
}

// In a run, a hung call ends at the earlier of the policy's call timeout
// and the run deadline (which share one timer, see middleware.Deadline),
// with that one's typed error, through the real go-openai client, and
// leaves no goroutine behind.
func TestPolicyRunDeadlineAndCallTimeoutThroughGoOpenAI(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, c := range []struct {
		policy string
		want   error
		after  time.Duration
	}{
		{"version: 1\nlimits: {run_timeout: 5m}\ntimeouts: {call: 30s}\n", timeout.ErrCall, 30 * time.Second},
		{"version: 1\nlimits: {run_timeout: 20s}\ntimeouts: {call: 30s}\n", guard.ErrRunDeadline, 20 * time.Second},
	} {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			defer srv.Close()
			srv.On().Reply(openaitest.Stall())
			p, err := policies.LoadBytes([]byte(c.policy), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			ctx, _ := middlewareRun()
			start := time.Now()
			_, err = client(srv, p).CreateChatCompletion(ctx, chatReq())
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, c.want) {
				t.Fatalf("%s: err = %v, want %v", c.policy, err, c.want)
			}
			if d := time.Since(start); d != c.after {
				t.Fatalf("%s: ended after %v, want %v", c.policy, d, c.after)
			}
		})
	}
}
