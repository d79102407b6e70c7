package cache_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// benchRequest is a 10-message conversation of about 4 KB (the messages
// e2e's BenchmarkLangchaingoHit sends through langchaingo).
func benchRequest() *middleware.Request {
	zero := 0.0
	req := &middleware.Request{Model: "gpt-4o-mini", Temperature: &zero}
	for i := range 10 {
		role := middleware.RoleUser
		switch {
		case i == 0:
			role = middleware.RoleSystem
		case i%2 == 1:
			role = middleware.RoleAssistant
		}
		req.Messages = append(req.Messages, middleware.Message{Role: role,
			Content: fmt.Sprintf("message %d: ", i) + strings.Repeat("the disk on web-1 is at 95 percent; ", 11)})
	}
	return req
}

func benchResponse() *middleware.Response {
	return &middleware.Response{Model: "gpt-4o-mini", FinishReason: "stop", Usage: middleware.Usage{InputTokens: 1000, OutputTokens: 50},
		Message: middleware.Message{Role: "assistant", Content: "Cleaned /var/log: 20GB freed. The disk is at 60% now."}}
}

var provider = middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
	return benchResponse(), nil
})

// BenchmarkHit: a hit for a 10-message, 4 KB request through the core
// chain llmwrap.Build makes (Instrument + cache).
func BenchmarkHit(b *testing.B) {
	h := llmwrap.MustBuild(cachePolicy(policies.Cache{}))(provider)
	req := benchRequest()
	ctx := context.Background()
	if _, err := h.Handle(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.Handle(ctx, req)
		if err != nil || !resp.FromCache {
			b.Fatal(err)
		}
	}
}

// BenchmarkMiss: the cache's overhead on a miss for the same request (key,
// lookup, coalescing, store) around a provider that answers at once; every
// iteration is a new request (another seed).
func BenchmarkMiss(b *testing.B) {
	store := cache.NewMemory(cache.MemoryOptions{})
	h := layer(cache.New(cache.Config{}, cache.WithStore(store)))(provider)
	req := benchRequest()
	req.Temperature = nil
	seed := int64(0)
	req.Seed = &seed
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		seed++
		resp, err := h.Handle(ctx, req)
		if err != nil || resp.FromCache {
			b.Fatal(err)
		}
	}
}

// agentRequest is the 8 KB agent request of ./bench, its last user
// message last.
func agentRequest(last string) *middleware.Request {
	return middlewaretest.AgentRequest(last, 1)
}

// BenchmarkMissAgentTurn: the cache's overhead on a miss for the 8 KB
// agent request whose 17 first messages are those of the previous call
// (the same strings, as an agent resends them) and whose last message is
// new every call.
func BenchmarkMissAgentTurn(b *testing.B) {
	h := layer(cache.New(cache.Config{}, cache.WithStore(cache.NewMemory(cache.MemoryOptions{}))))(provider)
	req := agentRequest("Summarise.")
	last := &req.Messages[len(req.Messages)-1]
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		last.Content = "Summarise (request " + strconv.Itoa(n) + ")."
		resp, err := h.Handle(ctx, req)
		if err != nil || resp.FromCache {
			b.Fatal(err)
		}
	}
}

// BenchmarkMissAgentNew: the same request with every message new (its
// strings never seen: the first call of a conversation). Every iteration
// copies the request's strings (about 8 KB, 18 allocations), which is
// part of the figure.
func BenchmarkMissAgentNew(b *testing.B) {
	h := layer(cache.New(cache.Config{}, cache.WithStore(cache.NewMemory(cache.MemoryOptions{}))))(provider)
	tmpl := agentRequest("Summarise.")
	req := *tmpl
	req.Messages = make([]middleware.Message, len(tmpl.Messages))
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		for i, m := range tmpl.Messages {
			m.Content = strings.Clone(m.Content)
			req.Messages[i] = m
		}
		req.Messages[len(req.Messages)-1].Content = "Summarise (request " + strconv.Itoa(n) + ")."
		resp, err := h.Handle(ctx, &req)
		if err != nil || resp.FromCache {
			b.Fatal(err)
		}
	}
}

// BenchmarkHitAgent: a hit for the 8 KB agent request (the same strings
// as the call that stored it).
func BenchmarkHitAgent(b *testing.B) {
	h := layer(cache.New(cache.Config{}, cache.WithStore(cache.NewMemory(cache.MemoryOptions{}))))(provider)
	req := agentRequest("Summarise.")
	ctx := context.Background()
	if _, err := h.Handle(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.Handle(ctx, req)
		if err != nil || !resp.FromCache {
			b.Fatal(err)
		}
	}
}
