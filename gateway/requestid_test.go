package gateway_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayErrorsHaveARequestID: an error the gateway answers itself (a
// budget's refusal, of a chat and of a Responses call) carries an
// x-request-id — the call's id, which its log lines name — as OpenAI's
// errors do (the Node package reads it into its error's requestID); an
// answer of the upstream keeps the upstream's. Before, the gateway's errors had none.
func TestGatewayErrorsHaveARequestID(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.On(openaitest.LastContains("fine")).Reply(openaitest.Text("ok"))
	oc := openai.NewClient(option.WithAPIKey(paymentsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	var resp *http.Response
	if _, err := oc.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("fine")}}, option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if id := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_openaitest_") {
		t.Errorf("an upstream's answer: x-request-id %q, want the upstream's", id)
	}
	// payments' budget ($0.001) cannot hold a call of gpt-4o of 100,000
	// output tokens.
	for name, path := range map[string]string{"chat": "chat/completions", "responses": "responses"} {
		err := oc.Post(t.Context(), path, map[string]any{"model": "gpt-4o", "max_tokens": 100000, "max_output_tokens": 100000, "input": "hi",
			"messages": []map[string]string{{"role": "user", "content": "hi"}}}, nil)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s: %v, want the budget's 429", name, err)
		}
		id := ae.Response.Header.Get("X-Request-Id")
		if !strings.HasPrefix(id, "call-") || id != ae.Response.Header.Get(gateway.CallIDHeader) {
			t.Errorf("%s: the gateway's 429 has x-request-id %q, want its call id %q", name, id, ae.Response.Header.Get(gateway.CallIDHeader))
		}
	}
}
