package cache

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// heapAfterGC is the heap's live bytes after two collections.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// retainedByHit serves req twice through a cache whose Memory store
// keeps the answer, drops the cache, and returns the heap bytes that the
// hit's answer alone keeps alive.
func retainedByHit(t *testing.T, req *middleware.Request) uint64 {
	t.Helper()
	c, err := New(Config{}, WithStore(NewMemory(MemoryOptions{MaxEntries: 16})))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: "gpt-4o", FinishReason: "stop",
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "A cat on a mat."}}, nil
	}))
	ctx := context.Background()
	if _, err := h.Handle(ctx, req); err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(ctx, req)
	if err != nil || !resp.FromCache {
		t.Fatalf("second call: %+v, %v: want a hit", resp, err)
	}
	answer := resp.Message.Content // what an agent keeps in its history
	c, h, resp = nil, nil, nil
	with := heapAfterGC()
	if answer != "A cat on a mat." {
		t.Fatalf("answer %q", answer)
	}
	answer = ""
	without := heapAfterGC()
	if with < without {
		return 0
	}
	return with - without
}

// TestHitAnswerKeepsNoCopyOfItsRequest: the strings of an answer served
// from a Memory store point into the entry's packed answer; holding one
// (an agent keeps the answer in its history) must not keep the copy of
// the request the entry held, here a 1 MB binary part (a copied
// encoding in the rope), alive once the store dropped the entry.
func TestHitAnswerKeepsNoCopyOfItsRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("collects the heap")
	}
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{
		{Role: middleware.RoleSystem, Content: strings.Repeat("Describe the picture. ", 4)},
		{Role: middleware.RoleUser, Parts: []middleware.Part{{Type: "input_audio", MIMEType: "audio/wav", Data: make([]byte, 1<<20)}}},
	}}
	if n := retainedByHit(t, req); n > 64<<10 {
		t.Fatalf("the hit's answer keeps %d bytes alive, want at most 64 KiB (the 1 MiB request is the store's, not the answer's)", n)
	}
}
