package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
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
		Native: &middleware.StoredNative{Format: "openai.chat.completion/v1", Data: []byte(`{"choices":[]}`)}},
		Bill: []cache.Billed{{Model: "gpt-4o-mini", Usage: middleware.Usage{InputTokens: 60, OutputTokens: 10, CachedInputTokens: 50, ServiceTier: "flex"}},
			{Model: "gpt-4o", Usage: middleware.Usage{InputTokens: 40, OutputTokens: 10, ReasoningTokens: 7, AudioInputTokens: 3}}}}
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

// randomResponse returns a response with every field set (by reflection,
// so that a field added to the core types is covered) to random values,
// nil or empty at random: strings, integers, slices of parts and tool
// calls, binary data, and Native as a stored native answer. FromCache
// stays false: a store keeps answers, not the fact that one was served.
// OtherChoices stays nil: an adapter sets it on an answer without usage,
// for the estimate of what it cost; a store keeps an answer's choices in
// its Native, and a hit costs nothing.
func randomResponse(rng *rand.Rand) middleware.Response {
	var r middleware.Response
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if rng.IntN(4) > 0 {
				b := make([]byte, rng.IntN(300))
				for i := range b {
					b[i] = byte(rng.IntN(256))
				}
				v.SetString(string(b))
			}
		case reflect.Int64:
			v.SetInt(rng.Int64N(1<<40) - 1<<20)
		case reflect.Slice:
			switch n := rng.IntN(4); {
			case n == 0: // nil
			case v.Type().Elem().Kind() == reflect.Uint8:
				b := make([]byte, n-1) // empty, not nil, included
				for i := range b {
					b[i] = byte(rng.IntN(256))
				}
				v.SetBytes(b)
			default:
				s := reflect.MakeSlice(v.Type(), n, n)
				for i := range n {
					fill(s.Index(i))
				}
				v.Set(s)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if name := v.Type().Field(i).Name; name != "FromCache" && name != "OtherChoices" {
					fill(v.Field(i))
				}
			}
		case reflect.Interface:
			if rng.IntN(2) == 0 {
				sn := &middleware.StoredNative{Format: "openai.chat.completion/v1"}
				fill(reflect.ValueOf(&sn.Data).Elem())
				v.Set(reflect.ValueOf(sn))
			}
		case reflect.Bool:
			v.SetBool(rng.IntN(2) == 0)
		case reflect.Pointer:
			if rng.IntN(2) == 0 {
				p := reflect.New(v.Type().Elem())
				fill(p.Elem())
				v.Set(p)
			}
		default:
			panic("randomResponse: a field of kind " + v.Kind().String())
		}
	}
	fill(reflect.ValueOf(&r).Elem())
	return r
}

// TestStoresKeepEveryFieldOfTheAnswer: any answer, every field of the core
// types set or not, comes back equal from the binary form a shared store
// keeps and from a Memory store (which keeps it packed), and an answer
// served by a Memory store shares no mutable memory with it: changing the
// bytes of one leaves the next the same.
func TestStoresKeepEveryFieldOfTheAnswer(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 4))
	ctx := context.Background()
	m := cache.NewMemory(cache.MemoryOptions{})
	for i := range 2000 {
		e := &cache.Entry{Request: []byte("canonical " + strconv.Itoa(i)), Response: randomResponse(rng)}
		if i%2 == 1 {
			e.Bill = []cache.Billed{{Model: "a" + strconv.Itoa(i), Usage: middleware.Usage{InputTokens: rng.Int64(), OutputTokens: int64(i)}}, {Model: "b"}}
		}
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back cache.Entry
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&back, e) {
			t.Fatalf("binary round trip:\n%+v\n%+v", &back, e)
		}
		key := uint64(i)
		if err := m.Set(ctx, key, e, 0); err != nil {
			t.Fatal(err)
		}
		got, err := m.Get(ctx, key)
		if err != nil || got == nil {
			t.Fatalf("get: %v, %v", got, err)
		}
		if !reflect.DeepEqual(got.Response, e.Response) || !bytes.Equal(got.Request, e.Request) {
			t.Fatalf("memory round trip:\n%+v\n%+v", got.Response, e.Response)
		}
		if sn, ok := got.Response.Native.(*middleware.StoredNative); ok && len(sn.Data) > 0 {
			clear(sn.Data)
			for _, p := range got.Response.Message.Parts {
				clear(p.Data)
			}
			again, _ := m.Get(ctx, key)
			if !reflect.DeepEqual(again.Response, e.Response) {
				t.Fatal("changing a served answer's bytes changed the stored answer")
			}
		}
	}
}
