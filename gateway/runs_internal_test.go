package gateway

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// The run table keeps a run while it is used, forgets it after idle
// without a call, and holds at most max runs (least recently used out).
// Each call here ends before the next (its context done).
func TestRunTableBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Unix(1_000_000, 0)
		rt := newRunTable(2, time.Minute, nil)
		rt.now = func() time.Time { return now }
		get := func(key, id string) *middleware.Run {
			ctx, cancel := context.WithCancel(context.Background())
			r := rt.get(ctx, key, id)
			cancel()
			synctest.Wait() // the call's end unpins the run
			return r
		}
		a := get("t/a", "a")
		if get("t/a", "a") != a || a.ID() != "a" {
			t.Fatal("the same run id is not the same run")
		}
		now = now.Add(50 * time.Second)
		if get("t/a", "a") != a {
			t.Fatal("a run used within idle was forgotten")
		}
		b := get("t/b", "b")
		get("t/a", "a") // a is now the most recent
		get("t/c", "c") // evicts b, the least recently used
		if get("t/b", "b") == b {
			t.Fatal("max runs not enforced")
		}
		if got := rt.lru.Len(); got != 2 {
			t.Fatalf("%d runs kept, want 2", got)
		}
		now = now.Add(2 * time.Minute)
		if get("t/a", "a") == a {
			t.Fatal("a run idle for longer than idle was kept")
		}
		if got := rt.lru.Len(); got != 1 {
			t.Fatalf("%d runs after expiry, want 1", got)
		}
	})
}

// A run with a call in flight is pinned: neither the entry bound nor idle
// time forgets it (which would reopen it under its id, its call count and
// per-run budget at zero, while the call still runs); once the call ends
// it is forgotten as any other, its idle time counted from that end.
func TestRunTableKeepsRunsWithCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Unix(1_000_000, 0)
		rt := newRunTable(1, time.Minute, nil)
		rt.now = func() time.Time { return now }
		inFlight, end := context.WithCancel(context.Background())
		a := rt.get(inFlight, "t/a", "a")
		other, endOther := context.WithCancel(context.Background())
		rt.get(other, "t/b", "b") // the bound is 1: a is pinned, the table grows
		endOther()
		synctest.Wait()
		now = now.Add(10 * time.Minute) // a's call runs past idle
		done, endDone := context.WithCancel(context.Background())
		if rt.get(done, "t/a", "a") != a {
			t.Fatal("a run with a call in flight was forgotten")
		}
		endDone()
		end()
		synctest.Wait()
		now = now.Add(30 * time.Second) // within idle of the calls' end
		last, endLast := context.WithCancel(context.Background())
		if rt.get(last, "t/a", "a") != a {
			t.Fatal("a run was forgotten within idle of its last call's end")
		}
		endLast()
		synctest.Wait()
		now = now.Add(2 * time.Minute)
		c, endC := context.WithCancel(context.Background())
		defer endC()
		if rt.get(c, "t/a", "a") == a {
			t.Fatal("a run idle past idle after its calls ended was kept")
		}
	})
}
