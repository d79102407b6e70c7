package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func TestLangchaingoThroughTheTransport(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Streaming()).Reply(openaitest.Reply{Content: "Streaming works.", ChunkSize: 4})
	srv.On().Reply(openaitest.Text("The disk is 42% full."))
	rec := &middlewaretest.Tap{}
	llm, err := lcopenai.New(
		lcopenai.WithToken("test-key"),
		lcopenai.WithBaseURL(srv.URL),
		lcopenai.WithModel("gpt-4o-mini"),
		lcopenai.WithHTTPClient(twopenai.NewHTTPClient(middleware.Chain(rec.Middleware, routeTo("gpt-4o")))),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "You are an SRE assistant."),
		llms.TextParts(llms.ChatMessageTypeHuman, "How full is the disk?"),
	}
	out, err := llm.GenerateContent(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Choices[0].Content; got != "The disk is 42% full." {
		t.Fatalf("content %q", got)
	}
	req, resp, err := rec.Last(t)
	if err != nil || req.Model != "gpt-4o-mini" || req.LastUserText() != "How full is the disk?" || resp.Usage.IsZero() {
		t.Fatalf("the chain saw %+v / %+v / %v", req, resp, err)
	}
	if m := srv.Requests()[0].Chat.Model; m != "gpt-4o" {
		t.Fatalf("upstream model %q", m)
	}

	var streamed strings.Builder
	out, err = llm.GenerateContent(ctx, msgs, llms.WithStreamingFunc(func(ctx context.Context, chunk []byte) error {
		streamed.Write(chunk)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != "Streaming works." || out.Choices[0].Content != "Streaming works." {
		t.Fatalf("streamed %q, content %q", streamed.String(), out.Choices[0].Content)
	}
	if _, resp, _ := rec.Last(t); resp.Usage.IsZero() {
		t.Fatal("no usage on the stream")
	}

	// A tokenwise error reaches langchaingo's caller when the Transport
	// itself is the client (langchaingo hides every *url.Error).
	llm2, _ := lcopenai.New(lcopenai.WithToken("k"), lcopenai.WithBaseURL(srv.URL), lcopenai.WithModel("gpt-4o-mini"),
		lcopenai.WithHTTPClient(twopenai.NewTransport(refuse)))
	if _, err := llm2.GenerateContent(ctx, msgs); !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("langchaingo returned %v", err)
	}
}
