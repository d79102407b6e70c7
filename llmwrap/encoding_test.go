package llmwrap_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestPolicyEncodingTakesEffect: a policy's models.<name>.encoding decides
// how the chain counts the model's input — for a catalog model it
// overrides the catalog's encoding, for a model of the policy's own it
// replaces the conservative estimate with the exact count.
func TestPolicyEncodingTakesEffect(t *testing.T) {
	t.Parallel()
	req := &middleware.Request{Messages: []middleware.Message{{Role: middleware.RoleUser,
		Content: "Récupère l'espace disque: `du -sh /var/log/* | sort -h | tail -n 20` — puis résume-moi ça, s'il te plaît."}}}
	count := func(enc, model string) int64 {
		opts := []tokens.Option{}
		if enc != "" {
			opts = append(opts, tokens.WithModelEncoding(model, enc))
		}
		r := req.Clone()
		r.Model = model
		return tokens.New(opts...).Request(model, r)
	}
	// need returns the input tokens the chain reserves for req on model:
	// the run budget of 1 token refuses the call and says what it needed.
	need := func(models map[string]policies.ModelSpec, model string) int64 {
		t.Helper()
		p := &policies.Policy{Version: 1, Models: models, Budget: policies.Budget{
			Request: policies.RequestBudget{MaxOutputTokens: 10}, Run: policies.RunBudget{MaxTokens: 1}}}
		chain, err := llmwrap.Build(p)
		if err != nil {
			t.Fatal(err)
		}
		provider := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
			t.Fatal("the call was not refused")
			return nil, nil
		})
		ctx, _ := middleware.StartRun(context.Background(), "enc")
		r := req.Clone()
		r.Model = model
		_, err = middleware.Then(provider, chain).Handle(ctx, r)
		var e *budget.ExceededError
		if !errors.As(err, &e) {
			t.Fatalf("err = %v, want a budget refusal", err)
		}
		return e.Need - 10
	}
	o200k, cl100k, other := count("o200k_base", "gpt-4o"), count("cl100k_base", "gpt-4o"), count("", "my-llm")
	if o200k == cl100k || o200k == other {
		t.Fatalf("the text does not tell the encodings apart: o200k %d, cl100k %d, conservative %d", o200k, cl100k, other)
	}
	if got := need(nil, "gpt-4o"); got != o200k {
		t.Errorf("gpt-4o by the catalog: reserved %d input tokens, want the o200k_base count %d", got, o200k)
	}
	if got := need(map[string]policies.ModelSpec{"gpt-4o": {Encoding: "cl100k_base"}}, "gpt-4o"); got != cl100k {
		t.Errorf("gpt-4o with encoding: cl100k_base: reserved %d input tokens, want the cl100k_base count %d", got, cl100k)
	}
	if got := need(nil, "my-llm"); got != other {
		t.Errorf("my-llm unknown: reserved %d input tokens, want the conservative %d", got, other)
	}
	if got := need(map[string]policies.ModelSpec{"my-llm": {Encoding: "o200k_base", InputPer1M: 1}}, "my-llm"); got != o200k {
		t.Errorf("my-llm with encoding: o200k_base: reserved %d input tokens, want the o200k_base count %d", got, o200k)
	}
}
