package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestShardedMemoryHoldsItsBoundsAndIsNeverWrong: a sharded store written
// and read by several goroutines with random keys, sizes and TTLs never
// counts more bytes than its bound or holds more entries than allowed,
// serves under a key only the entry last stored under it (never another
// key's), and keeps the entry just stored when it fits.
func TestShardedMemoryHoldsItsBoundsAndIsNeverWrong(t *testing.T) {
	const maxBytes = 256 << 10
	ctx := context.Background()
	m := newMemory(MemoryOptions{MaxEntries: 160, MaxBytes: maxBytes}, memShards)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 3000 {
				key := rng.Uint64()
				if rng.IntN(3) == 0 {
					key = uint64(rng.IntN(64)) << 58 // a few hot keys, every shard
				}
				content := strings.Repeat("x", rng.IntN(8<<10))
				e := &Entry{Request: fmt.Appendf(nil, "%d", key), Response: middleware.Response{FinishReason: "stop",
					Message: middleware.Message{Role: "assistant", Content: content}}}
				if err := m.Set(ctx, key, e, 0); err != nil {
					t.Error(err)
					return
				}
				if b := m.Bytes(); b > maxBytes {
					t.Errorf("%d bytes, bound %d", b, maxBytes)
					return
				}
				if got, _ := m.Get(ctx, key); got != nil && string(got.Request) != fmt.Sprint(key) {
					t.Errorf("key %d served the entry of %s", key, got.Request)
					return
				}
				if i%500 == 0 && m.Len() > 160 {
					t.Errorf("%d entries, bound 160", m.Len())
					return
				}
			}
		})
	}
	wg.Wait()
	if b := m.Bytes(); b < maxBytes/2 {
		t.Fatalf("only %d bytes held of %d", b, maxBytes)
	}
	// The bytes counted are those of the entries held.
	var sum int64
	for i := range m.shards {
		for _, k := range m.shards[i].lru.Keys() {
			v, _ := m.shards[i].lru.Peek(k)
			sum += v.size
		}
	}
	if sum != m.Bytes() {
		t.Fatalf("entries hold %d bytes, the store counts %d", sum, m.Bytes())
	}
	e := &Entry{Request: []byte("last"), Response: middleware.Response{FinishReason: "stop"}}
	_ = m.Set(ctx, 42, e, 0)
	if got, _ := m.Get(ctx, 42); got == nil || string(got.Request) != "last" || !reflect.DeepEqual(got.Response, e.Response) {
		t.Fatalf("the entry just stored is not served: %+v", got)
	}
}

// TestShardedMemoryWithoutByteBoundCountsItsBytes: a store without a byte
// bound counts its bytes per shard; written by several goroutines
// (replacing, evicting, deleting), Bytes is the sum of its entries'.
func TestShardedMemoryWithoutByteBoundCountsItsBytes(t *testing.T) {
	ctx := context.Background()
	m := newMemory(MemoryOptions{MaxEntries: 200}, memShards)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for range 2000 {
				key := uint64(rng.IntN(400)) << 56
				if rng.IntN(8) == 0 {
					_ = m.Delete(ctx, key)
					continue
				}
				e := &Entry{Request: []byte("r"), Response: middleware.Response{FinishReason: "stop",
					Message: middleware.Message{Role: "assistant", Content: strings.Repeat("y", rng.IntN(4<<10))}}}
				_ = m.Set(ctx, key, e, 0)
				_ = m.Bytes()
			}
		})
	}
	wg.Wait()
	var sum int64
	for i := range m.shards {
		for _, k := range m.shards[i].lru.Keys() {
			v, _ := m.shards[i].lru.Peek(k)
			sum += v.size
		}
	}
	if sum == 0 || sum != m.Bytes() || m.Len() > 200 {
		t.Fatalf("entries hold %d bytes, the store counts %d; %d entries", sum, m.Bytes(), m.Len())
	}
}

// BenchmarkMemoryParallel: Get then Set of random keys from every
// goroutine (-cpu 64 for contention), on one shard and on the sharded
// store a default store is.
func BenchmarkMemoryParallel(b *testing.B) {
	for _, n := range []int{1, memShards} {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			m := newMemory(MemoryOptions{MaxEntries: DefaultMaxEntries}, n)
			ctx := context.Background()
			e := &Entry{Request: []byte("r"), Response: middleware.Response{FinishReason: "stop", Message: middleware.Message{Content: "answer"}}}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					k := rng.Uint64()
					if got, _ := m.Get(ctx, k); got == nil {
						_ = m.Set(ctx, k, e, 0)
					}
				}
			})
		})
	}
}

// TestPackedAnswerIsOneAllocation: the binary form of an answer fits the
// bound it is allocated with, whatever it holds (a streamed answer's
// native form is kilobytes of chunks), so packing allocates once.
func TestPackedAnswerIsOneAllocation(t *testing.T) {
	long := strings.Repeat("é", 3000)
	for i, r := range []middleware.Response{
		{},
		{ID: "c", Model: "m", FinishReason: "stop", Refusal: long, Usage: middleware.Usage{InputTokens: -1 << 62, AudioOutputTokens: 1 << 62},
			Message: middleware.Message{Role: "assistant", Content: long, Name: "n", ToolCallID: "t", Reasoning: long,
				Parts:     []middleware.Part{{Type: "text", Text: long, URL: "u", Detail: "d", MIMEType: "m", Data: []byte(long)}, {}},
				ToolCalls: []middleware.ToolCall{{ID: "a", Name: "f", Arguments: long}, {}}},
			Native: &middleware.StoredNative{Format: "f", Data: []byte(strings.Repeat(long, 20))}},
	} {
		sn, _ := r.Native.(*middleware.StoredNative)
		var bill []Billed
		if i > 0 {
			bill = []Billed{{Model: long, Usage: middleware.Usage{InputTokens: -1 << 62, AudioOutputTokens: 1 << 62, ServiceTier: long}}, {}}
		}
		p := packed(canon{flat: []byte("k")}, &r, sn, bill)
		bound := responseBinaryBound(&r, sn) + billBound(bill)
		if n := len(appendBill(appendResponseBinary(nil, &r), bill)); n > bound || len(p.resp) != n || cap(p.resp) != bound {
			t.Fatalf("answer %d: %d bytes, bound %d, packed in %d of %d", i, n, bound, len(p.resp), cap(p.resp))
		}
	}
}
