package langchaingo_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestStreamShapesGoOpenAIReadsAreReadForLangchaingo: through every
// backend, a stream is read whole, as go-openai reads it, when it ends
// with [DONE] but its choice names no finish_reason (the adapter took it
// for a cut; it still does without NewTransport, which tells it the
// [DONE] was read).
func TestStreamShapesGoOpenAIReadsAreReadForLangchaingo(t *testing.T) {
	const hello = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`
	const world = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}`
	const worldNoFinish = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]}`
	for _, c := range []struct {
		name  string
		body  string
		ctype string
	}{
		{"done without finish reason", "data: " + hello + "\n\ndata: " + worldNoFinish + "\n\ndata: [DONE]\n\n", ""},
	} {
		for _, be := range backends {
			t.Run(c.name+"/"+be.name, func(t *testing.T) {
				srv := openaitest.NewServer(t)
				reply := openaitest.Reply{Raw: [][]byte{[]byte(c.body)}}
				if c.ctype != "" {
					reply.Header = http.Header{"Content-Type": {c.ctype}}
				}
				srv.On().Reply(reply)
				llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, middleware.Chain())
				resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, streaming())
				if c.name == "done without finish reason" && be.name == "openai Transport" {
					// Without NewTransport the adapter cannot tell the
					// [DONE] was read: no finish reason is a cut.
					if !errors.Is(err, middleware.ErrStreamCut) {
						t.Fatalf("%+v, %v: want ErrStreamCut", resp, err)
					}
					return
				}
				if err != nil || len(resp.Choices) == 0 || resp.Choices[0].Content != "Hello world" {
					t.Fatalf("%+v, %v: want the whole answer", resp, err)
				}
			})
		}
	}
}
