package llmwrap_test

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// routedPolicy is a policy whose calls all go to model, cached in scope.
func routedPolicy(t *testing.T, scope, model string) *policies.Policy {
	t.Helper()
	p, err := policies.LoadBytes([]byte("version: 1\ncache: {enabled: true, ttl: 1h, scope: "+scope+"}\nrouting: {default: "+model+"}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// askThrough asks the same question through the real go-openai client
// over the chain mw, as team.
func askThrough(t *testing.T, srv *openaitest.Server, mw middleware.Middleware, team string) {
	t.Helper()
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(mw, twopenai.WithBaseTransport(srv.Transport()))
	_, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(middleware.WithTeam(context.Background(), team),
		goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "which model are you?"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCacheNeverServesAnotherRoutesAnswer: the cache sits outside the
// router, so the answer it keeps for a request is the routed model's. A
// chain whose policy routes the same request elsewhere — the team's
// policy after a reload that changed its routing, or another team's
// under a global cache — must not be answered with it: that request
// would get another model's answer.
func TestCacheNeverServesAnotherRoutesAnswer(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Text("I am mini"))
	srv.On(openaitest.Model("gpt-4.1")).Reply(openaitest.Text("I am 4.1"))

	t.Run("reload", func(t *testing.T) {
		srv.Reset()
		st := llmwrap.NewState()
		askThrough(t, srv, llmwrap.MustBuild(routedPolicy(t, "team", "gpt-4o-mini"), llmwrap.WithState(st)), "devops")
		askThrough(t, srv, llmwrap.MustBuild(routedPolicy(t, "team", "gpt-4.1"), llmwrap.WithState(st)), "devops")
		if srv.Count() != 2 {
			t.Fatalf("%d provider calls, want 2: the reloaded policy's call was answered by the old route's model", srv.Count())
		}
		// The same policy again (a reload that changed nothing else): a hit.
		askThrough(t, srv, llmwrap.MustBuild(routedPolicy(t, "team", "gpt-4.1"), llmwrap.WithState(st)), "devops")
		if srv.Count() != 2 {
			t.Fatalf("%d provider calls, want 2: an equal policy's answer was not reused", srv.Count())
		}
	})
	t.Run("global scope", func(t *testing.T) {
		srv.Reset()
		store := cache.NewMemory(cache.MemoryOptions{})
		askThrough(t, srv, llmwrap.MustBuild(routedPolicy(t, "global", "gpt-4o-mini"), llmwrap.WithCacheStore(store)), "a")
		askThrough(t, srv, llmwrap.MustBuild(routedPolicy(t, "global", "gpt-4.1"), llmwrap.WithCacheStore(store)), "b")
		if srv.Count() != 2 {
			t.Fatalf("%d provider calls, want 2: team b was answered by team a's route", srv.Count())
		}
		askThrough(t, srv, llmwrap.MustBuild(routedPolicy(t, "global", "gpt-4.1"), llmwrap.WithCacheStore(store)), "c")
		if srv.Count() != 2 {
			t.Fatalf("%d provider calls, want 2: teams that route alike do not share", srv.Count())
		}
	})
}
