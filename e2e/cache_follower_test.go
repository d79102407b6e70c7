package e2e

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestFollowersGetTheLeadersWholeAnswer: identical concurrent misses make
// one provider call, and each follower is served the leader's answer.
// When that answer is not kept (a choice cut by length), the followers
// still get the whole answer the provider sent, as the leader did: both
// choices, logprobs and system_fingerprint, not the first choice rendered
// from the core answer.
func TestFollowersGetTheLeadersWholeAnswer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		finish string // the second choice's
	}{
		{"kept", "stop"},
		{"not kept", "length"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1",` +
					`"choices":[{"index":0,"message":{"role":"assistant","content":"Freed 20GB."},` +
					`"logprobs":{"content":[{"token":"Freed","logprob":-0.5,"bytes":null,"top_logprobs":[]}]},"finish_reason":"stop"},` +
					`{"index":1,"message":{"role":"assistant","content":"Freed 2"},"logprobs":null,"finish_reason":"` + c.finish + `"}],` +
					`"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}`
				srv := openaitest.New()
				srv.On().Reply(openaitest.Reply{Body: []byte(body), Latency: time.Second})
				client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), srv.Transport())
				req := chatRequest("clean the logs")
				req.N, req.LogProbs = 2, true
				const n = 4
				got := make([]openai.ChatCompletionResponse, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				wg.Go(func() { got[0], errs[0] = client.CreateChatCompletion(context.Background(), req) })
				synctest.Wait() // the leader waits for the provider
				for i := 1; i < n; i++ {
					wg.Go(func() { got[i], errs[i] = client.CreateChatCompletion(context.Background(), req) })
				}
				wg.Wait()
				if srv.Count() != 1 {
					t.Fatalf("%d provider calls, want 1", srv.Count())
				}
				want, _ := json.Marshal(got[0])
				if errs[0] != nil || len(got[0].Choices) != 2 || got[0].SystemFingerprint != "fp_1" {
					t.Fatalf("leader: %s, %v", want, errs[0])
				}
				for i := 1; i < n; i++ {
					b, _ := json.Marshal(got[i])
					if errs[i] != nil || string(b) != string(want) {
						t.Errorf("follower %d: %s, %v\nwant the leader's %s", i, b, errs[i], want)
					}
				}
			})
		})
	}
}
