package toolwrap_test

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/toolwrap"
)

// A turn of 8 instant tools under a context that never ends runs on one
// goroutine of its own (and one per further worker of a parallel group),
// the tools called on it, not on a goroutine and a box per call: at most 3
// allocations a turn in sequence (the results, the turn, its goroutine's
// start) and 10 in parallel (7 more workers). Before: 17 and 27.
func TestExecutePlainContextAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	ts, cs := instantTools(8)
	for _, c := range []struct {
		par  int
		want float64
	}{{1, 3}, {8, 10}} {
		ex, err := toolwrap.New(ts, toolwrap.Config{MaxParallel: c.par})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var res []toolwrap.Result
		got := testing.AllocsPerRun(200, func() {
			res, err = ex.Execute(ctx, cs)
		})
		if err != nil || len(res) != len(cs) {
			t.Fatalf("MaxParallel %d: %d results, %v", c.par, len(res), err)
		}
		for i, r := range res {
			if r.CallID != cs[i].ID || r.Content != "ok" || r.Err != nil {
				t.Fatalf("MaxParallel %d: result %d: %+v", c.par, i, r)
			}
		}
		if got > c.want {
			t.Errorf("MaxParallel %d: %v allocations a turn, want at most %v", c.par, got, c.want)
		}
	}
}
