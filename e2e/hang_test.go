package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Hostile callers and upstreams, each bounded so that a hang fails the
// test instead of hanging it: never a hang, never a leak.

func hangChatReq(model string, stream bool) goopenai.ChatCompletionRequest {
	return goopenai.ChatCompletionRequest{Model: model, Stream: stream,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}
}

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still running after %v: a hang", what, d)
	}
}

// A stream whose caller reads its first chunk and then neither reads nor
// closes the body (a caller stuck elsewhere; the gateway blocked writing
// to a client that stopped reading) is past its timeouts.call after
// 500ms: the transport runs the chain as a coroutine resumed by the
// caller's Read or Close, and the end of the chunk's context stops it
// then, so that the call's rate-limit concurrency slot, budget hold and
// goroutine are released, and the caller's next read returns the call
// timeout.
func TestAbandonedStreamReleasesItsSlotAtTheCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		// A healthy stream of 10 minutes: a chunk every 50ms.
		srv.On().Reply(openaitest.Reply{Content: strings.Repeat("x", 12000), ChunkSize: 1, ChunkLatency: 50 * time.Millisecond})
		client := goClient(t, srv, mustPolicy(t, `version: 1
timeouts: {call: 500ms, first_token: 300ms, idle: 300ms}
rate_limits:
  models:
    gpt-4o-mini: {max_concurrent: 1}
  on_limit: reject
`))
		s, err := client.CreateChatCompletionStream(context.Background(), hangChatReq("gpt-4o-mini", true))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		// The caller holds the stream without reading: 4 call timeouts pass.
		time.Sleep(2 * time.Second)
		s2, err := client.CreateChatCompletionStream(context.Background(), hangChatReq("gpt-4o-mini", true))
		if err != nil {
			t.Fatalf("a call 2s after another one's 500ms call timeout passed is refused: %v", err)
		}
		s2.Close()
		// The held stream reads what it was handed, then the timeout.
		for range 100 {
			if _, err = s.Recv(); err != nil {
				break
			}
		}
		if !errors.Is(err, timeout.ErrCall) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the held stream's next read: %v, want the call timeout", err)
		}
	})
}

// The embedded default policy bounds a call as its caller sees it:
// timeouts.call (30s) bounds each attempt, and with its retries
// (max_attempts 3) and fallback (gpt-4o-mini) an upstream that accepts a
// call and never answers would block a go-openai caller 6 × 30s;
// timeouts.total (60s) bounds all of them, streams and calls in a run
// too, with an error matching timeout.ErrTotal.
func TestDefaultPolicyBoundsAHungUpstream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		model  string
		stream bool
		inRun  bool
	}{
		{"gpt-4o", "gpt-4o", false, false},
		{"gpt-4o stream", "gpt-4o", true, false},
		{"gpt-4o-mini", "gpt-4o-mini", false, false},
		{"gpt-4o in a run", "gpt-4o", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(openaitest.Stall())
				c := goClient(t, srv, policies.Default())
				ctx := context.Background()
				if tc.inRun {
					ctx, _ = middleware.StartRun(ctx, "r")
				}
				req := hangChatReq(tc.model, tc.stream)
				var err error
				start := time.Now()
				if tc.stream {
					s, err2 := c.CreateChatCompletionStream(ctx, req)
					if err2 == nil {
						_, err2 = s.Recv()
						s.Close()
					}
					err = err2
				} else {
					_, err = c.CreateChatCompletion(ctx, req)
				}
				el := time.Since(start)
				t.Logf("%d upstream requests, failed after %v: %v", len(srv.Requests()), el, err)
				if el > time.Minute {
					t.Errorf("a hung upstream blocked the caller for %v (%d attempts of timeouts.call 30s) with the default policy", el, len(srv.Requests()))
				}
				if !errors.Is(err, timeout.ErrTotal) || !errors.Is(err, middleware.ErrTimeout) {
					t.Errorf("err %v, want the total timeout", err)
				}
			})
		})
	}
}

// ctxIgnoringModel is an llms.Model that ignores its context (a model in
// process, a client without deadlines): it streams one chunk, waits to
// be released, then streams another and answers.
type ctxIgnoringModel struct{ release chan struct{} }

func (b ctxIgnoringModel) GenerateContent(ctx context.Context, _ []llms.MessageContent, opts ...llms.CallOption) (*llms.ContentResponse, error) {
	var o llms.CallOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.StreamingFunc != nil {
		_ = o.StreamingFunc(ctx, []byte("early "))
	}
	<-b.release
	if o.StreamingFunc != nil {
		_ = o.StreamingFunc(ctx, []byte("late"))
	}
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: "early late", StopReason: "stop"}}}, nil
}

func (b ctxIgnoringModel) Call(ctx context.Context, p string, o ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, b, p, o...)
}

// An inner langchaingo model that ignores its context is given up on at
// timeouts.call (200ms), as toolwrap gives up on a tool that ignores its
// context: the caller gets the call timeout, its streaming func nothing
// the model sends after, and the call is billed as a timed-out one.
func TestLangchaingoModelIgnoringContextIsAbandoned(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rel := make(chan struct{})
				release := sync.OnceFunc(func() { close(rel) })
				defer release() // also when the test fails early
				chain := llmwrap.MustBuild(mustPolicy(t, "version: 1\ntimeouts: {call: 200ms}\n"))
				m := twlc.New(twlc.Models{"gpt-4o-mini": ctxIgnoringModel{rel}}, chain, twlc.WithDefaultModel("gpt-4o-mini"))
				ctx, run := middleware.StartRun(context.Background(), "r")
				var got []string
				var opts []llms.CallOption
				if stream {
					opts = append(opts, llms.WithStreamingFunc(func(_ context.Context, b []byte) error {
						got = append(got, string(b))
						return nil
					}))
				}
				var err error
				start := time.Now()
				within(t, time.Minute, "GenerateContent over a model that ignores its context (timeouts.call 200ms)", func() {
					_, err = m.GenerateContent(ctx, []llms.MessageContent{human("hi")}, opts...)
				})
				t.Logf("err %v", err)
				if el := time.Since(start); el != 200*time.Millisecond {
					t.Errorf("returned after %v, want the call timeout's 200ms", el)
				}
				if !errors.Is(err, timeout.ErrCall) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err %v, want the call timeout", err)
				}
				// The model answers late: nothing of it reaches the caller.
				release()
				synctest.Wait()
				if want := map[bool]string{true: "early "}[stream]; strings.Join(got, "|") != want {
					t.Errorf("the caller's streaming func got %q, want %q", got, want)
				}
				calls := run.Calls()
				if len(calls) != 1 || len(calls[0].Attempts) != 1 || calls[0].Attempts[0].Usage.InputTokens == 0 || calls[0].CostPico == 0 {
					t.Errorf("the abandoned call is not billed as a timed-out one: %+v", calls)
				}
			})
		})
	}
}
