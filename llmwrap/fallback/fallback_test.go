package fallback_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// models is a fake provider: each model fails with its error (none: it
// answers). It records the models it was asked for.
type models struct {
	errs map[string]error
	mu   sync.Mutex
	seen []string
}

func (m *models) Handle(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
	m.mu.Lock()
	m.seen = append(m.seen, req.Model)
	m.mu.Unlock()
	if err := m.errs[req.Model]; err != nil {
		return nil, err
	}
	return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "answer of " + req.Model}}, nil
}

func fault(kind error) error { return &middleware.ProviderError{Kind: kind, StatusCode: 400} }

// A failure in On moves the call to the next model; one outside On, or in
// Stop, ends it with the failure.
func TestMovesOnOnlyForItsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"unavailable", fault(middleware.ErrUnavailable), []string{"gpt-4o", "gpt-4o-mini"}},
		{"rate limited", fault(middleware.ErrRateLimited), []string{"gpt-4o", "gpt-4o-mini"}},
		{"bad request", fault(middleware.ErrBadRequest), []string{"gpt-4o"}},
		{"cancelled", context.Canceled, []string{"gpt-4o"}},
		{"stop", errStop, []string{"gpt-4o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &models{errs: map[string]error{"gpt-4o": tc.err}}
			h := middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"},
				On: append(fallback.DefaultOn(), errStop), Stop: []error{errStop}}))(p)
			resp, err := h.Handle(context.Background(), user("How full is the disk?"))
			if !slices.Equal(p.seen, tc.want) {
				t.Fatalf("models asked %v, want %v", p.seen, tc.want)
			}
			if len(tc.want) == 2 && (err != nil || resp.Model != "gpt-4o-mini") {
				t.Fatalf("%v, %v; want gpt-4o-mini's answer", resp, err)
			}
			if len(tc.want) == 1 && !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

var errStop = errors.New("refused for the caller")

// A context-window error moves on only to a model with a larger known
// window (WithWindows), LargerWindow's models included; without windows
// it ends the call.
func TestContextWindowNeedsALargerWindow(t *testing.T) {
	t.Parallel()
	windows := map[string]int64{"gpt-4o": 128_000, "gpt-4o-mini": 128_000, "gpt-4.1": 1_047_576}
	cfg := fallback.Config{Models: []string{"gpt-4o-mini"}, LargerWindow: []string{"gpt-4.1"}}
	tooLong := fault(middleware.ErrContextWindow)

	p := &models{errs: map[string]error{"gpt-4o": tooLong}}
	h := middlewaretest.Must(fallback.New(cfg, fallback.WithWindows(func(m string) int64 { return windows[m] })))(p)
	if resp, err := h.Handle(context.Background(), user("a long log")); err != nil || resp.Model != "gpt-4.1" {
		t.Fatalf("%v, %v; want gpt-4.1's answer", resp, err)
	}
	if !slices.Equal(p.seen, []string{"gpt-4o", "gpt-4.1"}) {
		t.Fatalf("models asked %v: the same-window model must be skipped", p.seen)
	}

	p = &models{errs: map[string]error{"gpt-4o": tooLong}}
	h = middlewaretest.Must(fallback.New(cfg))(p)
	if _, err := h.Handle(context.Background(), user("a long log")); !errors.Is(err, middleware.ErrContextWindow) || len(p.seen) != 1 {
		t.Fatalf("without windows: %v after %v, want the context-window error at once", err, p.seen)
	}

	// An unknown window (0) is never larger.
	p = &models{errs: map[string]error{"gpt-4o": tooLong}}
	h = middlewaretest.Must(fallback.New(cfg, fallback.WithWindows(func(string) int64 { return 0 })))(p)
	if _, err := h.Handle(context.Background(), user("a long log")); !errors.Is(err, middleware.ErrContextWindow) || len(p.seen) != 1 {
		t.Fatalf("unknown windows: %v after %v, want the context-window error at once", err, p.seen)
	}
}

// A call whose endpoint serves one model (middleware.WithFixedModel: an
// Azure deployment named otherwise than its model) is never moved to a
// fallback model, nor hedged to one: it ends with its model's failure.
func TestFixedModelIsNeverMoved(t *testing.T) {
	t.Parallel()
	p := &models{errs: map[string]error{"gpt-4o": fault(middleware.ErrUnavailable)}}
	h := middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"},
		Allow: func(string, string) bool { return true }}))(p)
	_, err := h.Handle(middleware.WithFixedModel(context.Background()), user("How full is the disk?"))
	if !slices.Equal(p.seen, []string{"gpt-4o"}) || !errors.Is(err, middleware.ErrUnavailable) {
		t.Fatalf("models asked %v, err %v; want gpt-4o only and its failure", p.seen, err)
	}
	p.seen = nil
	if resp, err := h.Handle(context.Background(), user("How full is the disk?")); err != nil || resp.Model != "gpt-4o-mini" {
		t.Fatalf("without a fixed model: %v %v, want gpt-4o-mini's answer", resp, err)
	}
}

// deadlineModel fails gpt-4o, as an upstream whose own limit ran out, at
// the instant the call's deadline passes; its fallback answers at once.
type deadlineModel struct{ models }

func (m *deadlineModel) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	if req.Model == "gpt-4o" {
		if dl, ok := ctx.Deadline(); ok {
			time.Sleep(time.Until(dl))
		}
	}
	return m.models.Handle(ctx, req)
}

// An attempt that fails as the call's deadline passes is not followed by
// one more to the fallback model: it would be sent, and billed, at the
// deadline. The context's own timer fires at that instant too, and its
// goroutine may not have run yet when the attempt returns (one in 20
// streamed o3 calls through the default policy sent a second request
// before the fix), so each round plays the race once more.
func TestNoFallbackAtTheCallsDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		for round := range 200 {
			p := &deadlineModel{models{errs: map[string]error{"gpt-4o": fault(middleware.ErrUnavailable)}}}
			h := middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}}))(p)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := h.Handle(ctx, user("How full is the disk?"))
			cancel()
			if !slices.Equal(p.seen, []string{"gpt-4o"}) {
				t.Fatalf("round %d: models asked %v, want only gpt-4o: no attempt is sent at the call's deadline", round, p.seen)
			}
			if !errors.Is(err, middleware.ErrUnavailable) {
				t.Fatalf("round %d: err = %v, want gpt-4o's failure", round, err)
			}
		}
	})
}
