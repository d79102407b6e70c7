package gateway_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayStreamOfNothingIsAnError: an upstream chat stream whose
// chunks carry nothing — events of no choices, empty deltas, or both —
// then [DONE] is no answer, as a body without choices is none: go-openai
// and openai-go read the gateway's error event, never the end of a
// complete answer, and the team is charged the input the provider bills.
// (Before, the stream ended with [DONE]: both SDKs took an answer of no
// text and no finish reason for a success.)
func TestGatewayStreamOfNothingIsAnError(t *testing.T) {
	const (
		empty   = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[]}`
		nothing = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":null}]}`
		role    = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
	)
	for name, chunks := range map[string][]string{"no choices": {empty, empty}, "empty deltas": {role, nothing, nothing}, "both": {empty, role, nothing, empty}} {
		t.Run(name, func(t *testing.T) {
			e := start(t, nil, "")
			raw := [][]byte{}
			for _, c := range chunks {
				raw = append(raw, []byte("data: "+c+"\n\n"))
			}
			e.upstream.Default(openaitest.Reply{Raw: append(raw, []byte("data: [DONE]\n\n"))})

			cfg := goopenai.DefaultConfig(devopsKey)
			cfg.BaseURL = e.url + "/v1"
			st, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletionStream(t.Context(), goopenai.ChatCompletionRequest{
				Model: "gpt-4o-mini", Stream: true, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
			if err == nil {
				for {
					_, err = st.Recv()
					if err != nil {
						break
					}
				}
				st.Close()
			}
			if err == nil || errors.Is(err, io.EOF) {
				t.Errorf("go-openai: a stream of nothing ended with %v, want an error", err)
			}

			oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
			ss := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			for ss.Next() {
			}
			if ss.Err() == nil {
				t.Errorf("openai-go: a stream of nothing ended without an error")
			}
			_ = ss.Close()

			if s := e.spend(t); s.SpentTokens == 0 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
				t.Errorf("spend %+v: want the two calls' input charged, nothing held", s)
			}
		})
	}
}
