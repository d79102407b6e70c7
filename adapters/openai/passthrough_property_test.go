package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// randomGoOpenAIRequest is a chat completion request as go-openai builds
// it, every field of the request and of its messages drawn at random
// (present or not, and its value): roles, plain and multi-part content
// (text and image parts), names, tool calls and results, legacy function
// calls, tools, every shape of tool_choice, response formats, stops,
// seeds, logit bias, logprobs, metadata, predictions, reasoning effort,
// service tier, chat template kwargs.
func randomGoOpenAIRequest(rng *rand.Rand) openai.ChatCompletionRequest {
	coin := func() bool { return rng.IntN(2) == 0 }
	text := func() string {
		words := []string{"disk", "é", "日本", "\"quoted\"", "back\\slash", "line\nbreak", "tab\t", "<tag>", "&", "\u2028", "ok"}
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(words[rng.IntN(len(words))] + " ")
		}
		return b.String()
	}
	req := openai.ChatCompletionRequest{Model: []string{"gpt-4o-mini", "gpt-4o", "o3-mini", "my-local-model"}[rng.IntN(4)]}
	for range 1 + rng.IntN(6) {
		m := openai.ChatCompletionMessage{Role: []string{"system", "developer", "user", "assistant", "tool"}[rng.IntN(5)]}
		switch rng.IntN(4) {
		case 0:
			m.Content = text()
		case 1:
			for range 1 + rng.IntN(3) {
				if coin() {
					m.MultiContent = append(m.MultiContent, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeText, Text: text()})
				} else {
					m.MultiContent = append(m.MultiContent, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeImageURL,
						ImageURL: &openai.ChatMessageImageURL{URL: "https://x.test/" + fmt.Sprint(rng.IntN(9)) + ".png", Detail: []openai.ImageURLDetail{"", "low", "high", "auto"}[rng.IntN(4)]}})
				}
			}
		case 2: // no content
		default:
			m.Content = text()
			m.Name = []string{"", "alice", "bot_1"}[rng.IntN(3)]
		}
		switch m.Role {
		case "assistant":
			for i := range rng.IntN(3) {
				m.ToolCalls = append(m.ToolCalls, openai.ToolCall{ID: fmt.Sprintf("call_%d", i), Type: openai.ToolTypeFunction,
					Function: openai.FunctionCall{Name: "check_disk", Arguments: `{"host":"web-` + fmt.Sprint(i) + `"}`}})
			}
			if rng.IntN(5) == 0 {
				m.FunctionCall = &openai.FunctionCall{Name: "legacy", Arguments: "{}"}
			}
			if rng.IntN(4) == 0 {
				m.ReasoningContent = text()
			}
		case "tool":
			m.ToolCallID = fmt.Sprintf("call_%d", rng.IntN(3))
		}
		req.Messages = append(req.Messages, m)
	}
	if coin() {
		//lint:ignore SA1019 deprecated, and still what many callers set: go-openai sends it
		req.MaxTokens = rng.IntN(4000)
	}
	if coin() {
		req.MaxCompletionTokens = rng.IntN(4000)
	}
	if coin() {
		req.Temperature = float32(rng.IntN(20)) / 10
	}
	if coin() {
		req.TopP = float32(rng.IntN(10)) / 10
	}
	if rng.IntN(4) == 0 {
		req.N = 1 + rng.IntN(3)
	}
	if rng.IntN(4) == 0 {
		req.Stop = []string{"\n", "END"}[:1+rng.IntN(2)]
	}
	if rng.IntN(4) == 0 {
		req.PresencePenalty, req.FrequencyPenalty = 0.5, -0.5
	}
	if rng.IntN(4) == 0 {
		s := rng.IntN(1000)
		req.Seed = &s
	}
	if rng.IntN(5) == 0 {
		req.LogitBias = map[string]int{"1639": 6, "50256": -100}
	}
	if rng.IntN(5) == 0 {
		req.LogProbs, req.TopLogProbs = true, rng.IntN(5)
	}
	if rng.IntN(5) == 0 {
		req.User = "user-" + fmt.Sprint(rng.IntN(9))
	}
	params := json.RawMessage(`{"type":"object","properties":{"host":{"type":"string"}},"required":["host"]}`)
	if rng.IntN(5) == 0 {
		//lint:ignore SA1019 the legacy function calling, which go-openai still sends
		req.Functions = []openai.FunctionDefinition{{Name: "legacy", Parameters: params}}
		if coin() {
			//lint:ignore SA1019 the same
			req.FunctionCall = "auto"
		}
	}
	if coin() {
		for _, name := range []string{"check_disk", "rotate_logs"}[:1+rng.IntN(2)] {
			req.Tools = append(req.Tools, openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
				Name: name, Description: text(), Strict: coin(), Parameters: params}})
		}
		switch rng.IntN(4) {
		case 0:
			req.ToolChoice = []string{"auto", "none", "required"}[rng.IntN(3)]
		case 1:
			req.ToolChoice = openai.ToolChoice{Type: openai.ToolTypeFunction, Function: openai.ToolFunction{Name: "check_disk"}}
		}
		if coin() {
			req.ParallelToolCalls = coin()
		}
	}
	switch rng.IntN(4) {
	case 0:
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
	case 1:
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: "answer", Schema: params, Strict: coin()}}
	}
	if rng.IntN(5) == 0 {
		req.Store, req.Metadata = true, map[string]string{"team": "sre"}
	}
	if rng.IntN(5) == 0 {
		req.ReasoningEffort = []string{"low", "medium", "high"}[rng.IntN(3)]
	}
	if rng.IntN(6) == 0 {
		req.Prediction = &openai.Prediction{Type: "content", Content: text()}
	}
	if rng.IntN(6) == 0 {
		req.ChatTemplateKwargs = map[string]any{"enable_thinking": false}
	}
	if rng.IntN(6) == 0 {
		req.ServiceTier = []openai.ServiceTier{"auto", "default", "flex"}[rng.IntN(3)]
	}
	if rng.IntN(6) == 0 {
		req.Verbosity, req.SafetyIdentifier = "low", "h-123"
	}
	return req
}

// TestEveryGoOpenAIRequestPassesThrough: tokenwise is a drop-in under
// go-openai, so whatever request go-openai builds — every field drawn at
// random — goes through the transport (never refused as undecodable) and
// reaches the server byte for byte as go-openai sent it without tokenwise,
// when no layer changes it; plain and streamed.
func TestEveryGoOpenAIRequestPassesThrough(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 29))
	sent := 0
	for i := range 400 {
		req := randomGoOpenAIRequest(rng)
		req.Stream = i%2 == 1
		if req.Stream && rng.IntN(2) == 0 {
			req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
		}
		srv := openaitest.NewServer(t)
		srv.Default(openaitest.Text("ok"))
		raw := clientFor(srv, nil)
		tw := clientFor(srv, twopenai.NewHTTPClient(passChain(&middlewaretest.Tap{})))
		for _, c := range []*openai.Client{raw, tw} {
			var err error
			if req.Stream {
				var s *openai.ChatCompletionStream
				if s, err = c.CreateChatCompletionStream(context.Background(), req); err == nil {
					_, err = recvAll(t, s)
					if err.Error() == "EOF" {
						err = nil
					}
				}
			} else {
				_, err = c.CreateChatCompletion(context.Background(), req)
			}
			if err != nil && c == raw {
				break // a request go-openai itself refuses to send (its checks of o-series models)
			}
			if err != nil {
				body, _ := json.Marshal(req)
				t.Fatalf("request %d through %s: %v\n%s", i, map[bool]string{true: "go-openai alone", false: "tokenwise"}[c == raw], err, body)
			}
		}
		recs := srv.Requests()
		if len(recs) == 0 {
			continue
		}
		if len(recs) != 2 {
			t.Fatalf("request %d: the server saw %d requests", i, len(recs))
		}
		sent++
		if !req.Stream && !bytes.Equal(recs[0].Body, recs[1].Body) {
			t.Fatalf("request %d: the server got\n%s\nthrough tokenwise, want go-openai's\n%s", i, recs[1].Body, recs[0].Body)
		}
	}
	if sent < 300 {
		t.Fatalf("only %d of 400 requests were sent (go-openai refused the others): the property is barely checked", sent)
	}
	t.Logf("%d of 400 random requests sent", sent)
}

// TestEveryGoOpenAIRequestThroughTheDefaultPolicy: the same random
// requests through the embedded default policy's whole chain (budget,
// routing, cache, fallback, timeouts): none is refused as undecodable or
// fails, and what reaches the server is the request as go-openai sent it —
// the same messages and tools, every member it set kept — but for what the
// policy sets (the model a route picks, max_tokens injected).
func TestEveryGoOpenAIRequestThroughTheDefaultPolicy(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(31, 37))
	chain := llmwrap.MustBuild(policies.Default())
	sent := 0
	for i := range 300 {
		req := randomGoOpenAIRequest(rng)
		req.Model = []string{"gpt-4o-mini", "gpt-4o"}[rng.IntN(2)]
		req.Stream = i%2 == 1
		srv := openaitest.NewServer(t)
		srv.Default(openaitest.Text("ok"))
		raw := clientFor(srv, nil)
		if _, err := raw.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: req.Model, Messages: req.Messages}); err != nil {
			continue
		}
		var err error
		tw := clientFor(srv, twopenai.NewHTTPClient(chain))
		if req.Stream {
			var s *openai.ChatCompletionStream
			if s, err = tw.CreateChatCompletionStream(context.Background(), req); err == nil {
				if _, err = recvAll(t, s); err.Error() == "EOF" {
					err = nil
				}
			}
		} else {
			_, err = tw.CreateChatCompletion(context.Background(), req)
		}
		if errors.Is(err, middleware.ErrBudget) {
			continue // images at gpt-4o-mini's worst case are beyond the request budget: a refusal, as it should be
		}
		if err != nil {
			body, _ := json.Marshal(req)
			t.Fatalf("request %d through the default policy: %v\n%s", i, err, body)
		}
		recs := srv.Requests()
		if len(recs) < 2 {
			continue // a cache hit of an earlier identical request
		}
		sent++
		var want, got map[string]json.RawMessage
		mine, _ := json.Marshal(req)
		if json.Unmarshal(mine, &want) != nil || json.Unmarshal(recs[len(recs)-1].Body, &got) != nil {
			t.Fatalf("request %d: the server got no JSON object:\n%s", i, recs[len(recs)-1].Body)
		}
		for k, v := range want {
			switch k {
			case "model", "max_tokens", "max_completion_tokens", "stream", "stream_options":
				continue // the policy's to set
			}
			if !jsonEqual(v, got[k]) {
				t.Fatalf("request %d: member %q reached the server as %s, want %s", i, k, got[k], v)
			}
		}
	}
	if sent < 200 {
		t.Fatalf("only %d of 300 requests reached the server", sent)
	}
}

// jsonEqual reports whether two JSON values are equal as values.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
