package budget

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// The note of a call's first attempt, which a Meter below recorded (a
// built chain's retry tells its budget of every attempt, a first that
// succeeds too), is copied into the arrays of the call's holds: it
// allocates nothing. The notes are what the Meter recorded.
func TestFirstNoteOfAMeteredAttemptAllocatesNothing(t *testing.T) {
	ci := middleware.NewCallInfo(middleware.CallFacts{})
	rec := middleware.Attempt{Model: "gpt-4o-mini", Usage: middleware.Usage{InputTokens: 120, OutputTokens: 30}, CostPico: 36_000_000}
	ci.Update(func(f *middleware.CallFacts) { f.Attempts = append(f.Attempts, rec) })
	resp := &middleware.Response{Model: "gpt-4o-mini"}
	req := &middleware.Request{Model: "gpt-4o-mini"}
	ctx := context.Background()
	var h holds
	b := &Budget{}
	allocs := testing.AllocsPerRun(100, func() {
		h = holds{}
		h.retry.Context, h.retry.b = ctx, b
		h.retry.NoteAttempt(ctx, req, resp, nil, ci, 0)
	})
	if allocs != 0 {
		t.Errorf("the first note of a metered attempt: %v allocations, want 0", allocs)
	}
	if len(h.retry.noted) != 1 || h.retry.noted[0] != rec || len(h.retry.answers) != 1 || h.retry.answers[0] != resp {
		t.Errorf("noted %+v with answers %v, want the Meter's record %+v with the response", h.retry.noted, h.retry.answers, rec)
	}
	if n := h.retry.Noted(ctx); n != 1 {
		t.Errorf("Noted %d, want 1", n)
	}
}
