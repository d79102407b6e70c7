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
// backend, a stream is read whole, as go-openai reads it, when it begins
// with a byte order mark, when a data line is indented, when it is
// labelled application/json, and when it ends with [DONE] but its choice
// names no finish_reason (langchaingo alone drops the first two events,
// and the adapter took the last for a cut; it still does without
// NewTransport, which tells it the [DONE] was read).
func TestStreamShapesGoOpenAIReadsAreReadForLangchaingo(t *testing.T) {
	const hello = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`
	const world = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}`
	const worldNoFinish = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]}`
	for _, c := range []struct {
		name  string
		body  string
		ctype string
	}{
		{"byte order mark", "\xef\xbb\xbfdata: " + hello + "\n\ndata: " + world + "\n\ndata: [DONE]\n\n", ""},
		{"indented data lines", " data: " + hello + "\n\n\tdata: " + world + "\n\n data: [DONE]\n\n", ""},
		{"labelled JSON", "data: " + hello + "\n\ndata: " + world + "\n\ndata: [DONE]\n\n", "application/json"},
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

// TestStreamLabelledJSONIsCheckedForLangchaingo: a stream labelled
// application/json is checked as any stream: a data line that is not a
// chunk (which langchaingo skips) fails the call, through every backend.
func TestStreamLabelledJSONIsCheckedForLangchaingo(t *testing.T) {
	const hello = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`
	const world = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}`
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Raw: [][]byte{[]byte(hello + "\n\ndata: {\"choices\":[{\"delta\":{\"content\":\n\n" + world + "\n\ndata: [DONE]\n\n")},
				Header: http.Header{"Content-Type": {"application/json"}}})
			llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, middleware.Chain())
			resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, streaming())
			if !errors.Is(err, middleware.ErrMalformed) {
				t.Fatalf("%+v, %v: want ErrMalformed", resp, err)
			}
		})
	}
}
