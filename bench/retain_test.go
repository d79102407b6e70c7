package bench_test

import (
	"context"
	"runtime"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
)

// liveHeap returns the bytes and the number of live heap objects after a
// full collection.
func liveHeap() (bytes, objects int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.HeapObjects)
}

// TestMissKeepsWhatIsNew: with the default policy (its response cache
// keeps every answer), each call of a conversation of 50 messages (about
// 25 KB on the wire) with one new 500-byte message keeps only about what
// is new in it alive: the cache entry refers to the transport's copies of
// the messages it resends, which the entries of the other calls share,
// instead of keeping each call's whole body (22 KB a call before); and in
// at most 9 objects (10 before the store kept its packed entries in its
// list elements and a shared canonical request its bytes in one
// allocation).
func TestMissKeepsWhatIsNew(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, true, fullPolicy(t))
	conv := conversation()
	msgs := make([]goopenai.ChatCompletionMessage, len(conv)+1)
	copy(msgs, conv)
	ctx := context.Background()
	call := func(i int) {
		msgs[len(conv)] = newMessage(i)
		resp, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
		if err != nil || resp.Choices[0].Message.Content != answer {
			t.Fatal(resp, err)
		}
	}
	for i := range 300 { // warm: pools, the estimator's tables, the first entries
		call(i)
	}
	const n = 1200
	before, objsBefore := liveHeap()
	for i := range n {
		call(300 + i)
	}
	after, objsAfter := liveHeap()
	perCall := (after - before) / n
	objsPerCall := float64(objsAfter-objsBefore) / n
	call(0) // a hit: keeps the client, its transport and the cache alive until here
	if perCall > 6<<10 {
		t.Fatalf("each call keeps %d bytes alive, want at most 6 KiB (its request is %d KiB)", perCall, 25)
	}
	// The objects matter apart from the bytes: every collection marks each
	// one (a miss of the processor's cache each).
	if objsPerCall > 9 {
		t.Fatalf("each call keeps %.1f objects alive, want at most 9", objsPerCall)
	}
	t.Logf("each call keeps %d bytes alive, in %.1f objects", perCall, objsPerCall)
}
