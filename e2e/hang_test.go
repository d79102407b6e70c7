package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
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
