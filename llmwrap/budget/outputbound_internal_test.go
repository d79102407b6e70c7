package budget

import (
	"context"
	"fmt"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestOutputBoundSaysWhereItComesFrom: outputBound names where the bound
// comes from, for a refusal's message, in each case; and a request
// without max_tokens bounded by its model's maximum output (every call of
// a policy without budget.request.max_output_tokens) costs no allocation
// for that name, which only a refusal reads.
func TestOutputBoundSaysWhereItComesFrom(t *testing.T) {
	spec := Model{MaxOutputTokens: 16384}
	for _, c := range []struct {
		limit, maxTokens int64
		spec             Model
		out              int64
		inject           bool
		why              string
	}{
		{0, 0, spec, 16384, true, "gpt-x's maximum output, as the request sets no max_tokens"},
		{0, 200, spec, 200, false, "the request's max_tokens"},
		{0, 0, Model{}, DefaultMaxOutput, true, "the default for a model without max_output_tokens, as the request sets no max_tokens"},
		{1000, 0, spec, 1000, true, "budget.request.max_output_tokens"},
		{100000, 0, spec, 16384, true, "gpt-x's maximum output, below budget.request.max_output_tokens"},
	} {
		b := &Budget{}
		b.cfg.Request.MaxOutputTokens = c.limit
		req := &middleware.Request{Model: "gpt-x", MaxTokens: int(c.maxTokens)}
		est := &callEstimate{ctx: context.Background(), req: req}
		out, inject, why := b.outputBound(req, c.spec, est, true)
		if out != c.out || inject != c.inject || fmt.Sprint(why) != c.why {
			t.Errorf("limit %d, max_tokens %d, %+v: %d, %v, %q; want %d, %v, %q",
				c.limit, c.maxTokens, c.spec, out, inject, fmt.Sprint(why), c.out, c.inject, c.why)
		}
	}

	b := &Budget{}
	req := &middleware.Request{Model: "gpt-x"}
	est := &callEstimate{ctx: context.Background(), req: req}
	if a := testing.AllocsPerRun(100, func() { _, _, _ = b.outputBound(req, spec, est, true) }); a != 0 {
		t.Errorf("outputBound: %v allocations, want 0", a)
	}
}
