package openai_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/tokens"
)

// legacyHistory is a go-openai conversation whose history holds an
// assistant message with a legacy function_call (its result follows) and
// one with a refusal, each of about 2,000 tokens.
func legacyHistory() []openai.ChatCompletionMessage {
	long := strings.Repeat("word ", 2000)
	return []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleUser, Content: "hi"},
		{Role: openai.ChatMessageRoleAssistant, FunctionCall: &openai.FunctionCall{Name: "lookup", Arguments: `{"q":"` + long + `"}`}},
		{Role: openai.ChatMessageRoleFunction, Name: "lookup", Content: "x"},
		{Role: openai.ChatMessageRoleAssistant, Refusal: long},
		{Role: openai.ChatMessageRoleUser, Content: "go on"},
	}
}

// TestLegacyFunctionCallAndRefusalAreCountedAndKept: the go-openai
// transport decodes an assistant message's function_call and refusal, so
// that the estimate counts them (as a tool call and as text are counted),
// and sends them on unchanged, also when a layer changed the messages.
func TestLegacyFunctionCallAndRefusalAreCountedAndKept(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	var rec middlewaretest.Tap
	// dropFirst removes the first message: the others are encoded anew
	// or copied from the body.
	dropFirst := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if strings.Contains(req.Model, "drop") {
				r := req.Clone()
				r.Messages = r.Messages[1:]
				r.Model = "gpt-4o-mini"
				return next.Handle(ctx, r)
			}
			return next.Handle(ctx, req)
		})
	}
	client := clientFor(srv, twopenai.NewHTTPClient(middleware.Chain(rec.Middleware, dropFirst)))
	est := tokens.New()
	var plain int64 // the estimate of the history without function_call and refusal
	for i, model := range []string{"gpt-4o-mini", "gpt-4o-mini-drop"} {
		msgs := legacyHistory()
		if _, err := client.CreateChatCompletion(t.Context(), openai.ChatCompletionRequest{Model: model, Messages: msgs}); err != nil {
			t.Fatal(err)
		}
		req, _, _ := rec.Last(t)
		fc := req.Messages[1].FunctionCall
		if fc == nil || fc.Name != "lookup" || fc.Arguments != msgs[1].FunctionCall.Arguments || req.Messages[3].Refusal != msgs[3].Refusal {
			t.Fatalf("decoded %+v and %q, want the function_call and the refusal", fc, req.Messages[3].Refusal)
		}
		if i == 0 {
			bare := req.DeepClone()
			bare.Messages[1].FunctionCall, bare.Messages[3].Refusal = nil, ""
			plain = est.Request("gpt-4o-mini", bare)
			want := plain + 3 + est.Text("gpt-4o-mini", "lookup") + est.Text("gpt-4o-mini", fc.Arguments) + est.Text("gpt-4o-mini", msgs[3].Refusal)
			if n := est.Request("gpt-4o-mini", req); n != want {
				t.Errorf("estimate %d, want %d (%d without the function call and the refusal)", n, want, plain)
			}
		}
		var sent struct {
			Messages []map[string]json.RawMessage `json:"messages"`
		}
		body := srv.Requests()[i].Body
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatal(err)
		}
		off := 0
		if i == 1 {
			off = 1 // the first message dropped
		}
		if len(sent.Messages) != len(msgs)-off {
			t.Fatalf("%s: %d messages sent", model, len(sent.Messages))
		}
		var call openai.FunctionCall
		if err := json.Unmarshal(sent.Messages[1-off]["function_call"], &call); err != nil || call != *msgs[1].FunctionCall {
			t.Errorf("%s: function_call sent as %.80s (%v)", model, sent.Messages[1-off]["function_call"], err)
		}
		var refusal string
		if err := json.Unmarshal(sent.Messages[3-off]["refusal"], &refusal); err != nil || refusal != msgs[3].Refusal {
			t.Errorf("%s: refusal sent as %.80s (%v)", model, sent.Messages[3-off]["refusal"], err)
		}
	}
	if plain <= 0 {
		t.Fatal("no estimate")
	}
}
