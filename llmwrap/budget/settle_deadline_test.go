package budget_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

type settleKey struct{}

// TestSettleStartsNoTimerOfAnUnwatchedDeadline: settling a call under a
// middleware.WithDeadline nothing watched (the run guard's, around a
// model that never looks at its context's Done) does not make that
// deadline real (its timer, context and Done channel): the call costs two
// allocations more than under a context.WithValue, the Deadline itself
// and the context without its cancellation the stores are given (it cost
// seven more: settle asked the Deadline for its Done channel to learn
// that it could end). The stores still get a context that outlives a
// cancelled call.
func TestSettleStartsNoTimerOfAnUnwatchedDeadline(t *testing.T) {
	store := &ctxStore{MemoryStore: budget.NewMemoryStore()}
	b, err := budget.New(budget.Config{
		Name: "devops",
		Team: budget.TeamLimit{Period: budget.PeriodDaily, Limit: budget.Amount{USDMicros: 1 << 50}},
	}, budget.WithCatalog(prices{}), budget.WithStore(store), budget.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	provider := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Usage: middleware.Usage{InputTokens: 11, OutputTokens: 8}}, nil
	})
	h := middleware.Then(provider, instrument.New(nil, nil), b.Middleware())
	team := middleware.WithTeam(context.Background(), "sre")
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Check the disk."}}}
	cost := func(under func() context.Context) float64 {
		return testing.AllocsPerRun(100, func() {
			ctx := under()
			if _, err := h.Handle(ctx, req); err != nil {
				t.Fatal(err)
			}
			if d, ok := ctx.(*middleware.Deadline); ok {
				d.Stop()
			}
		})
	}
	value := cost(func() context.Context { return context.WithValue(team, settleKey{}, 1) })
	deadline := cost(func() context.Context {
		return middleware.WithDeadline(team, time.Now().Add(time.Hour), context.DeadlineExceeded)
	})
	if deadline != value+2 {
		t.Errorf("a call under an unwatched deadline: %v allocations, under a value %v; want 2 more", deadline, value)
	}
	// A call cancelled under its deadline is settled under a context
	// that is not.
	ctx, cancel := context.WithCancel(team)
	d := middleware.WithDeadline(ctx, time.Now().Add(time.Hour), context.DeadlineExceeded)
	cancelling := middleware.Then(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		cancel()
		return &middleware.Response{Usage: middleware.Usage{InputTokens: 11, OutputTokens: 8}}, nil
	}), instrument.New(nil, nil), b.Middleware())
	if _, err := cancelling.Handle(d, req); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	if store.settleErr == nil || *store.settleErr != nil {
		t.Errorf("the store settled under a context that ended: %v", store.settleErr)
	}
}

// ctxStore records the Err of the context its last settlement was given.
type ctxStore struct {
	*budget.MemoryStore
	settleErr *error
}

func (s *ctxStore) Reserve(ctx context.Context, r budget.Reservation) (budget.Hold, error) {
	h, err := s.MemoryStore.Reserve(ctx, r)
	if err != nil {
		return nil, err
	}
	return &ctxHold{Hold: h, s: s}, nil
}

type ctxHold struct {
	budget.Hold
	s *ctxStore
}

func (h *ctxHold) Settle(ctx context.Context, actual budget.Amount, now time.Time) (budget.Balance, error) {
	err := ctx.Err()
	h.s.settleErr = &err
	return h.Hold.Settle(ctx, actual, now)
}
