package openai_test

import (
	"context"
	"fmt"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// A go-openai client adopts tokenwise by changing its HTTP client; every
// call site stays as it was.
func Example() {
	srv := openaitest.New() // a scripted OpenAI-compatible server, in memory
	srv.On().Reply(openaitest.Text("The disk is 42% full."))

	// A chain that logs what it sees; tokenwise's policies build real ones.
	logged := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			resp, err := next.Handle(ctx, req)
			if err == nil {
				fmt.Printf("chain: %s answered, %d tokens\n", resp.Model, resp.Usage.Total())
			}
			return resp, err
		})
	}

	cfg := openai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(logged, twopenai.WithBaseTransport(srv.Transport()))
	client := openai.NewClientWithConfig(cfg)

	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "How full is the disk?"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Choices[0].Message.Content)
	// Output:
	// chain: gpt-4o-mini answered, 19 tokens
	// The disk is 42% full.
}

// A Provider serves core requests without go-openai.
func ExampleNewProvider() {
	srv := openaitest.New()
	srv.On().Reply(openaitest.Text("pong"))
	p := twopenai.NewProvider(srv.URL, "test-key", twopenai.WithBaseTransport(srv.Transport()))

	resp, err := p.Handle(context.Background(), &middleware.Request{
		Model:    "gpt-4o-mini",
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "ping"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Message.Content, resp.FinishReason, resp.Usage.InputTokens, resp.Usage.OutputTokens)
	// Output:
	// pong stop 8 1
}
