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

// A call of a fixed model (middleware.WithFixedModel: its endpoint serves
// the model it names, and no layer below moves it) is answered by that
// model, where the same request of another caller may be moved to
// another: the two never share a cached answer.
func TestFixedModelCallsHaveTheirOwnAnswers(t *testing.T) {
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		text := "moved to the cheap model"
		if middleware.FixedModel(ctx) {
			text = "answered by the model asked for"
		}
		return &middleware.Response{Model: req.Model, FinishReason: middleware.FinishStop,
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: text}}, nil
	})
	h := layer(cache.New(cache.Config{}))(provider)
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "q"}}}
	fixed := middleware.WithFixedModel(context.Background())
	for i, c := range []struct {
		ctx  context.Context
		want string
	}{
		{context.Background(), "moved to the cheap model"},
		{fixed, "answered by the model asked for"},
		{fixed, "answered by the model asked for"},
		{context.Background(), "moved to the cheap model"},
	} {
		resp, err := h.Handle(c.ctx, req)
		if err != nil || resp.Message.Content != c.want {
			t.Fatalf("call %d: %v %v, want %q", i, resp, err, c.want)
		}
	}
}
