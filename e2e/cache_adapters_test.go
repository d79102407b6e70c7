package e2e

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

var weatherTool = llms.Tool{Type: "function", Function: &llms.FunctionDefinition{
	Name: "check_disk", Description: "Disk usage of a path",
	Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
}}

// TestHitThroughLangchaingo: GenerateContent and a streaming call through
// the langchaingo adapter are served from the cache with the original's
// content, tool calls and finish reason; the provider saw one request per
// distinct request.
func TestHitThroughLangchaingo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply openaitest.Reply
		tools bool
	}{
		{"text", openaitest.Reply{Content: "The disk is 42% full. Nothing to clean.", Reasoning: "Look at the numbers.", ChunkSize: 5}, false},
		{"tool calls", openaitest.ToolCalls(openaitest.Call("call_a", "check_disk", `{"path":"/var/log"}`),
			openaitest.Call("call_b", "check_disk", `{"path":"/"}`)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			obs := &events{}
			llm := langchaingo(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{}), llmwrap.WithObserver(obs)), "gpt-4o-mini")
			msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, "You are an SRE."), human("How full is the disk?")}
			opts := []llms.CallOption{llms.WithTemperature(0)}
			if tc.tools {
				opts = append(opts, llms.WithTools([]llms.Tool{weatherTool}))
			}
			ctx := context.Background()
			first, err := llm.GenerateContent(ctx, msgs, opts...)
			if err != nil {
				t.Fatal(err)
			}
			second, err := llm.GenerateContent(ctx, msgs, opts...)
			if err != nil {
				t.Fatal(err)
			}
			var streamed strings.Builder
			third, err := llm.GenerateContent(ctx, msgs, append(opts, llms.WithStreamingFunc(func(_ context.Context, b []byte) error {
				streamed.Write(b)
				return nil
			}))...)
			if err != nil {
				t.Fatal(err)
			}
			if n := srv.Count(); n != 1 {
				t.Fatalf("the provider saw %d requests, want 1", n)
			}
			c0 := first.Choices[0]
			if c0.StopReason == "" || (tc.tools && len(c0.ToolCalls) != 2) || (!tc.tools && c0.Content == "") {
				t.Fatalf("unexpected original %+v", c0)
			}
			for i, got := range []*llms.ContentResponse{second, third} {
				c := got.Choices[0]
				if c.Content != c0.Content || c.StopReason != c0.StopReason || !reflect.DeepEqual(c.ToolCalls, c0.ToolCalls) {
					t.Fatalf("hit %d: %+v, want %+v", i, c, c0)
				}
				if !tc.tools && c.ReasoningContent != c0.ReasoningContent {
					t.Fatalf("hit %d: reasoning %q, want %q", i, c.ReasoningContent, c0.ReasoningContent)
				}
			}
			if !tc.tools && streamed.String() != c0.Content {
				t.Fatalf("streamed %q, want %q", streamed.String(), c0.Content)
			}
			if tc.tools && !strings.Contains(streamed.String(), `check_disk`) {
				t.Fatalf("streamed tool calls %q", streamed.String())
			}
			var hits int
			for _, l := range obs.lookups() {
				if l.Status == middleware.CacheHit {
					hits++
					if l.Saved.IsZero() || l.SavedPico <= 0 {
						t.Fatalf("hit without savings: %+v", l)
					}
				}
			}
			if hits != 2 {
				t.Fatalf("%d hit events, want 2", hits)
			}
		})
	}
}

// TestHitThroughGoOpenAI: CreateChatCompletion and CreateChatCompletionStream
// callers of a raw go-openai client get the cached answer, the stream as a
// normal stream; the provider saw one request.
func TestHitThroughGoOpenAI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply openaitest.Reply
	}{
		{"text", openaitest.Reply{Content: "Disk at 95%. /var/log is the culprit.", ChunkSize: 4}},
		{"tool calls", openaitest.ToolCalls(openaitest.Call("call_1", "check_disk", `{"path":"/"}`), openaitest.Call("call_2", "clean_logs", `{}`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
			req := openai.ChatCompletionRequest{
				Model:       "gpt-4o-mini",
				Temperature: 0,
				Seed:        new(7),
				Messages: []openai.ChatCompletionMessage{
					{Role: "system", Content: "You are an SRE."},
					{Role: "user", Content: "I'm out of disk space. Sort it out."},
				},
				Tools: []openai.Tool{{Type: "function", Function: &openai.FunctionDefinition{Name: "check_disk", Parameters: map[string]any{"type": "object"}}}},
			}
			ctx := context.Background()
			first, err := client.CreateChatCompletion(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			second, err := client.CreateChatCompletion(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			stream, err := client.CreateChatCompletionStream(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			var content strings.Builder
			var calls []openai.ToolCall
			var finish openai.FinishReason
			for {
				r, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Choices) == 0 {
					continue
				}
				d := r.Choices[0].Delta
				content.WriteString(d.Content)
				for _, tc := range d.ToolCalls {
					i := *tc.Index
					for len(calls) <= i {
						calls = append(calls, openai.ToolCall{})
					}
					if tc.ID != "" {
						calls[i].ID, calls[i].Type = tc.ID, tc.Type
					}
					calls[i].Function.Name += tc.Function.Name
					calls[i].Function.Arguments += tc.Function.Arguments
				}
				if r.Choices[0].FinishReason != "" {
					finish = r.Choices[0].FinishReason
				}
			}
			if n := srv.Count(); n != 1 {
				t.Fatalf("the provider saw %d requests, want 1", n)
			}
			m0, m1 := first.Choices[0].Message, second.Choices[0].Message
			if m1.Content != m0.Content || !reflect.DeepEqual(m1.ToolCalls, m0.ToolCalls) || second.Choices[0].FinishReason != first.Choices[0].FinishReason {
				t.Fatalf("hit %+v, want %+v", second.Choices[0], first.Choices[0])
			}
			if content.String() != m0.Content || finish != first.Choices[0].FinishReason {
				t.Fatalf("stream %q / %q, want %q / %q", content.String(), finish, m0.Content, first.Choices[0].FinishReason)
			}
			if len(calls) != len(m0.ToolCalls) {
				t.Fatalf("streamed %d tool calls, want %d", len(calls), len(m0.ToolCalls))
			}
			for i := range calls {
				if calls[i].ID != m0.ToolCalls[i].ID || calls[i].Function != m0.ToolCalls[i].Function {
					t.Fatalf("streamed tool call %d %+v, want %+v", i, calls[i], m0.ToolCalls[i])
				}
			}
			// The hit is the stored answer, usage included (what it cost when
			// it was made); the header tells it apart.
			if first.Usage.TotalTokens == 0 || second.Usage.TotalTokens != first.Usage.TotalTokens {
				t.Fatalf("usage: miss %+v, hit %+v", first.Usage, second.Usage)
			}
			if first.Header().Get(twopenai.CacheHeader) != "" || second.Header().Get(twopenai.CacheHeader) != "hit" {
				t.Fatalf("cache header: miss %q, hit %q", first.Header().Get(twopenai.CacheHeader), second.Header().Get(twopenai.CacheHeader))
			}
		})
	}
}

// TestMetadataDoesNotSplitTheKey: go-openai requests that differ only in
// metadata, user and stream options share one answer; one that differs in
// an answer-affecting setting the core does not model (frequency_penalty,
// carried in Request.Extra) does not.
func TestMetadataDoesNotSplitTheKey(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
	base := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Seed: new(1),
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "status?"}}}
	ctx := context.Background()
	for i, mut := range []func(r *openai.ChatCompletionRequest){
		func(r *openai.ChatCompletionRequest) {},
		func(r *openai.ChatCompletionRequest) { r.Metadata = map[string]string{"trace_id": "abc"} },
		func(r *openai.ChatCompletionRequest) {
			r.Metadata = map[string]string{"trace_id": "def", "span": "1"}
			r.User = "someone"
		},
	} {
		r := base
		mut(&r)
		if _, err := client.CreateChatCompletion(ctx, r); err != nil {
			t.Fatal(i, err)
		}
	}
	if n := srv.Count(); n != 1 {
		t.Fatalf("metadata split the key: %d provider requests", n)
	}
	r := base
	r.FrequencyPenalty = 0.5
	if _, err := client.CreateChatCompletion(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.FrequencyPenalty = 0.7
	if _, err := client.CreateChatCompletion(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(); n != 3 {
		t.Fatalf("frequency_penalty did not split the key: %d provider requests, want 3", n)
	}
}

// TestLangchaingoOptionsSplitTheKey: langchaingo options the core does not
// model (top_k, penalties) reach the key through Request.Extra; metadata
// does not.
func TestLangchaingoOptionsSplitTheKey(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	llm := langchaingo(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), "gpt-4o-mini")
	ctx := context.Background()
	msgs := []llms.MessageContent{human("status?")}
	call := func(opts ...llms.CallOption) {
		t.Helper()
		if _, err := llm.GenerateContent(ctx, msgs, append([]llms.CallOption{llms.WithSeed(3)}, opts...)...); err != nil {
			t.Fatal(err)
		}
	}
	call()
	call(llms.WithMetadata(map[string]any{"trace": "x"}))
	if n := srv.Count(); n != 1 {
		t.Fatalf("metadata split the key: %d provider requests", n)
	}
	call(llms.WithPresencePenalty(0.4))
	call(llms.WithTopK(5))
	if n := srv.Count(); n != 3 {
		t.Fatalf("%d provider requests, want 3", n)
	}
}

// TestMutatingAResponseDoesNotChangeTheNextHit: callers own what they get,
// on a miss as on a hit.
func TestMutatingAResponseDoesNotChangeTheNextHit(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "original", ToolCalls: []openaitest.ToolCall{openaitest.Call("c1", "check_disk", `{"path":"/"}`)}})
	llm := langchaingo(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), "gpt-4o-mini")
	ctx := context.Background()
	msgs := []llms.MessageContent{human("disk?")}
	opts := []llms.CallOption{llms.WithTemperature(0), llms.WithTools([]llms.Tool{weatherTool})}
	for i := range 3 {
		out, err := llm.GenerateContent(ctx, msgs, opts...)
		if err != nil {
			t.Fatal(err)
		}
		c := out.Choices[0]
		if c.Content != "original" || len(c.ToolCalls) != 1 || c.ToolCalls[0].FunctionCall.Arguments != `{"path":"/"}` {
			t.Fatalf("call %d got %+v", i, c)
		}
		c.Content = "mutated"
		c.ToolCalls[0].FunctionCall.Arguments = `{"path":"/etc"}`
		c.ToolCalls[0].ID = "mutated"
		out.Choices[0] = &llms.ContentChoice{Content: "replaced"}
	}

	// The same at the core level, where the cache hands out *Response.
	var stored *middleware.Response
	h := llmwrap.MustBuild(cachePolicy(policies.Cache{}))(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		stored = &middleware.Response{Model: req.Model, FinishReason: "tool_calls", Message: middleware.Message{Role: "assistant",
			ToolCalls: []middleware.ToolCall{{ID: "c1", Name: "check_disk", Arguments: `{}`}}}, Usage: middleware.Usage{InputTokens: 10, OutputTokens: 5}}
		return stored, nil
	}))
	zero := 0.0
	req := &middleware.Request{Model: "gpt-4o-mini", Temperature: &zero, Messages: []middleware.Message{{Role: "user", Content: "x"}}}
	for i := range 3 {
		resp, err := h.Handle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Message.ToolCalls[0].Arguments != `{}` || resp.FinishReason != "tool_calls" || (i > 0) != resp.FromCache {
			t.Fatalf("call %d got %+v", i, resp)
		}
		resp.Message.ToolCalls[0].Arguments = "mutated"
		resp.FinishReason = "mutated"
	}
}
