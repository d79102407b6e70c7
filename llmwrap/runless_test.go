package llmwrap_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Run limits apply only inside middleware.StartRun. A call made outside a
// run under a policy with run limits logs once per chain that they need
// StartRun, instead of silently not limiting anything; calls in a run and
// chains without run limits log nothing.
func TestRunLimitsOutsideARunWarnOnce(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	client := func(p *policies.Policy) (*goopenai.Client, *bytes.Buffer) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &sync.Mutex{}}, nil))
		chain, err := llmwrap.Build(p, llmwrap.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		cfg := goopenai.DefaultConfig("test")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
		return goopenai.NewClientWithConfig(cfg), &logs
	}
	ask := func(c *goopenai.Client, ctx context.Context, i int) {
		if _, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("q%d", i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	const notice = "apply only to calls made with the context of middleware.StartRun"

	c, logs := client(policies.Default()) // limits: max_calls 10, run_timeout 15m
	runCtx, _ := middleware.StartRun(context.Background(), "r")
	ask(c, runCtx, 0)
	if strings.Contains(logs.String(), notice) {
		t.Fatalf("a call in a run logged the notice:\n%s", logs)
	}
	for i := range 5 {
		ask(c, context.Background(), i+1)
	}
	if n := strings.Count(logs.String(), notice); n != 1 || !strings.Contains(logs.String(), "max_calls 10, run_timeout 15m") {
		t.Fatalf("%d notices, want 1 naming the limits:\n%s", n, logs)
	}

	free := policies.Default()
	free.Limits = policies.Limits{}
	c, logs = client(free)
	ask(c, context.Background(), 9)
	if strings.Contains(logs.String(), notice) {
		t.Fatalf("a policy without run limits logged the notice:\n%s", logs)
	}
}
