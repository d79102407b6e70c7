package llmwrap_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/toolwrap"
)

const storyPolicy = `version: 1
routing: {default: gpt-4o}
cache: {enabled: true, deterministic_only: false}
fallback:
  models: [gpt-4o, gpt-4o-mini]
  retry: {max_attempts: 2, base_delay: 10ms, max_delay: 10ms}
`

// The run report tells what happened: the tools by name per turn with the
// parallel turn marked, a retry and a fallback with their reasons, a
// budget downgrade, a cache hit shown as saved money (not "0 tokens"),
// "1 call" in the singular, and no empty tool or cache columns in a run
// without them. The agent is a real go-openai tool loop over the scripted
// server; synctest makes the tools' and retries' times exact.
func TestReportNamesToolsAttemptsAndReasons(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		defer srv.Close()
		// Call 1: rate limited once, then asks for two independent checks.
		srv.On(openaitest.LastRole("user")).Reply(
			openaitest.Reply{Status: http.StatusTooManyRequests, Error: &openaitest.APIError{Message: "slow down", Type: "rate_limit_error"}},
			openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{}`), openaitest.Call("c2", "check_memory", `{}`)))
		// Call 2: gpt-4o is down (twice: the try and its retry); gpt-4o-mini asks for clean_logs.
		srv.On(openaitest.LastContains("Memory:"), openaitest.Model("gpt-4o")).Reply(
			openaitest.Reply{Status: http.StatusServiceUnavailable, Error: &openaitest.APIError{Message: "overloaded", Type: "server_error"}}).Times(2)
		srv.On(openaitest.LastContains("Memory:")).Reply(openaitest.ToolCalls(openaitest.Call("c3", "clean_logs", `{}`)))
		// Call 3 (and 4, from the cache): the answer.
		srv.On(openaitest.LastContains("Freed")).Reply(openaitest.Text("Cleaned /var/log, freed 20GB."))

		chain := llmwrap.MustBuild(mustLoad(t, storyPolicy))
		cfg := goopenai.DefaultConfig("test")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
		client := goopenai.NewClientWithConfig(cfg)
		sleepy := func(d time.Duration, out string) func(context.Context, string) (string, error) {
			return func(context.Context, string) (string, error) { time.Sleep(d); return out, nil }
		}
		ex, err := toolwrap.New([]toolwrap.Tool{
			{Name: "check_disk", Call: sleepy(300*time.Millisecond, "Disk: 95%")},
			{Name: "check_memory", Call: sleepy(300*time.Millisecond, "Memory: 41%")},
			{Name: "clean_logs", Call: sleepy(100*time.Millisecond, "Freed 20GB"), Meta: toolwrap.Meta{SideEffects: true}},
		}, toolwrap.Config{MaxParallel: 4})
		if err != nil {
			t.Fatal(err)
		}
		defs := twopenai.ToolDefinitions(ex)
		ctx, run := middleware.StartRun(context.Background(), "story")
		msgs := []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space. Sort it out."}}
		var last goopenai.ChatCompletionRequest
		for range 5 {
			last = goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs, Tools: defs}
			resp, err := client.CreateChatCompletion(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			msg := resp.Choices[0].Message
			msgs = append(msgs, msg)
			if len(msg.ToolCalls) == 0 {
				break
			}
			out, err := twopenai.ExecuteToolCalls(ctx, ex, msg.ToolCalls)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, out...)
		}
		if _, err := client.CreateChatCompletion(ctx, last); err != nil { // the same question again
			t.Fatal(err)
		}
		rep := observe.Report(run)
		t.Log("\n" + rep)
		for _, want := range []string{
			"tools: check_disk, check_memory (parallel) → clean_logs",
			"3 calls in 2 turns, 700ms of tool time in 400ms wall (parallel saved 300ms)",
			"call 1: gpt-4o failed (", "rate limit", "retried after ",
			"call 2: 3 attempts: gpt-4o failed (", "again gpt-4o failed (", "fallback gpt-4o-mini ok",
			"check_disk, check_memory\n", "clean_logs\n", "answer\n",
			"saved $0.", "(1 from the cache, saved $",
			"1 cache hit",
		} {
			if !strings.Contains(rep, want) {
				t.Errorf("report lacks %q", want)
			}
		}
		// The cache hit's row shows what it saved, not "0 tokens".
		if hit := regexp.MustCompile(`(?m)^4 .*$`).FindString(rep); !strings.Contains(hit, "hit") || !strings.Contains(hit, "saved $") || regexp.MustCompile(`\s0\s+0\s`).MatchString(hit) {
			t.Errorf("cache hit row %q", hit)
		}
		if strings.Contains(rep, "1 calls") || strings.Contains(rep, "1 turns") {
			t.Error("plural of one")
		}
	})

	// A downgrade is named, with its reason, where the rule column alone
	// would say "no rule matched".
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	p := mustLoad(t, `version: 1
routing: {default: gpt-4o}
budget:
  request: {max_output_tokens: 200}
  run: {max_usd: 0.001}
  on_exceed: downgrade
  downgrade_to: gpt-4o-mini
`)
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	ctx, run := middleware.StartRun(context.Background(), "chat")
	if _, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "What is the capital of France?"}}}); err != nil {
		t.Fatal(err)
	}
	rep := observe.Report(run)
	t.Log("\n" + rep)
	for _, want := range []string{"run chat: 1 call,", "downgraded gpt-4o → gpt-4o-mini", "gpt-4o-mini: 1 call,"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Nothing empty: no tools, no cache, no errors in this run.
	for _, unwanted := range []string{"tool", "cache", "error", "0 in 0s"} {
		if strings.Contains(rep, unwanted) {
			t.Errorf("report of a tool-less, cache-less run mentions %q", unwanted)
		}
	}
}

func mustLoad(t *testing.T, yaml string) *policies.Policy {
	t.Helper()
	p, err := policies.LoadBytes([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
