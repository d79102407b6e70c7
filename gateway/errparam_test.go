package gateway_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayErrorsKeepTheProvidersParam: a provider's error object that
// came inside a 200 answer (OpenAI-compatible servers that answer so) or
// inside a stream reaches the client with every member the SDKs read into
// their typed error — status, type, code and the param it blamed — as its
// 4xx answer does: openai-go's *openai.Error and go-openai's
// *APIError have the param, and so has the stream's error event. Before,
// the gateway rewrote such an error without its param (null).
func TestGatewayErrorsKeepTheProvidersParam(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.On(openaitest.LastContains("in band")).Reply(openaitest.Reply{
		Body: []byte(`{"error":{"message":"Invalid 'temperature': too high","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`)})
	chunk := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n"
	e.upstream.On(openaitest.LastContains("in stream")).Reply(openaitest.Reply{Raw: [][]byte{[]byte(chunk),
		[]byte(`data: {"error":{"message":"Invalid 'tools[0]': unknown tool","type":"invalid_request_error","param":"tools[0]","code":"invalid_value"}}` + "\n\n")}})
	ctx := t.Context()

	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	_, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("an error in band")}})
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Type != "invalid_request_error" || oe.Code != "invalid_value" || oe.Param != "temperature" {
		t.Errorf("openai-go: %v, want a 400 invalid_request_error invalid_value of param temperature", err)
	}

	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = e.url + "/v1"
	gc := goopenai.NewClientWithConfig(cfg)
	_, err = gc.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "an error in band"}}})
	var ge *goopenai.APIError
	if !errors.As(err, &ge) || ge.HTTPStatusCode != 400 || ge.Type != "invalid_request_error" || ge.Code != "invalid_value" || ge.Param == nil || *ge.Param != "temperature" {
		t.Errorf("go-openai: %v (%+v), want a 400 invalid_request_error invalid_value of param temperature", err, ge)
	}

	// In a stream: the error event the client reads has the param.
	st, err := gc.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Stream: true,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "an error in stream"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for {
		_, err = st.Recv()
		if err != nil {
			break
		}
	}
	ge = nil
	if errors.Is(err, io.EOF) || !errors.As(err, &ge) || ge.Code != "invalid_value" || ge.Param == nil || *ge.Param != "tools[0]" ||
		!strings.Contains(ge.Message, "unknown tool") {
		t.Errorf("go-openai stream: %v (%+v), want the provider's error with param tools[0]", err, ge)
	}
}
