package gateway

import (
	"testing"
	"time"
)

// The run table keeps a run while it is used, forgets it after idle
// without a call, and holds at most max runs (least recently used out).
func TestRunTableBounds(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	rt := newRunTable(2, time.Minute)
	rt.now = func() time.Time { return now }
	a := rt.get("t", "a")
	if rt.get("t", "a") != a || a.ID() != "a" {
		t.Fatal("the same run id is not the same run")
	}
	now = now.Add(50 * time.Second)
	if rt.get("t", "a") != a {
		t.Fatal("a run used within idle was forgotten")
	}
	b := rt.get("t", "b")
	rt.get("t", "a") // a is now the most recent
	rt.get("t", "c") // evicts b, the least recently used
	if rt.get("t", "b") == b {
		t.Fatal("max runs not enforced")
	}
	if got := rt.lru.Len(); got != 2 {
		t.Fatalf("%d runs kept, want 2", got)
	}
	now = now.Add(2 * time.Minute)
	if rt.get("t", "a") == a {
		t.Fatal("a run idle for longer than idle was kept")
	}
	if got := rt.lru.Len(); got != 1 {
		t.Fatalf("%d runs after expiry, want 1", got)
	}
	// The same run id of another team is another run.
	if rt.get("u", "a") == rt.get("t", "a") {
		t.Fatal("two teams share a run id's run")
	}
}
