package e2e

import (
	"context"
	"testing"
	"testing/synctest"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
)

// A cascade escalates when its cheap model fails, whatever the failure:
// an answer that never comes within timeouts.call is the cheap model's
// failure as a 503 is, and the strong model is asked within the call's
// total. The step's timeout was taken for the call's own deadline, so the
// call failed with it while the strong model was never asked.
func TestCascadeEscalatesWhenTheCheapModelTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Stall())
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("strong"))
		p := mustPolicy(t, cascadePolicy+"timeouts: {call: 5s, total: 30s}\n")
		c := rlClient(srv, llmwrap.MustBuild(p))
		ctx, run := middleware.StartRun(context.Background(), "cascade")
		resp, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}})
		if err != nil {
			t.Fatalf("%v (provider saw %v)", err, models(srv))
		}
		if got := resp.Choices[0].Message.Content; got != "strong" {
			t.Errorf("answer %q, want the strong model's", got)
		}
		if got := join(models(srv)); got != "gpt-4o-mini,gpt-4o" {
			t.Errorf("upstream models %s", got)
		}
		if c := run.Calls()[0]; c.Model != "gpt-4o" {
			t.Errorf("record: model %s", c.Model)
		}
		srv.Close()
	})
}

// A cheap model whose circuit breaker is open is a failure of that step:
// the cascade asks the strong model. The breaker's refusal ended the call.
func TestCascadeEscalatesPastAnOpenBreaker(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Unavailable())
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("strong"))
	p := mustPolicy(t, cascadePolicy+"fallback: {breaker: {consecutive_failures: 1, open_for: 1m}}\n")
	c := goClient(t, srv, p)
	for i := range 2 {
		resp, err := c.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}})
		if err != nil {
			t.Fatalf("call %d: %v (provider saw %v)", i+1, err, models(srv))
		}
		if got := resp.Choices[0].Message.Content; got != "strong" {
			t.Errorf("call %d: answer %q, want the strong model's", i+1, got)
		}
	}
	// The second call never reached the cheap model: its breaker is open.
	if got := join(models(srv)); got != "gpt-4o-mini,gpt-4o,gpt-4o" {
		t.Errorf("upstream models %s", got)
	}
}
