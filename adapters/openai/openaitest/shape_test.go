package openaitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestShapedStreamsAreValidEventStreams: every shape is a well-formed
// event stream of JSON chunks ending with "data: [DONE]", and differs from
// seed to seed.
func TestShapedStreamsAreValidEventStreams(t *testing.T) {
	srv := openaitest.NewServer(t)
	seen := map[string]bool{}
	for seed := range uint64(50) {
		srv.Reset()
		srv.On().Reply(openaitest.Reply{Content: "Disk at 42%.", Reasoning: "check", Refusal: "no",
			ToolCalls:    []openaitest.ToolCall{openaitest.Call("a", "f", `{"x":1}`), openaitest.Call("b", "g", `{}`)},
			Alternatives: []openaitest.Reply{{Content: "other"}}, Shape: &openaitest.Shape{Seed: seed}})
		_, body, err := post(t, srv.URL+"/chat/completions", `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`)
		if err != nil {
			t.Fatal(err)
		}
		seen[body] = true
		lines := strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n")
		var last string
		for _, l := range lines {
			data, ok := strings.CutPrefix(l, "data:")
			if !ok {
				if l != "" && !strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "event:") && !strings.HasPrefix(l, "id:") {
					t.Fatalf("seed %d: line %q", seed, l)
				}
				continue
			}
			last = strings.TrimSpace(data)
			if last != "[DONE]" && !json.Valid([]byte(last)) {
				t.Fatalf("seed %d: data %q", seed, last)
			}
		}
		if last != "[DONE]" {
			t.Fatalf("seed %d: the stream ends with %q", seed, last)
		}
	}
	if len(seen) < 45 {
		t.Errorf("%d distinct streams of 50 seeds", len(seen))
	}
}

// TestRawBodyIsWrittenAsIs: a Raw reply's pieces are the body, byte for
// byte, streaming or not.
func TestRawBodyIsWrittenAsIs(t *testing.T) {
	srv := openaitest.NewServer(t)
	raw := [][]byte{[]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hel"), []byte("lo\"}}]}\r\n\r\n"), []byte(": done\n")}
	srv.On().Reply(openaitest.Reply{Raw: raw})
	for _, stream := range []string{"true", "false"} {
		_, body, err := post(t, srv.URL+"/chat/completions", `{"model":"m","messages":[],"stream":`+stream+`}`)
		if err != nil {
			t.Fatal(err)
		}
		if body != string(bytes.Join(raw, nil)) {
			t.Errorf("stream %s: body %q", stream, body)
		}
	}
}

// TestRefusalAndAlternativesAreAnswered: a refusal is message.refusal and
// alternatives are the choices after the first.
func TestRefusalAndAlternativesAreAnswered(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Refusal: "I can't help with that.", Alternatives: []openaitest.Reply{{Content: "Sure."}}})
	resp, err := newClient(t, srv).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: "m", N: 2,
		Messages: []openai.ChatCompletionMessage{user("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 2 || resp.Choices[0].Message.Refusal != "I can't help with that." || resp.Choices[1].Message.Content != "Sure." || resp.Choices[1].Index != 1 {
		t.Fatalf("%+v", resp.Choices)
	}
}
