package observe_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// TestReplaySavedIsTheCachesOnly: the replay's SavedPico is what the
// policy's cache saved, as documented; the money its context compaction
// saved on another call is not counted as the cache's, neither in the
// result nor in the per-model totals of the replayed runs.
func TestReplaySavedIsTheCachesOnly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rec := observe.NewRecorder(&buf)
	none, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	h := middleware.Then(provider(), rec.Middleware(), llmwrap.MustBuild(none))
	ctx, _ := middleware.StartRun(context.Background(), "r1")
	long := []middleware.Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Tell me a story."}}
	for i := range 6 {
		long = append(long, middleware.Message{Role: "assistant", Content: strings.Repeat(fmt.Sprintf("word%d ", i), 500)},
			middleware.Message{Role: "user", Content: "Go on."})
	}
	zero := 0.0
	short := []middleware.Message{{Role: "user", Content: "How full is the disk?"}}
	for _, msgs := range [][]middleware.Message{long, short, short} {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o", Temperature: &zero, Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := observe.ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadBytes([]byte("version: 1\ncache: {enabled: true}\ncontext: {max_input_tokens: 3000, strategies: [drop], keep_last_turns: 1, block_size: 2}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := observe.Replay(context.Background(), p, recs, observe.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls := res.Runs[0].Calls()
	if len(calls) != 3 || calls[0].SavedPico <= 0 || calls[2].Cache != middleware.CacheHit || calls[2].SavedPico <= 0 {
		t.Fatalf("want a compacted call, a miss and a hit: %+v", calls)
	}
	if res.CacheHits != 1 || res.SavedPico != calls[2].SavedPico {
		t.Errorf("replay: %d hits saved %d pico, want 1 saving %d (the compaction saved %d)", res.CacheHits, res.SavedPico, calls[2].SavedPico, calls[0].SavedPico)
	}
	if mt := res.Runs[0].Totals().ByModel["gpt-4o"]; mt.CacheHits != 1 || mt.SavedPico != calls[2].SavedPico {
		t.Errorf("gpt-4o totals: %d hits saved %d pico, want 1 saving %d", mt.CacheHits, mt.SavedPico, calls[2].SavedPico)
	}
}
