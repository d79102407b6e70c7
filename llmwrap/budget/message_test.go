package budget_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRefusalSaysWhatTheCallReserves: a new user's first budgeted call
// ("Say hi" to gpt-4o under budget.run.max_usd 0.001, no max_tokens) is
// refused because it is priced at 16384 output tokens (gpt-4o's maximum
// output, since max_tokens is not set), and the budget affords fewer
// output tokens than budget.min_output_tokens (256), so it is not fitted.
// The refusal says so, after the amounts
//
//	tokenwise/budget: budget exceeded: run limit $0.001000, used $0.000000,
//	reserved $0.000000, call needs $0.163863 (gpt-4o); priced at 16384 output
//	tokens: gpt-4o's maximum output, as the request sets no max_tokens; the
//	budget affords 97 output tokens, below min_output_tokens (256)
//
// so that the user can tell that setting max_tokens (or lowering
// min_output_tokens) is the fix, not wonder why "Say hi" needs $0.16.
func TestRefusalSaysWhatTheCallReserves(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Name: "t", Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: policies.MicroUSD(1000)}}}
	_, h := chain(t, p, echo(10))
	for _, c := range []struct {
		maxTokens int
		want      []string
	}{
		{0, []string{"budget exceeded: run limit $0.001000, used $0.000000, reserved $0.000000, call needs $",
			"priced at 16384 output tokens: gpt-4o's maximum output, as the request sets no max_tokens",
			"; the budget affords ", " output tokens, below min_output_tokens (256)"}},
		{200000, []string{" output tokens: what gpt-4o's context window leaves after the input"}},
		{1000, []string{"priced at 1000 output tokens: the request's max_tokens"}},
	} {
		ctx, _ := middleware.StartRun(context.Background(), "first-hour")
		_, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o", MaxTokens: c.maxTokens, Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Say hi"}}})
		var e *budget.ExceededError
		if !errors.As(err, &e) {
			t.Fatalf("max_tokens %d: err = %v, want an *ExceededError", c.maxTokens, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "max_tokens") && !strings.Contains(msg, "output tokens") {
			t.Errorf("the refusal does not say what the call reserves:\n%s", msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("max_tokens %d: the refusal\n%s\nlacks %q", c.maxTokens, msg, w)
			}
		}
	}
}

// TestInputCapRefusalSaysWhatCapsIt: the embedded default policy caps a
// request's input at 10,000 tokens (budget.request.max_input_tokens), so
// that a newcomer's first long conversation is refused. The refusal read
//
//	budget exceeded: request limit 10000 tokens, used 0 tokens, reserved 0
//	tokens, call needs 12008 tokens (gpt-4o-mini)
//
// where "used" and "reserved" mean nothing for a cap on one call, and
// nothing says which setting refused it. It now names the input and the
// policy field, without the ledger's figures.
func TestInputCapRefusalSaysWhatCapsIt(t *testing.T) {
	t.Parallel()
	_, h := chain(t, policies.Default(), echo(10))
	_, err := h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o-mini",
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: strings.Repeat("word ", 12000)}}})
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Scope != "request" || e.Limit != 10000 {
		t.Fatalf("err = %v, want the request scope's *ExceededError of limit 10000", err)
	}
	msg := err.Error()
	for _, w := range []string{"request limit 10000 input tokens (budget.request.max_input_tokens)", "call needs ", " input tokens (gpt-4o-mini)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("the refusal\n%s\nlacks %q", msg, w)
		}
	}
	if strings.Contains(msg, "used ") || strings.Contains(msg, "reserved ") {
		t.Errorf("the refusal of a per-call cap quotes a ledger's figures:\n%s", msg)
	}
}

// TestUnpricedRefusalSaysHowToPriceIt: a call to a model the catalog does
// not price (a local model, a new one) under a USD budget is refused rather
// than billed $0. The refusal said only that the model has no price; the
// loader's problem for the same case says how to give it one. The refusal
// now says it too: models: {<model>: {input_per_1m, output_per_1m}}, or free.
func TestUnpricedRefusalSaysHowToPriceIt(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Name: "t", Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: policies.Dollar}}}
	_, h := chain(t, p, echo(10))
	ctx, _ := middleware.StartRun(context.Background(), "first-hour")
	_, err := h.Handle(ctx, &middleware.Request{Model: "my-llama", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Say hi"}}})
	if !errors.Is(err, budget.ErrUnpriced) {
		t.Fatalf("err = %v, want ErrUnpriced", err)
	}
	for _, w := range []string{`"my-llama"`, `models: {"my-llama": {input_per_1m: `, "output_per_1m", "free: true"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal\n%v\nlacks %q", err, w)
		}
	}
}
