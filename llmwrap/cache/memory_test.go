package cache_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

func entry(i int, content string) *cache.Entry {
	return &cache.Entry{Request: fmt.Appendf(nil, "req-%d", i), Response: middleware.Response{Model: "m", FinishReason: "stop",
		Message: middleware.Message{Role: "assistant", Content: content}}}
}

// TestMemoryBounds: filling a store with 10× its bound, from several
// goroutines, never leaves more entries or bytes than allowed, and keeps the
// most recent ones.
func TestMemoryBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("entries", func(t *testing.T) {
		m := cache.NewMemory(cache.MemoryOptions{MaxEntries: 50})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := g; i < 500; i += 4 {
					_ = m.Set(ctx, uint64(i), entry(i, "x"), 0)
					if m.Len() > 50 {
						t.Errorf("%d entries, bound 50", m.Len())
					}
				}
			})
		}
		wg.Wait()
		if m.Len() != 50 {
			t.Fatalf("%d entries, want 50", m.Len())
		}
	})
	t.Run("bytes", func(t *testing.T) {
		const bound = 64 << 10
		m := cache.NewMemory(cache.MemoryOptions{MaxBytes: bound})
		content := strings.Repeat("y", 1000)
		var wg sync.WaitGroup
		var fill int64
		var mu sync.Mutex
		for g := range 4 {
			wg.Go(func() {
				for i := g; i < 700; i += 4 {
					e := entry(i, content)
					_ = m.Set(ctx, uint64(i), e, 0)
					mu.Lock()
					fill += int64(len(content))
					mu.Unlock()
					if b := m.Bytes(); b > bound {
						t.Errorf("%d bytes, bound %d", b, bound)
					}
				}
			})
		}
		wg.Wait()
		if fill < 10*bound {
			t.Fatalf("filled only %d bytes", fill)
		}
		if b := m.Bytes(); b > bound || b < bound/2 {
			t.Fatalf("%d bytes for a bound of %d", b, bound)
		}
		_ = m.Set(ctx, 10000, entry(10000, content), 0)
		if got, _ := m.Get(ctx, 10000); got == nil {
			t.Fatal("the newest entry was evicted")
		}
		if got, _ := m.Get(ctx, 0); got != nil {
			t.Fatal("the oldest entry survived")
		}
		// An entry larger than the bound is not stored, and does not leave
		// an older answer in its place.
		_ = m.Set(ctx, 10000, entry(10000, strings.Repeat("z", bound)), 0)
		if got, _ := m.Get(ctx, 10000); got != nil {
			t.Fatal("an entry over the byte bound was kept")
		}
	})
}

// TestMemoryTTL: entries expire after their own TTL; the sweeper removes
// them and stops with Close.
func TestMemoryTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := cache.NewMemory(cache.MemoryOptions{SweepEvery: time.Minute})
		defer m.Close()
		_ = m.Set(ctx, 1, entry(1, "short"), time.Minute)
		_ = m.Set(ctx, 2, entry(2, "long"), time.Hour)
		_ = m.Set(ctx, 3, entry(3, "forever"), 0)
		time.Sleep(59 * time.Second) // fake time
		if e, _ := m.Get(ctx, 1); e == nil {
			t.Fatal("expired early")
		}
		time.Sleep(time.Second)
		if e, _ := m.Get(ctx, 1); e != nil {
			t.Fatal("served after its TTL")
		}
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if m.Len() != 2 {
			t.Fatalf("the sweeper left %d entries, want 2", m.Len())
		}
		if e, _ := m.Get(ctx, 2); e == nil {
			t.Fatal("the long entry is gone")
		}
		time.Sleep(24 * time.Hour)
		if e, _ := m.Get(ctx, 3); e == nil {
			t.Fatal("an entry without TTL expired")
		}
	})
}

func TestEntryBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	e := &cache.Entry{Request: []byte("canonical\x00bytes"), Response: middleware.Response{ID: "id", Model: "gpt-4o", FinishReason: "tool_calls",
		Usage: middleware.Usage{InputTokens: 100, OutputTokens: 20, CachedInputTokens: 50, ReasoningTokens: 7},
		Message: middleware.Message{Role: "assistant", Content: "héllo", Reasoning: "because",
			Parts:     []middleware.Part{{Type: "text", Text: "t", Data: []byte{0, 1}}},
			ToolCalls: []middleware.ToolCall{{ID: "c1", Name: "f", Arguments: `{"a":1}`}}},
		Native: &middleware.StoredNative{Format: "openai.chat.completion/v1", Data: []byte(`{"choices":[]}`)}}}
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got cache.Entry
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, e) {
		t.Fatalf("round trip:\n%+v\n%+v", &got, e)
	}
	for i := range len(b) {
		var x cache.Entry
		if err := x.UnmarshalBinary(b[:i]); err == nil {
			t.Fatalf("a truncated entry (%d of %d bytes) decoded", i, len(b))
		}
	}
}
