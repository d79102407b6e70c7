package gateway_test

import (
	"context"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayStreamOfSomethingIsNoError: a chat stream whose only content is
// in a member other than the first choice's text — the second choice's
// text (n 2), a logprobs entry, an audio delta, a legacy function_call —
// with no finish reason or usage, then [DONE], carries an answer: the
// client reads it through without an error.
func TestGatewayStreamOfSomethingIsNoError(t *testing.T) {
	const head = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[`
	for name, chunk := range map[string]string{
		"second choice": `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null},{"index":1,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}`,
		"only choice 1": `{"index":1,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}`,
		"logprobs":      `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":{"content":[{"token":"","logprob":-0.1,"bytes":[],"top_logprobs":[]}]},"finish_reason":null}]}`,
		"audio":         `{"index":0,"delta":{"role":"assistant","audio":{"id":"audio_1","data":"AAAA","transcript":"hi"}},"finish_reason":null}]}`,
		"function_call": `{"index":0,"delta":{"role":"assistant","function_call":{"name":"f","arguments":"{}"}},"finish_reason":null}]}`,
		"refusal":       `{"index":0,"delta":{"role":"assistant","refusal":"no"},"finish_reason":null}]}`,
		"tool call":     `{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := start(t, nil, "")
			e.upstream.Default(openaitest.Reply{Raw: [][]byte{[]byte("data: " + head + chunk + "\n\n"), []byte("data: [DONE]\n\n")}})
			oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
			ss := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini", N: openai.Int(2),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			n := 0
			for ss.Next() {
				n++
			}
			if err := ss.Err(); err != nil {
				t.Errorf("openai-go: a stream of %s ended with %v after %d chunks, want its answer", name, err, n)
			}
			_ = ss.Close()
		})
	}
}
