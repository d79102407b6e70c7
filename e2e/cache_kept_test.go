package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestStreamCutBeforeItsUsageIsNotKept: a stream that ends cleanly after
// its finish_reason but before the usage chunk the transport asked for
// (stream_options.include_usage), without "data: [DONE]", is whole to its
// call (servers that never send [DONE] end so) but may have been cut just
// before its usage: it is not kept, so that no hit lacks the usage the
// package doc promises; the second call reaches the provider.
func TestStreamCutBeforeItsUsageIsNotKept(t *testing.T) {
	srv := openaitest.NewServer(t)
	// Chunks: role, content, finish, usage; the fault ends the body cleanly
	// after the first three.
	srv.On().Reply(openaitest.Reply{Content: "Freed 20GB.", ChunkSize: 100, Fault: openaitest.Fault{Kind: openaitest.FaultEOF, After: 3}}).Times(1)
	srv.Default(openaitest.Reply{Content: "Freed 20GB.", ChunkSize: 100})
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
	req := chatRequest("clean")
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	for i := range 2 {
		s, err := client.CreateChatCompletionStream(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var usage *openai.Usage
		for {
			r, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				break
			}
			if r.Usage != nil {
				usage = r.Usage
			}
		}
		s.Close()
		if i == 1 && (srv.Count() != 2 || usage == nil) {
			t.Fatalf("second call: %d provider calls, usage %v (cache header %q): the stream cut before its usage was kept",
				srv.Count(), usage, s.Header().Get("X-Tokenwise-Cache"))
		}
	}
}

// TestReloadToAShorterTTLHolds: a reload that shortens cache.ttl (the
// store kept across builds with llmwrap.WithState) holds the answers kept
// before it to the new TTL: an answer older than it is not served.
func TestReloadToAShorterTTLHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.Default(openaitest.Text("an answer"))
		st := llmwrap.NewState()
		day := llmwrap.MustBuild(cachePolicy(policies.Cache{TTL: policies.Duration(24 * time.Hour)}), llmwrap.WithState(st))
		if _, err := goOpenAI(t, srv, day, srv.Transport()).CreateChatCompletion(context.Background(), chatRequest("disk?")); err != nil {
			t.Fatal(err)
		}
		minute := llmwrap.MustBuild(cachePolicy(policies.Cache{TTL: policies.Duration(time.Minute)}), llmwrap.WithState(st))
		time.Sleep(2 * time.Minute) // fake time: the answer is two minutes old
		if _, err := goOpenAI(t, srv, minute, srv.Transport()).CreateChatCompletion(context.Background(), chatRequest("disk?")); err != nil {
			t.Fatal(err)
		}
		if srv.Count() != 2 {
			t.Fatalf("%d provider calls: a two-minute-old answer was served under ttl: 1m", srv.Count())
		}
	})
}

// TestLangchaingoStreamCutBeforeItsUsageIsNotKept is
// TestStreamCutBeforeItsUsageIsNotKept through langchaingo's openai
// backend with twlc.NewTransport (which reads a stream that ends after its
// finish_reason without [DONE] as complete): not kept either.
func TestLangchaingoStreamCutBeforeItsUsageIsNotKept(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "Freed 20GB.", ChunkSize: 100, Fault: openaitest.Fault{Kind: openaitest.FaultEOF, After: 3}}).Times(1)
	srv.Default(openaitest.Reply{Content: "Freed 20GB.", ChunkSize: 100})
	inner, err := lcopenai.New(lcopenai.WithBaseURL(srv.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"),
		lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gpt-4o-mini": inner}, llmwrap.MustBuild(cachePolicy(policies.Cache{})))
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "clean the disk")}
	for i := range 2 {
		out, err := llm.GenerateContent(context.Background(), msgs, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if got := out.Choices[0].Content; got != "Freed 20GB." {
			t.Fatalf("call %d: content %q", i+1, got)
		}
	}
	if n := srv.Count(); n != 2 {
		t.Fatalf("the provider saw %d calls, want 2: the stream that ended without [DONE] and without its usage was kept", n)
	}
}
