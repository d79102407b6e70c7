package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

func TestBadConfigIsAnError(t *testing.T) {
	for _, cfg := range []cache.Config{{TTL: -time.Second}, {ReplayChunk: -1}} {
		if _, err := cache.New(cfg); !errors.Is(err, cache.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}

// Without WithStore the cache keeps its answers in a memory store of its
// own: the zero Config is a working cache.
func TestZeroConfigCaches(t *testing.T) {
	calls := 0
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		calls++
		return &middleware.Response{Model: req.Model, FinishReason: middleware.FinishStop,
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	h := layer(cache.New(cache.Config{}))(provider)
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "q"}}}
	for range 3 {
		if _, err := h.Handle(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("%d provider calls, want 1", calls)
	}
}
