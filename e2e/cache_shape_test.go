package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// TestStreamedAnswerIsStoredAsTheAnswer: whatever valid shape a streamed
// answer arrives in (openaitest.Shape), what the cache stores from the
// stream, served to a plain call and replayed to a streaming one, is the
// answer the provider gives without streaming.
func TestStreamedAnswerIsStoredAsTheAnswer(t *testing.T) {
	words := []string{"disk", " ok", "é", "日本", `"q"`, "\n", "🙂", `\`}
	up := openaitest.New()
	defer up.Close()
	p := twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport()))
	h := middlewaretest.Must(cache.New(cache.Config{ReplayChunk: 5}))(p)
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 5))
		text := func(n int) string {
			var b strings.Builder
			for range rng.IntN(n + 1) {
				b.WriteString(words[rng.IntN(len(words))])
			}
			return b.String()
		}
		reply := openaitest.Reply{Content: text(20), Reasoning: text(5), Shape: &openaitest.Shape{Seed: seed}}
		if rng.IntN(4) == 0 {
			reply.Refusal = "I can't help with " + text(3) // a refusal is part of the answer
		}
		for i := range rng.IntN(4) {
			reply.ToolCalls = append(reply.ToolCalls, openaitest.Call(fmt.Sprintf("call_%d", i), "check_disk", `{"q":"`+strings.NewReplacer(`"`, "", `\`, "", "\n", "").Replace(text(4))+`"}`))
		}
		up.Reset()
		up.On().Reply(reply)
		req := func(stream middleware.StreamFunc) *middleware.Request {
			return &middleware.Request{Model: "gpt-4o", Stream: stream,
				Messages: []middleware.Message{{Role: middleware.RoleUser, Content: fmt.Sprint("question ", seed)}}}
		}
		ctx := context.Background()
		want, err := p.Handle(ctx, req(nil))
		if err != nil {
			t.Fatal(err)
		}
		noop := func(context.Context, middleware.Chunk) error { return nil }
		if _, err := h.Handle(ctx, req(noop)); err != nil { // a miss: the stream is stored
			t.Fatal(err)
		}
		hit, err := h.Handle(ctx, req(nil))
		if err != nil || !hit.FromCache {
			t.Fatalf("seed %d: %v, from cache %v", seed, err, hit != nil && hit.FromCache)
		}
		var acc middleware.Accumulator
		replayed, err := h.Handle(ctx, req(func(_ context.Context, c middleware.Chunk) error { acc.Add(c); return nil }))
		if err != nil || !replayed.FromCache {
			t.Fatalf("seed %d: replay %v", seed, err)
		}
		if up.Count() != 2 {
			t.Fatalf("seed %d: %d provider calls, want 2", seed, up.Count())
		}
		for name, got := range map[string]*middleware.Response{"hit": hit, "replay": acc.Response()} {
			if !reflect.DeepEqual(got.Message, want.Message) || got.FinishReason != want.FinishReason || got.Refusal != want.Refusal {
				t.Fatalf("seed %d: %s\n%+v %q\nthe answer\n%+v %q", seed, name, got.Message, got.FinishReason, want.Message, want.FinishReason)
			}
		}
	}
}

// TestVersion1EntriesStillRead: entries written before the refusal was
// stored (version 1), before the audio tokens were (version 2), before
// the service tier was (version 3), before the message's legacy
// function call and refusal were (version 4) and before the entry's
// storing time and TTL were (version 5) still decode, without them.
func TestVersion1EntriesStillRead(t *testing.T) {
	t.Parallel()
	e := cache.Entry{Request: []byte("req"), Response: middleware.Response{ID: "c", FinishReason: "stop", Refusal: "no",
		Usage: middleware.Usage{InputTokens: 9, AudioInputTokens: 3, AudioOutputTokens: 4, ServiceTier: "priority"},
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: "hi", Refusal: "r",
			FunctionCall: &middleware.ToolCall{Name: "f", Arguments: "{}"}}},
		Stored: time.Unix(0, 1_700_000_000_123_456_789), TTL: time.Hour}
	b, _ := e.MarshalBinary()
	var back cache.Entry
	if err := back.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("version 6 round trip: %v\n%+v", err, back)
	}
	e.Stored, e.TTL = time.Time{}, 0
	// Each earlier version below is the form of this version without its
	// storing time, TTL and bill (0, 0 and none: a byte each), less what
	// it adds.
	marshal := func() []byte { b, _ := e.MarshalBinary(); return b[:len(b)-3] }
	b = marshal()
	v5 := append([]byte{5}, b[1:]...)
	if err := back.UnmarshalBinary(v5); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("version 5: %v\n%+v", err, back)
	}
	e.Response.Message.Refusal, e.Response.Message.FunctionCall = "", nil
	b = marshal()
	v4 := append([]byte{4}, b[1:len(b)-2]...) // version 4: no legacy call nor refusal (absent, empty: a byte each)
	if err := back.UnmarshalBinary(v4); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("version 4: %v\n%+v", err, back)
	}
	e.Response.Usage.ServiceTier = ""
	b = marshal()
	v3 := append([]byte{3}, b[1:len(b)-3]...) // version 3: nor the tier (empty: one byte)
	if err := back.UnmarshalBinary(v3); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("version 3: %v\n%+v", err, back)
	}
	e.Response.Usage.AudioInputTokens, e.Response.Usage.AudioOutputTokens = 0, 0
	b = marshal()
	v2 := append([]byte{2}, b[1:len(b)-5]...) // version 2: nor the audio tokens (0 and 0: a byte each)
	if err := back.UnmarshalBinary(v2); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("version 2: %v\n%+v", err, back)
	}
	e.Response.Refusal = ""
	b = marshal()
	v1 := append([]byte{1}, b[1:len(b)-7]...) // version 1: nor the refusal (empty: one byte) and native flag (one byte)
	if err := back.UnmarshalBinary(v1); err != nil || !reflect.DeepEqual(back, e) {
		t.Fatalf("version 1: %v\n%+v", err, back)
	}
}
