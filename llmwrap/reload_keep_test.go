package llmwrap_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestReloadKeepsTheChainsOfUnchangedPolicies: a reload that changes one
// team's file leaves the other teams' chains as they were, with what they
// learned: devops hedges its slow call at the median of the latencies it
// has seen (1s) before and after payments' policy is reloaded. Before,
// every reload rebuilt every team's chain, and a chain that hedges at a
// percentile forgot its latencies: devops stopped hedging until it had
// seen 20 calls again.
func TestReloadKeepsTheChainsOfUnchangedPolicies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		write := func(name, body string) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("default.yaml", "version: 1\nname: default\n")
		write("devops.yaml", "version: 1\nname: devops\nfallback:\n  hedge: {enabled: true, percentile: 50}\n")
		write("payments.yaml", "version: 1\nname: payments\nlimits: {max_calls: 10}\n")
		preg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		reg, err := llmwrap.NewRegistry(preg)
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()

		srv := openaitest.New()
		defer srv.Close()
		srv.On(openaitest.LastContains("slow")).Reply(openaitest.Reply{Content: "slow", Latency: 5 * time.Second})
		srv.On().Reply(openaitest.Reply{Content: "ok", Latency: time.Second})
		cfg := goopenai.DefaultConfig("test")
		cfg.BaseURL = "http://openai.test/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware(), twopenai.WithBaseTransport(srv.Transport()))
		client := goopenai.NewClientWithConfig(cfg)
		ctx := middleware.WithTeam(context.Background(), "devops")
		ask := func(text string) {
			t.Helper()
			if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: text}}}); err != nil {
				t.Fatal(err)
			}
		}
		// hedged reports whether a slow call was sent twice.
		hedged := func() bool {
			t.Helper()
			n := srv.Count()
			ask("slow")
			synctest.Wait()
			return srv.Count()-n == 2
		}
		for range 20 { // the samples the percentile needs
			ask("fast")
		}
		if !hedged() {
			t.Fatal("a slow call after 20 samples of 1s was not hedged")
		}
		write("payments.yaml", "version: 1\nname: payments\nlimits: {max_calls: 20}\n")
		if err := preg.Reload(); err != nil {
			t.Fatal(err)
		}
		if !hedged() {
			t.Fatal("after a reload of another team's policy, devops's slow call was not hedged: its chain forgot the latencies it had seen")
		}
	})
}
