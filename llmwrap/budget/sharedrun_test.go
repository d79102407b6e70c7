package budget_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// recordingStore is a shared store (one MemoryStore for every Budget) that
// remembers the reservations asked of it and can hand out extendable
// holds.
type recordingStore struct {
	*budget.MemoryStore
	mu      sync.Mutex
	res     []budget.Reservation
	extends atomic.Int64 // Extend calls on its holds (extendable only)
	ext     bool
}

func (s *recordingStore) Reserve(ctx context.Context, r budget.Reservation) (budget.Hold, error) {
	s.mu.Lock()
	s.res = append(s.res, r)
	s.mu.Unlock()
	h, err := s.MemoryStore.Reserve(ctx, r)
	if err != nil || !s.ext {
		return h, err
	}
	return &extHold{Hold: h, n: &s.extends}, nil
}

type extHold struct {
	budget.Hold
	n *atomic.Int64
}

func (h *extHold) Extend(context.Context, time.Duration) error { h.n.Add(1); return nil }

func runPolicy(maxTokens int64) *policies.Policy {
	return &policies.Policy{Version: 1, Name: "devops", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 100}, Run: policies.RunBudget{MaxTokens: maxTokens}}}
}

// A shared run (middleware.OpenSharedRun) charged by two Budgets (two
// replicas, one shared store) at once is one ledger: exactly the calls its
// limit affords pass, both read the same balance, its soft-limit event
// fires once across them, and its reservations name the run's key and
// carry the run's idle time. Another run's ledger is its own.
func TestSharedRunBudgetIsOneLedger(t *testing.T) {
	t.Parallel()
	per := reqTokens("gpt-4o") + 100
	p := runPolicy(10 * per)
	p.Budget.WarnAt = []float64{0.5}
	store := &recordingStore{MemoryStore: budget.NewMemoryStore()}
	b1, h1 := chain(t, p, echo(100), budget.WithStore(store))
	b2, h2 := chain(t, p, echo(100), budget.WithStore(store))
	runs := &middlewaretest.RunStore{IdleTime: 45 * time.Minute}
	replicas := []struct {
		h   middleware.Handler
		run *middleware.Run
	}{{h1, middleware.OpenSharedRun("r", "t/r", runs)}, {h2, middleware.OpenSharedRun("r", "t/r", runs)}}
	rec := &recorder{}
	var passed, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			r := replicas[i%2]
			ctx := middleware.WithObserver(middleware.WithRun(context.Background(), r.run), rec)
			for range 2 {
				_, err := r.h.Handle(ctx, request("gpt-4o"))
				var e *budget.ExceededError
				switch {
				case err == nil:
					passed.Add(1)
				case errors.As(err, &e) && e.Scope == "run":
					refused.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if passed.Load() != 10 || refused.Load() != 22 {
		t.Fatalf("%d passed, %d refused; want exactly the 10 calls the run affords", passed.Load(), refused.Load())
	}
	for i, b := range []*budget.Budget{b1, b2} {
		bal := b.RunBalance(replicas[i].run)
		if bal.Used.Tokens != 10*per || !bal.Reserved.IsZero() || bal.Limit.Tokens != 10*per {
			t.Fatalf("replica %d reads %+v, want %d used", i, bal, 10*per)
		}
	}
	if w := rec.warnings(); len(w) != 1 || w[0].Scope != "run" || w[0].Fraction != 0.5 {
		t.Fatalf("warnings %+v, want one run warning at 0.5 across both replicas", w)
	}
	store.mu.Lock()
	for _, r := range store.res {
		if r.Key != b1.RunKey("t/r") || r.Idle != 45*time.Minute || r.Window != (budget.Window{}) || r.Limit.Tokens != 10*per {
			t.Fatalf("reservation %+v: want the run's key %q, its idle time and its limit", r, b1.RunKey("t/r"))
		}
	}
	store.mu.Unlock()
	other := middleware.WithRun(context.Background(), middleware.OpenSharedRun("r2", "t/r2", runs))
	if _, err := h1.Handle(other, request("gpt-4o")); err != nil {
		t.Fatalf("another run: %v", err)
	}
}

// A shared run's reservation is extended while its call runs, like a team
// reservation, so a slow call does not outlive it.
func TestSharedRunReservationIsExtended(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := runPolicy(100_000)
		p.Budget.Store.ReservationTTL = policies.Duration(30 * time.Second)
		store := &recordingStore{MemoryStore: budget.NewMemoryStore(), ext: true}
		slow := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			time.Sleep(35 * time.Second) // more than three extensions' period (10s)
			return echo(100).Handle(ctx, req)
		})
		_, h := chain(t, p, slow, budget.WithStore(store))
		ctx := middleware.WithRun(context.Background(), middleware.OpenSharedRun("r", "t/r", &middlewaretest.RunStore{}))
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
		if n := store.extends.Load(); n != 3 {
			t.Fatalf("%d extensions of a 35s call with a 30s TTL, want 3", n)
		}
	})
}

// A shared run whose store is down: refused (fail_closed), or charged to
// this replica's local share of the run's limit (local).
func TestSharedRunStoreUnavailable(t *testing.T) {
	t.Parallel()
	per := reqTokens("gpt-4o") + 100
	p := runPolicy(10 * per)
	runs := &middlewaretest.RunStore{}
	ctx := middleware.WithRun(context.Background(), middleware.OpenSharedRun("r", "t/r", runs))
	_, h := chain(t, p, echo(100), budget.WithStore(&downStore{}))
	if _, err := h.Handle(ctx, request("gpt-4o")); !errors.Is(err, budget.ErrStoreUnavailable) || !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("fail_closed: %v", err)
	}
	p.Budget.Store = policies.BudgetStore{OnUnavailable: policies.UnavailableLocal, LocalFraction: 0.2}
	_, h = chain(t, p, echo(100), budget.WithStore(&downStore{}))
	for i := range 2 {
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatalf("local call %d: %v", i, err)
		}
	}
	var e *budget.ExceededError
	if _, err := h.Handle(ctx, request("gpt-4o")); !errors.As(err, &e) || e.Scope != "run" {
		t.Fatalf("beyond the local share of the run (2 calls): %v", err)
	}
}
