package llmwrap_test

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestCacheDoesNotKeepAFallbackModelsAnswer: when the model a request is
// routed to fails and the fallback model answers, that answer is not the
// answer to the request while its model is healthy: the next identical
// call goes to the routed model, not served the fallback's answer.
func TestCacheDoesNotKeepAFallbackModelsAnswer(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.ServerError()).Times(1)
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("I am 4o"))
	srv.On(openaitest.Model("gpt-4.1")).Reply(openaitest.Text("I am 4.1"))
	mw := llmwrap.MustBuild(mustLoad(t, "version: 1\ncache: {enabled: true, ttl: 1h}\nfallback: {models: [gpt-4.1]}\n"))
	askThrough(t, srv, mw, "devops") // gpt-4o fails, gpt-4.1 answers
	before := srv.Count()
	askThrough(t, srv, mw, "devops")
	if srv.Count() == before {
		t.Fatal("the healthy gpt-4o's request was served the fallback gpt-4.1's answer from the cache")
	}
	// gpt-4o's own answer is kept.
	before = srv.Count()
	askThrough(t, srv, mw, "devops")
	if srv.Count() != before {
		t.Fatal("the routed model's answer was not kept")
	}
}

// TestCacheDoesNotKeepADowngradedAnswer: a run whose budget downgrades
// its call gets the cheaper model's answer; another run, whose budget
// affords the model asked for, must not be served that answer.
func TestCacheDoesNotKeepADowngradedAnswer(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("I am 4o"))
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Text("I am mini"))
	p := mustLoad(t, `version: 1
cache: {enabled: true, ttl: 1h}
budget:
  request: {max_output_tokens: 200}
  run: {max_usd: 0.001}
  on_exceed: downgrade
  downgrade_to: gpt-4o-mini
`)
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ask := func(ctx context.Context) string {
		t.Helper()
		r, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "What is the capital of France?"}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Choices[0].Message.Content
	}
	// 200 output tokens of gpt-4o cost more than the run's $0.001: the
	// call is downgraded.
	ctx, _ := middleware.StartRun(context.Background(), "poor")
	if got := ask(ctx); got != "I am mini" {
		t.Fatalf("the downgraded call got %q", got)
	}
	// The same request with no run (no run budget): gpt-4o answers.
	if got := ask(context.Background()); got != "I am 4o" {
		t.Fatalf("a call its budget affords got %q, the downgraded run's answer", got)
	}
}
