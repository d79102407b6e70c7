package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

// fakeWire is an adapter's Native: the response body the answer's strings
// were decoded from (and point into, as the OpenAI adapter's do).
type fakeWire struct{ json []byte }

func (w *fakeWire) MarshalNative() (string, []byte, bool) { return "test/v1", w.json, true }

// TestMemoryBoundHoldsOnTheHeap: a Memory store with max_bytes 16 MiB,
// filled ten times over through the cache layer with answers of mixed
// sizes (strings pointing into a larger response body, a native body,
// tool calls, requests of several KB), holds at most 5% more live heap
// than its bound, measured with runtime.MemStats after a full GC: size
// classes, the store's per-entry overhead and memory shared with the
// provider's buffers are all counted. It also holds at least 75% of it:
// the accounting does not waste the bound.
func TestMemoryBoundHoldsOnTheHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 160 MiB")
	}
	const bound = 16 << 20
	r := rand.New(rand.NewPCG(1, 2))
	filler := strings.Repeat("the disk on web-1 is at 95 percent; ", 500)
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		n := 100 + r.IntN(12000)
		body := fmt.Sprintf(`{"id":"chatcmpl-%d","choices":[{"message":{"content":%q}}],"pad":%q}`, *req.Seed, filler[:n], filler[:r.IntN(4000)])
		content := body[strings.Index(body, `"content":"`)+11:][:n] // a slice of the whole body
		resp := &middleware.Response{ID: body[12 : 12+strings.IndexByte(body[12:], '"')], Model: "gpt-4o-mini", FinishReason: "stop",
			Usage:   middleware.Usage{InputTokens: 100, OutputTokens: int64(n / 4)},
			Message: middleware.Message{Role: "assistant", Content: content}, Native: &fakeWire{json: []byte(body)}}
		if r.IntN(3) == 0 {
			resp.FinishReason = "tool_calls"
			resp.Message.ToolCalls = []middleware.ToolCall{{ID: "call_1", Name: "check_disk", Arguments: body[len(body)-40:]}}
		}
		return resp, nil
	})
	ctx := context.Background()
	var seed int64
	req := &middleware.Request{Model: "gpt-4o-mini", Seed: &seed}

	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	store := cache.NewMemory(cache.MemoryOptions{MaxEntries: 1 << 20, MaxBytes: bound})
	h := layer(cache.New(cache.Config{}, cache.WithStore(store)))(provider)
	filled := 0
	for filled < 10*bound {
		seed++
		req.Messages = []middleware.Message{{Role: "user", Content: filler[:r.IntN(len(filler))]}}
		resp, err := h.Handle(ctx, req)
		if err != nil || resp.FromCache {
			t.Fatal(resp, err)
		}
		filled += len(resp.Message.Content) + len(req.Messages[0].Content) + len(resp.Native.(*fakeWire).json)
		if b := store.Bytes(); b > bound {
			t.Fatalf("the store counts %d bytes, bound %d", b, bound)
		}
	}
	req, provider = nil, nil

	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(h)
	runtime.KeepAlive(store)

	t.Logf("filled %d MiB; %d entries, %d bytes counted; live heap +%d bytes (%.1f%% of the bound)",
		filled>>20, store.Len(), store.Bytes(), live, 100*float64(live)/bound)
	if store.Bytes() < bound*9/10 {
		t.Fatalf("the store holds only %d bytes of %d", store.Bytes(), bound)
	}
	if live > bound*105/100 {
		t.Fatalf("live heap grew by %d bytes, %.1f%% over the %d-byte bound", live, 100*(float64(live)/bound-1), bound)
	}
	if live < bound*75/100 {
		t.Fatalf("live heap grew by only %d bytes for a %d-byte bound: the accounting overcounts", live, bound)
	}
}

// TestMemoryEntriesAreLittleToScan: what a Memory store's entries add to
// the heap every garbage collection scans (runtime/metrics'
// /gc/scan/heap:bytes), per entry of an agent's typical answer (a tool
// call, usage, the provider's 700-byte body kept as its native answer),
// stays under 320 bytes: the LRU's element and map slot and a few words
// of the packed entry. The answer itself is pointer-free bytes (a kept
// middleware.Response, strings, slices and all, was about 400 bytes more).
func TestMemoryEntriesAreLittleToScan(t *testing.T) {
	const n = 4000
	ctx := context.Background()
	native := []byte(strings.Repeat("x", 700))
	answer := func(i int) *cache.Entry {
		return &cache.Entry{Request: []byte("canonical request " + strconv.Itoa(i)), Response: middleware.Response{
			ID: "chatcmpl-" + strconv.Itoa(i), Model: "gpt-4o-mini", FinishReason: "tool_calls",
			Usage: middleware.Usage{InputTokens: 2100, OutputTokens: 18},
			Message: middleware.Message{Role: "assistant", ToolCalls: []middleware.ToolCall{{
				ID: "call_" + strconv.Itoa(i), Name: "check_disk", Arguments: `{"host":"web-1","path":"/var"}`}}},
			Native: &middleware.StoredNative{Format: "openai.chat.completion/v1", Data: native}}}
	}
	m := cache.NewMemory(cache.MemoryOptions{MaxEntries: 2 * n})
	before := scanHeap()
	for i := range n {
		if err := m.Set(ctx, uint64(i)*0x9E3779B97F4A7C15, answer(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(scanHeap()-before) / n
	runtime.KeepAlive(m)
	t.Logf("%.0f bytes to scan per entry", per)
	if per > 320 {
		t.Fatalf("%.0f bytes to scan per entry, want at most 320", per)
	}
}

// scanHeap returns the heap the garbage collector scans, after a full
// collection.
func scanHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
