package langchaingo_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
)

// TestStreamedHitRepeatsTheOriginalChunks: a streaming caller served from
// the cache gets the chunks the first (streamed) call delivered, as they
// came: the same StreamingFunc calls, the backend's empty role and finish
// chunks included, not the answer cut anew.
func TestStreamedHitRepeatsTheOriginalChunks(t *testing.T) {
	t.Skip("unfixed: a hit is restreamed from the stored answer in the cache's own pieces (the text the same, the chunk boundaries and the backend's empty chunks not), since a stored answer keeps no chunk boundaries")
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "The disk is 42% full.", ChunkSize: 6})
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", false)}, c.Middleware())
	call := func() []string {
		var chunks []string
		if _, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("How full is the disk?")},
			llms.WithStreamingFunc(func(_ context.Context, b []byte) error { chunks = append(chunks, fmt.Sprintf("%q", b)); return nil })); err != nil {
			t.Fatal(err)
		}
		return chunks
	}
	first, hit := call(), call()
	if srv.Count() != 1 {
		t.Fatalf("%d provider calls, want 1", srv.Count())
	}
	if !reflect.DeepEqual(hit, first) {
		t.Fatalf("the hit streamed %v, the first call %v", hit, first)
	}
}
