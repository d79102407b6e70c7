package e2e

import (
	"context"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// When the strong model fails to regenerate a final answer the cheap model
// wrote (its outage, before anything reached the caller), the caller gets
// the cheap model's answer, which is whole and already paid for, with a
// note of the failure; a streaming caller exactly once. The call failed
// with the strong model's 503 instead, the final answer of every agent run
// lost for as long as the strong model was down.
func TestFailedRegenerationKeepsTheCheapAnswer(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "Delete old logs in /var/log.", ChunkSize: 4})
			srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Unavailable())
			client := goClient(t, srv, mustPolicy(t, regenPolicy+"cache: {enabled: true, ttl: 1h}\n"))
			ctx, run := middleware.StartRun(context.Background(), "regen")
			req := goopenai.ChatCompletionRequest{Model: "gpt-4o",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space."}}, Tools: diskTools}
			var got string
			var err error
			if stream {
				got, err = streamText(ctx, client, req)
			} else {
				var resp goopenai.ChatCompletionResponse
				resp, err = client.CreateChatCompletion(ctx, req)
				if err == nil {
					got = resp.Choices[0].Message.Content
				}
			}
			if err != nil {
				t.Fatalf("%v (upstream %s)", err, join(upstreamModels(srv)))
			}
			if got != "Delete old logs in /var/log." {
				t.Fatalf("answer %q, want the cheap model's, once", got)
			}
			if ms := join(upstreamModels(srv)); ms != "gpt-4o-mini,gpt-4o" {
				t.Fatalf("upstream %s", ms)
			}
			c := run.Calls()[0]
			if c.Model != "gpt-4o-mini" || len(c.Attempts) != 2 || c.Attempts[1].Err == nil {
				t.Errorf("record: model %s, attempts %+v", c.Model, c.Attempts)
			}
			if !strings.Contains(strings.Join(c.Notes, "; "), "regeneration with gpt-4o failed") {
				t.Errorf("notes %q", c.Notes)
			}
			// Not cached: the next identical call, with gpt-4o back, gets
			// its regeneration.
			if c.CacheReason == "" || !strings.Contains(c.CacheReason, "regeneration") {
				t.Errorf("cache reason %q: the kept answer must not be stored", c.CacheReason)
			}
		})
	}
}
