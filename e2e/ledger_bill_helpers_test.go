package e2e

import (
	"context"
	"log/slog"
	"math/big"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// billLedger is a bill fuzz run's memory store and the costs its chain's
// Meter reported, one per finished call.
type billLedger struct {
	store *budget.MemoryStore
	mu    sync.Mutex
	costs []int64
}

// newBillLedger returns an empty ledger and a chain built from pol over
// its store, observed by it.
func newBillLedger(pol *policies.Policy, quiet *slog.Logger) (*billLedger, middleware.Middleware) {
	l := &billLedger{store: budget.NewMemoryStore()}
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if fin, ok := e.(middleware.CallFinished); ok {
			l.mu.Lock()
			l.costs = append(l.costs, fin.Facts.CostPico)
			l.mu.Unlock()
		}
	})
	return l, llmwrap.MustBuild(pol, llmwrap.WithBudgetStore(l.store), llmwrap.WithObserver(obs), llmwrap.WithLogger(quiet))
}

// check asserts the ledger of team against the bills: nothing held, no
// negative cost; after a hostile usage a spend within [0, 3·2^50]
// micro-dollars; otherwise one cost per bill, each equal to its bill
// to the pico-dollar, and the spend the bills' sum rounded up once.
// billed names the bill in the failure message.
func (l *billLedger) check(t *testing.T, pol *policies.Policy, team string, want []*big.Rat, wantSum *big.Rat, hostile bool, billed string) {
	t.Helper()
	b, err := llmwrap.NewBudget(pol, budget.WithStore(l.store))
	if err != nil {
		t.Fatal(err)
	}
	rem, err := b.Remaining(context.Background(), team)
	if err != nil {
		t.Fatal(err)
	}
	if !rem.Reserved.IsZero() {
		t.Fatalf("the ledger still holds %+v after the calls", rem.Reserved)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.costs {
		if c < 0 {
			t.Fatalf("a call cost %d pico-dollars", c)
		}
	}
	if hostile {
		if rem.Used.USDMicros < 0 || rem.Used.USDMicros > 3<<50 {
			t.Fatalf("after a usage of 2^62 tokens the ledger spent %d micro-dollars", rem.Used.USDMicros)
		}
		return
	}
	if len(l.costs) != len(want) {
		t.Fatalf("%d calls finished, want %d", len(l.costs), len(want))
	}
	for i, c := range l.costs {
		if big.NewRat(c, 1).Cmp(want[i]) != 0 {
			t.Fatalf("call %d cost %s, %s %s pico-dollars", i, policies.PicoUSD(c), billed, want[i].FloatString(0))
		}
	}
	if up := wiregen.MicroUp(wantSum); rem.Used.USDMicros != up {
		t.Fatalf("the team ledger spent %d micro-dollars, the bills sum to %s pico-dollars (%d micro-dollars rounded up)",
			rem.Used.USDMicros, wantSum.FloatString(0), up)
	}
}
