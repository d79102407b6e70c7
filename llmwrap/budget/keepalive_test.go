package budget_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// ttlStore is a budget.Store whose reservations expire after their TTL, as
// a shared store's do, on the (fake) clock; it records every reservation
// that was settled after it had expired.
type ttlStore struct {
	budget.MemoryStore
	mu      sync.Mutex
	late    []string
	extends int
}

type ttlHold struct {
	s      *ttlStore
	id     string
	inner  budget.Hold
	expiry time.Time
}

func (s *ttlStore) Reserve(ctx context.Context, r budget.Reservation) (budget.Hold, error) {
	h, err := s.MemoryStore.Reserve(ctx, r)
	if err != nil {
		return nil, err
	}
	return &ttlHold{s: s, id: r.ID, inner: h, expiry: time.Now().Add(r.TTL)}, nil
}

func (h *ttlHold) Extend(_ context.Context, ttl time.Duration) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if time.Now().After(h.expiry) {
		return budget.ErrReservationExpired
	}
	h.expiry = time.Now().Add(ttl)
	h.s.extends++
	return nil
}

func (h *ttlHold) Settle(ctx context.Context, actual budget.Amount, now time.Time) (budget.Balance, error) {
	h.s.mu.Lock()
	if time.Now().After(h.expiry) {
		h.s.late = append(h.s.late, h.id)
	}
	h.s.mu.Unlock()
	return h.inner.Settle(ctx, actual, now)
}

// TestReservationOutlivesRetries: a call retried for far longer than the
// reservation TTL (seven 503s with jittered backoffs of up to 2m, against
// a TTL of 1m) keeps its reservation alive until it settles.
func TestReservationOutlivesRetries(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := &policies.Policy{Version: 1, Budget: policies.Budget{
			Request: policies.RequestBudget{MaxOutputTokens: 100},
			Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.Dollar},
			Store:   policies.BudgetStore{ReservationTTL: policies.Duration(time.Minute)},
		}, Fallback: policies.Fallback{Retry: policies.Retry{MaxAttempts: 8, BaseDelay: policies.Duration(time.Minute),
			MaxDelay: policies.Duration(2 * time.Minute)}}}
		store := &ttlStore{}
		chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		attempts := 0
		start := time.Now()
		provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			attempts++
			if attempts < 8 {
				return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: 503, Message: "overloaded"}
			}
			return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
				FinishReason: "stop", Usage: middleware.Usage{InputTokens: 20, OutputTokens: 5}}, nil
		})
		if _, err := middleware.Then(provider, chain).Handle(context.Background(), request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if attempts != 8 || took < 2*time.Minute {
			t.Fatalf("%d attempts in %s: the retries must outlast the 1m TTL", attempts, took)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if len(store.late) > 0 {
			t.Fatalf("reservation expired before its call settled (%d extensions in %s)", store.extends, took)
		}
		if store.extends < 3 {
			t.Fatalf("%d extensions in %s, want one every 20s", store.extends, took)
		}
		synctest.Wait()
	})
}

// silentStore is a budget.Store whose reservations' extensions never get
// an answer (a Redis that stopped answering mid-call): Extend waits for
// its context.
type silentStore struct{ budget.MemoryStore }

type silentHold struct{ budget.Hold }

func (s *silentStore) Reserve(ctx context.Context, r budget.Reservation) (budget.Hold, error) {
	h, err := s.MemoryStore.Reserve(ctx, r)
	if err != nil {
		return nil, err
	}
	return silentHold{h}, nil
}

func (silentHold) Extend(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestSilentStoreDoesNotHoldTheEndOfACall: a store that stops answering
// while a call is in flight holds its reservation's extension; the call's
// end does not wait for it (it waited for ever), and the extension itself
// gives up within its period. (Fake time: synctest.)
func TestSilentStoreDoesNotHoldTheEndOfACall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := &policies.Policy{Version: 1, Budget: policies.Budget{
			Request: policies.RequestBudget{MaxOutputTokens: 100},
			Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.Dollar},
			Store:   policies.BudgetStore{ReservationTTL: policies.Duration(time.Minute)},
		}}
		chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(&silentStore{}), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		// 30s: an extension begins at 20s (a third of the TTL) and gets
		// no answer.
		provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			time.Sleep(30 * time.Second)
			return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
				FinishReason: "stop", Usage: middleware.Usage{InputTokens: 20, OutputTokens: 5}}, nil
		})
		start := time.Now()
		if _, err := middleware.Then(provider, chain).Handle(context.Background(), request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 30*time.Second {
			t.Fatalf("the call ended after %v, its answer after 30s: its end waited for a silent store", took)
		}
		// The extension gives up at the end of its period (20s after it
		// began): the bubble's goroutines all end.
		time.Sleep(time.Minute)
		synctest.Wait()
	})
}
