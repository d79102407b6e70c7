package e2e

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// The official openai-go client takes the same HTTP client: its chat
// completions, plain and streamed, go through the chain unchanged.
func TestOfficialOpenAIGoClient(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Streaming()).Reply(openaitest.Text("streamed through tokenwise"))
	srv.On().Reply(openaitest.Text("answered through tokenwise"))

	var seen atomic.Int32
	var usage atomic.Int64
	count := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			seen.Add(1)
			resp, err := next.Handle(ctx, req)
			if resp != nil {
				usage.Add(resp.Usage.Total())
			}
			return resp, err
		})
	}
	client := oai.NewClient(
		option.WithBaseURL(srv.URL),
		option.WithAPIKey("test"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: twopenai.NewTransport(count)}),
	)
	params := oai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("status?")},
	}
	resp, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "answered through tokenwise" || resp.Usage.TotalTokens == 0 {
		t.Fatalf("content %q usage %+v", got, resp.Usage)
	}

	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	acc := oai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "streamed through tokenwise" {
		t.Fatalf("streamed %q", got)
	}
	if seen.Load() != 2 || usage.Load() == 0 {
		t.Fatalf("chain saw %d calls, usage %d", seen.Load(), usage.Load())
	}
}

// A tokenwise refusal reaches the openai-go caller matchable with errors.Is.
func TestOfficialOpenAIGoClientSeesTypedErrors(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("never"))
	refuse := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			return nil, middleware.ErrBudget
		})
	}
	client := oai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test"), option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: twopenai.NewTransport(refuse)}))
	_, err := client.Chat.Completions.New(context.Background(), oai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")},
	})
	if !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("err = %v", err)
	}
	if srv.Count() != 0 {
		t.Fatalf("provider saw %d requests", srv.Count())
	}
}
