package cache_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lccache "github.com/tmc/langchaingo/llms/cache"
	"github.com/tmc/langchaingo/llms/cache/inmemory"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// benchMessages is a 10-message conversation of about 4 KB.
func benchMessages() []llms.MessageContent {
	roles := []llms.ChatMessageType{llms.ChatMessageTypeSystem, llms.ChatMessageTypeHuman, llms.ChatMessageTypeAI}
	msgs := make([]llms.MessageContent, 10)
	for i := range msgs {
		role := roles[1+i%2]
		if i == 0 {
			role = roles[0]
		}
		msgs[i] = llms.TextParts(role, fmt.Sprintf("message %d: ", i)+strings.Repeat("the disk on web-1 is at 95 percent; ", 11))
	}
	return msgs
}

func benchRequest() *middleware.Request {
	zero := 0.0
	req := &middleware.Request{Model: "gpt-4o-mini", Temperature: &zero}
	for _, m := range benchMessages() {
		role := middleware.RoleUser
		switch m.Role {
		case llms.ChatMessageTypeSystem:
			role = middleware.RoleSystem
		case llms.ChatMessageTypeAI:
			role = middleware.RoleAssistant
		}
		req.Messages = append(req.Messages, middleware.Message{Role: role, Content: m.Parts[0].(llms.TextContent).Text})
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

// stubModel is an llms.Model that answers at once.
type stubModel struct{}

func (stubModel) GenerateContent(context.Context, []llms.MessageContent, ...llms.CallOption) (*llms.ContentResponse, error) {
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: "Cleaned /var/log: 20GB freed.", StopReason: "stop",
		GenerationInfo: map[string]any{"PromptTokens": 1000, "CompletionTokens": 50, "TotalTokens": 1050}}}}, nil
}

func (m stubModel) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, m, prompt, options...)
}

// BenchmarkLangchaingoHit compares, on the same 10-message 4 KB request, a
// hit of langchaingo's own llms/cache (in-memory backend) with a hit of
// tokenwise's cache through the langchaingo adapter (GenerateContent in and
// out, Instrument and the cache in between).
func BenchmarkLangchaingoHit(b *testing.B) {
	msgs := benchMessages()
	opts := []llms.CallOption{llms.WithTemperature(0), llms.WithModel("gpt-4o-mini")}
	run := func(b *testing.B, m llms.Model) {
		ctx := context.Background()
		if _, err := m.GenerateContent(ctx, msgs, opts...); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.GenerateContent(ctx, msgs, opts...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("langchaingo-llms-cache", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // stops the backend's eviction goroutine
		backend, err := inmemory.New(ctx)
		if err != nil {
			b.Fatal(err)
		}
		run(b, lccache.New(stubModel{}, backend))
	})
	b.Run("tokenwise", func(b *testing.B) {
		run(b, twlc.New(twlc.Models{"gpt-4o-mini": stubModel{}}, llmwrap.MustBuild(cachePolicy(policies.Cache{}))))
	})
}
