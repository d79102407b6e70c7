package bench_test

import (
	"context"
	"runtime"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
)

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestMissKeepsWhatIsNew: with the default policy (its response cache
// keeps every answer), each call of a conversation of 50 messages (about
// 25 KB on the wire) with one new 500-byte message keeps only about what
// is new in it alive: the cache entry refers to the transport's copies of
// the messages it resends, which the entries of the other calls share,
// instead of keeping each call's whole body (22 KB a call before).
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
	before := liveHeap()
	for i := range n {
		call(300 + i)
	}
	perCall := (liveHeap() - before) / n
	call(0) // a hit: keeps the client, its transport and the cache alive until here
	if perCall > 6<<10 {
		t.Fatalf("each call keeps %d bytes alive, want at most 6 KiB (its request is %d KiB)", perCall, 25)
	}
	t.Logf("each call keeps %d bytes alive", perCall)
}
