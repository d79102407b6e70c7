package openai

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestCutStreamKeepsEveryChoice: a stream of n > 1 cut before its usage
// returns, beside the first choice's message, every other choice as far as
// it streamed (Response.OtherChoices), which the estimate of its output
// counts: choices one chunk each, several in one chunk (never a template
// for the chunks after it: their other choices would be lost), and a
// choice of an index out of range, kept apart. A stream with its usage
// has none: nothing is estimated.
func TestCutStreamKeepsEveryChoice(t *testing.T) {
	const head = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	body := head + `{"index":0,"delta":{"content":"a0"},"finish_reason":null},{"index":1,"delta":{"content":"b0"},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":0,"delta":{"content":"a1"},"finish_reason":null},{"index":1,"delta":{"content":"b1"},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":2,"delta":{"refusal":"no"},"finish_reason":"stop"}]}` + "\n\n" +
		head + `{"index":1,"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}` + "\n\n" +
		head + `{"index":9999,"delta":{"content":"odd"},"finish_reason":null}]}` + "\n\n"
	p := &Provider{cfg: newConfig(nil)}
	for _, keep := range []bool{false, true} {
		ctx := context.Background()
		if keep {
			ctx = middleware.WithKeepNative(ctx)
		}
		req := &middleware.Request{Model: "m", N: 3, Stream: func(context.Context, middleware.Chunk) error { return nil }}
		resp, err := p.readStream(ctx, req, bytes.NewReader([]byte(body)))
		if !errors.Is(err, middleware.ErrStreamCut) || resp == nil {
			t.Fatalf("keep %v: %v, %v", keep, resp, err)
		}
		if resp.Message.Content != "a0a1" {
			t.Errorf("keep %v: first choice %q", keep, resp.Message.Content)
		}
		want := []middleware.Choice{
			{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "b0b1", ToolCalls: []middleware.ToolCall{{ID: "t", Name: "f", Arguments: "{}"}}}},
			{Message: middleware.Message{Role: middleware.RoleAssistant}, Refusal: "no", FinishReason: "stop"},
			{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "odd"}},
		}
		if !reflect.DeepEqual(resp.OtherChoices, want) {
			t.Errorf("keep %v: other choices\n%+v\nwant\n%+v", keep, resp.OtherChoices, want)
		}
		if u := middleware.EstimateUsage(req, resp, err); u.OutputTokens != (19+2)/3 { // a0a1, b0b1, the call (3 + "f" + "{}"), "no", "odd": 19 bytes
			t.Errorf("keep %v: estimated output %d tokens", keep, u.OutputTokens)
		}
	}

	done := body + `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}` + "\n\ndata: [DONE]\n\n"
	req := &middleware.Request{Model: "m", N: 3, Stream: func(context.Context, middleware.Chunk) error { return nil }}
	resp, err := p.readStream(context.Background(), req, bytes.NewReader([]byte(done)))
	if err != nil || resp.OtherChoices != nil || resp.Usage.OutputTokens != 9 {
		t.Errorf("with its usage: %+v, %v", resp, err)
	}
}
