package redis_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLocalShareSurvivesAReload: while Redis is down, a team budget with
// on_unavailable: local spends its local share (half of 2,000 tokens: three
// calls of 300 tokens) and then refuses; a policy reload meanwhile — of
// another team's file, or of the team's own with the same budget — does
// not give the share back. Before, every reload built the chains anew,
// each budget with a new local ledger, and every reload let the team
// spend its share once more.
func TestLocalShareSurvivesAReload(t *testing.T) {
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer down.Close()
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const devops = `version: 1
name: devops
budget:
  team: {period: daily, max_tokens: 2000}
  store: {kind: redis, on_unavailable: local, local_fraction: 0.5}
`
	write("default.yaml", "version: 1\nname: default\n")
	write("devops.yaml", devops)
	write("payments.yaml", "version: 1\nname: payments\nlimits: {max_calls: 10}\n")
	logger := slog.New(slog.DiscardHandler)
	preg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := llmwrap.NewRegistry(preg, llmwrap.WithBudgetStore(redis.NewBudgetStore(down)), llmwrap.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Reply{Content: "df says 42%", Usage: &openaitest.Usage{PromptTokens: 10, CompletionTokens: 290}})
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = oaiadapter.NewHTTPClient(reg.Middleware(), oaiadapter.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx := middleware.WithTeam(context.Background(), "devops")
	// admitted makes calls until the budget refuses one.
	admitted := func() int {
		t.Helper()
		for i := range 10 {
			_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 290,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "df -h"}}})
			if errors.Is(err, budget.ErrExceeded) {
				return i
			}
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
		return 10
	}
	if n := admitted(); n != 3 {
		t.Fatalf("%d calls admitted with Redis down, want 3 (the local share: 1,000 tokens)", n)
	}
	for name, edit := range map[string]func(){
		"another team's file": func() { write("payments.yaml", "version: 1\nname: payments\nlimits: {max_calls: 20}\n") },
		"the team's own file": func() { write("devops.yaml", devops+"limits: {max_calls: 50}\n") },
	} {
		edit()
		if err := preg.Reload(); err != nil {
			t.Fatal(err)
		}
		if n := admitted(); n != 0 {
			t.Errorf("after a reload of %s: %d calls admitted, want 0 (the local share is spent)", name, n)
		}
	}
	if n := srv.Count(); n != 3 {
		t.Fatalf("the provider got %d calls, want 3", n)
	}
}

// TestLocalRateShareSurvivesAReload: while Redis is down, the rate limits
// with on_unavailable: local admit their local share (a tenth of 60 rpm:
// one call, then one every 10s) and refuse the next call; a reload of the
// policy directory does not admit it. Before, the rebuilt chain's limiter
// had a new local state, and admitted another call after each reload.
func TestLocalRateShareSurvivesAReload(t *testing.T) {
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer down.Close()
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("default.yaml", `version: 1
name: default
rate_limits:
  models: {gpt-4o: {rpm: 60}}
  on_limit: reject
  store: {kind: redis, on_unavailable: local}
`)
	write("payments.yaml", "version: 1\nname: payments\nlimits: {max_calls: 10}\n")
	logger := slog.New(slog.DiscardHandler)
	preg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := llmwrap.NewRegistry(preg, llmwrap.WithRateLimitStore(redis.NewRateLimitStore(down)), llmwrap.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text("ok"))
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = oaiadapter.NewHTTPClient(reg.Middleware(), oaiadapter.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ask := func() error {
		_, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "df -h"}}})
		return err
	}
	if err := ask(); err != nil {
		t.Fatalf("the local share's call: %v", err)
	}
	if err := ask(); !errors.Is(err, middleware.ErrRateLimited) {
		t.Fatalf("a call past the local share: %v, want a rate limit refusal", err)
	}
	write("payments.yaml", "version: 1\nname: payments\nlimits: {max_calls: 20}\n")
	if err := preg.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := ask(); !errors.Is(err, middleware.ErrRateLimited) {
		t.Fatalf("a call past the local share after a reload: %v, want a rate limit refusal", err)
	}
	if n := srv.Count(); n != 1 {
		t.Fatalf("the provider got %d calls, want 1", n)
	}
}
