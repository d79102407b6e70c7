package otel_test

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestCostIsCountedUnderEachAttemptsModel: a call whose first attempt on
// gpt-4o is billed (a malformed answer: the provider produced it) and
// falls back to gpt-4o-mini counts each attempt's cost in tokenwise.cost
// under the model that billed it, as the run's totals per model (and the
// provider's bill) do; the sum is the call's cost. Its tokens in
// gen_ai.client.token.usage are under their models too, one record per
// model and token type.
func TestCostIsCountedUnderEachAttemptsModel(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := newHarness(t)
	srv := openaitest.New()
	defer srv.Close()
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "half", Fault: openaitest.Fault{Kind: openaitest.FaultEOF}})
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Text("The disk is 42% full."))
	p, err := policies.LoadBytes([]byte("version: 1\nfallback: {models: [gpt-4o-mini]}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(h.obs)), twopenai.WithBaseTransport(srv.Transport()))
	c := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "r1")
	if _, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk on web-1? Check it."}}}); err != nil {
		t.Fatal(err)
	}
	calls := run.Calls()
	if len(calls) != 1 || len(calls[0].Attempts) != 2 || calls[0].Attempts[0].Model != "gpt-4o" || calls[0].Attempts[0].CostPico <= 0 ||
		calls[0].Attempts[1].Model != "gpt-4o-mini" || calls[0].Attempts[1].CostPico <= 0 {
		t.Fatalf("want a billed gpt-4o attempt, then gpt-4o-mini: %+v", calls)
	}
	m := h.metrics(t)
	byModel := run.Totals().ByModel
	for _, model := range []string{"gpt-4o", "gpt-4o-mini"} {
		if got, want := sumOf(t, m["tokenwise.cost"], is("gen_ai.response.model", model)), byModel[model].CostPico; got != want {
			t.Errorf("tokenwise.cost of %s = %d pico, the run's totals say %d", model, got, want)
		}
	}
	if got := sumOf(t, m["tokenwise.cost"], nil); got != calls[0].CostPico {
		t.Errorf("tokenwise.cost = %d, the call cost %d", got, calls[0].CostPico)
	}
	for _, model := range []string{"gpt-4o", "gpt-4o-mini"} {
		for typ, want := range map[string]int64{"input": byModel[model].Usage.InputTokens, "output": byModel[model].Usage.OutputTokens} {
			n, sum := histCount(t, m["gen_ai.client.token.usage"], func(s attribute.Set) bool {
				return is("gen_ai.response.model", model)(s) && is("gen_ai.token.type", typ)(s)
			})
			if n != 1 || int64(sum) != want {
				t.Errorf("%s tokens of %s: %d records summing to %v, the run's totals say %d", typ, model, n, sum, want)
			}
		}
	}
}
