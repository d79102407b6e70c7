package openai

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// readStreamText reads body with the provider's stream reader and returns
// the answer's content.
func readStreamText(t *testing.T, body string) (string, error) {
	t.Helper()
	p := &Provider{cfg: newConfig(nil)}
	req := &middleware.Request{Model: "m", Stream: func(context.Context, middleware.Chunk) error { return nil }}
	resp, err := p.readStream(context.Background(), req, strings.NewReader(body))
	if resp == nil {
		return "", err
	}
	return resp.Message.Content, err
}

const (
	chunkA = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`
	chunkB = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}`
)

// TestStreamReadsItsLinesAsGoOpenAIDoes: a byte order mark before the
// first line is not part of it, and a data line indented by white space
// (ASCII or Unicode, which go-openai trims) is a data line: neither event
// is dropped.
func TestStreamReadsItsLinesAsGoOpenAIDoes(t *testing.T) {
	for _, body := range []string{
		"\xef\xbb\xbfdata: " + chunkA + "\n\ndata: " + chunkB + "\n\ndata: [DONE]\n\n",
		"\xef\xbb\xbf: comment\n\ndata: " + chunkA + "\r\n\r\ndata: " + chunkB + "\r\n\r\ndata: [DONE]\r\n\r\n",
		" data: " + chunkA + "\n\n\tdata:" + chunkB + "\n\n  data: [DONE]\n\n",
		"\u00a0data: " + chunkA + "\n\n\u2003\u3000data: " + chunkB + "\n\n\vdata: [DONE]\n\n",
		"\xef\xbb\xbf data: " + chunkA + "\n\ndata: " + chunkB + "\n\ndata: [DONE]\n\n",
	} {
		if got, err := readStreamText(t, body); err != nil || got != "ab" {
			t.Errorf("%q: %q, %v; want %q", body, got, err, "ab")
		}
	}
	// A byte order mark is stripped once, before the first line only, and
	// a line that is not a data line once trimmed is none.
	for _, body := range []string{
		"data: " + chunkA + "\n\n\xef\xbb\xbfdata: " + chunkB + "\n\ndata: [DONE]\n\n",
		"data: " + chunkA + "\n\n x data: " + chunkB + "\n\ndata: [DONE]\n\n",
	} {
		if got, err := readStreamText(t, body); err != nil || got != "a" {
			t.Errorf("%q: %q, %v; want %q", body, got, err, "a")
		}
	}
}

// TestStreamLabelledJSONIsReadAsAStream: a streaming request answered with
// an event stream labelled application/json is read as a stream; one
// answered with a chat completion in one piece (JSON indeed) as that.
func TestStreamLabelledJSONIsReadAsAStream(t *testing.T) {
	for body, want := range map[string]string{
		"data: " + chunkA + "\n\ndata: " + chunkB + "\n\ndata: [DONE]\n\n":                                                                                              "ab",
		"\n: hi\n\ndata: " + chunkA + "\n\ndata: " + chunkB + "\n\ndata: [DONE]\n\n":                                                                                    "ab",
		`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}]}`: "whole",
	} {
		for _, ctype := range []string{"application/json", "application/json; charset=utf-8"} {
			p := NewProvider("http://upstream.invalid/v1", "k", WithBaseTransport(cannedTransport{ctype, []byte(body)}))
			var streamed strings.Builder
			resp, err := p.Handle(context.Background(), &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}},
				Stream: func(_ context.Context, c middleware.Chunk) error { streamed.WriteString(c.Content); return nil }})
			if err != nil || resp.Message.Content != want || streamed.String() != want {
				t.Errorf("%s %q: %v, streamed %q, err %v; want %q", ctype, body, resp, streamed.String(), err, want)
			}
		}
	}
	// Not a stream, nor JSON: malformed.
	p := NewProvider("http://upstream.invalid/v1", "k", WithBaseTransport(cannedTransport{"application/json", []byte("hello")}))
	_, err := p.Handle(context.Background(), &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}},
		Stream: func(context.Context, middleware.Chunk) error { return nil }})
	if !errors.Is(err, middleware.ErrMalformed) {
		t.Errorf("a body neither stream nor JSON: %v, want ErrMalformed", err)
	}
}
