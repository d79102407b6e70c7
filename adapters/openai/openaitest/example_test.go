package openaitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// A scripted reply read with a plain HTTP POST, served in memory.
func Example() {
	srv := openaitest.New()
	srv.On(openaitest.LastContains("disk")).Reply(openaitest.Text("The disk is 42% full."))
	client := &http.Client{Transport: srv.Transport()}

	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"How full is the disk?"}]}`
	resp, err := client.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, out.Choices[0].Message.Content)
	// 3 + 4 + ceil(21/4) = 13; ceil(21/4) = 6.
	fmt.Println("prompt:", out.Usage.PromptTokens, "completion:", out.Usage.CompletionTokens)
	// Output:
	// 200 The disk is 42% full.
	// prompt: 13 completion: 6
}

// An agent turn scripted for go-openai over a loopback listener: the model
// calls a tool, then answers once the tool result comes back.
func Example_goOpenAI() {
	srv := openaitest.New()
	srv.Start()
	defer srv.Close()
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("call_1", "check_disk", `{"path":"/"}`)))
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("The disk is 42% full."))

	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL
	client := openai.NewClientWithConfig(cfg)
	ctx := context.Background()

	msgs := []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "How full is the disk?"}}
	resp, err := client.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
	if err != nil {
		panic(err)
	}
	call := resp.Choices[0].Message.ToolCalls[0]
	fmt.Println(resp.Choices[0].FinishReason, call.Function.Name, call.Function.Arguments)

	msgs = append(msgs, resp.Choices[0].Message, openai.ChatCompletionMessage{
		Role: openai.ChatMessageRoleTool, ToolCallID: call.ID, Content: "42%",
	})
	stream, err := client.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
	if err != nil {
		panic(err)
	}
	defer stream.Close()
	var answer strings.Builder
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		for _, c := range chunk.Choices {
			answer.WriteString(c.Delta.Content)
		}
	}
	fmt.Println(answer.String())
	fmt.Println("requests:", srv.Count())
	// Output:
	// tool_calls check_disk {"path":"/"}
	// The disk is 42% full.
	// requests: 2
}

// Faults are replies too: here the first call is rate limited and the retry
// succeeds.
func ExampleRateLimited() {
	srv := openaitest.New()
	srv.On().Reply(openaitest.RateLimited(2*time.Second), openaitest.Text("ok"))
	client := &http.Client{Transport: srv.Transport()}

	for range 2 {
		resp, err := client.Post(srv.URL+"/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Output:
	// 429 2
	// 200
}
