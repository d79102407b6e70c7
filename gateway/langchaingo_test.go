package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// langchaingo's openai backend through the gateway, streaming and not.
func TestGatewayWithLangchaingo(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.Default(openaitest.Text("Restart the pod."))
	llm, err := lcopenai.New(lcopenai.WithBaseURL(e.url+"/v1"), lcopenai.WithToken(devopsKey), lcopenai.WithModel("gpt-4o-mini"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "web-1 is crash-looping")}
	resp, err := llm.GenerateContent(t.Context(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Content; got != "Restart the pod." {
		t.Fatalf("answer %q", got)
	}
	var streamed strings.Builder
	resp, err = llm.GenerateContent(t.Context(), msgs, llms.WithStreamingFunc(func(_ context.Context, b []byte) error {
		streamed.Write(b)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != "Restart the pod." || resp.Choices[0].Content != "Restart the pod." {
		t.Fatalf("streamed %q, answer %q", streamed.String(), resp.Choices[0].Content)
	}
	// A refused key is langchaingo's error, not an answer.
	bad, err := lcopenai.New(lcopenai.WithBaseURL(e.url+"/v1"), lcopenai.WithToken("sk-wrong-key-000000000000000000"), lcopenai.WithModel("gpt-4o-mini"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GenerateContent(t.Context(), msgs); err == nil {
		t.Fatal("an unknown key got an answer")
	}
}
