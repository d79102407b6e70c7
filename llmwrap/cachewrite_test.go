package llmwrap_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestCacheWritesAreReservedAtTheirRate: a model whose prompt-cache
// writes cost more than its input (Anthropic's: 1.25 times; the catalog's
// cache_write_per_1m) may bill the whole prompt as written to the cache,
// and the budget reserves that worst case. A run budget that affords the
// prompt at the input rate but not at the cache-write rate refuses the
// call before it is sent; it used to reserve the input rate, let the call
// through and settle more than its limit when the provider billed the
// prompt as a cache write.
func TestCacheWritesAreReservedAtTheirRate(t *testing.T) {
	t.Parallel()
	const model = "claude-sonnet-4-5" // input $3, cache writes $3.75, output $15 per 1M tokens
	question := strings.Repeat("disk ", 1000)
	in := tokens.New().Request(model, &middleware.Request{Model: model, Messages: []middleware.Message{{Role: middleware.RoleUser, Content: question}}})
	atInputRate := in*3_000_000 + 10*15_000_000          // pico-dollars: the prompt at the input rate, 10 output tokens
	atWriteRate := in*3_750_000 + 10*15_000_000          // the prompt written to the cache
	limit := (atInputRate + atWriteRate) / 2 / 1_000_000 // micro-dollars: between the two
	p := &policies.Policy{Version: 1, Name: "claude", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 10},
		Run:     policies.RunBudget{MaxUSD: policies.MicroUSD(limit)},
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Raw: [][]byte{fmt.Appendf(nil, `{"id":"c1","object":"chat.completion","created":1,"model":%q,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":%d,"completion_tokens":10,"total_tokens":%d,"prompt_tokens_details":{"cache_write_tokens":%d}}}`,
		model, in, in+10, in)}})
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://anthropic-proxy.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(context.Background(), "cache-write")
	_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: model,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: question}}})
	spent := run.Totals().CostPico
	if spent > limit*1_000_000 {
		t.Errorf("the run spent %s of its %s budget", middleware.FormatPico(spent), middleware.FormatPico(limit*1_000_000))
	}
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Scope != "run" || srv.Count() != 0 {
		t.Fatalf("err = %v after %d calls sent, want the run budget's refusal before any", err, srv.Count())
	}
	if want := (atWriteRate + 999_999) / 1_000_000; e.Need != want {
		t.Errorf("the refusal says the call needs %d µ$, want %d (its prompt at the cache-write rate)", e.Need, want)
	}
}
