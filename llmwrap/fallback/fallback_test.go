package fallback_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

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
