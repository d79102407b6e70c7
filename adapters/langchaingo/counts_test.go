package langchaingo_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// postThrough posts a chat completion request to srv through
// twlc.NewTransport and returns the body the backend would read.
func postThrough(t *testing.T, srv *openaitest.Server, stream bool) []byte {
	t.Helper()
	req := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
	c := &http.Client{Transport: twlc.NewTransport(nil)}
	resp, err := c.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTransportRewritesOnlyCountsTheBackendCannotHold: an answer the
// backend decodes passes NewTransport byte for byte (no re-encoding: its
// spacing, key order, escapes and float members stay); one with a usage
// count of 12.0 or a created time as a string has those, and only those,
// put in the types the backend holds: a cost or a timing that is a float
// stays the float it was.
func TestTransportRewritesOnlyCountsTheBackendCannotHold(t *testing.T) {
	const fine = `{"id":"u", "object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"<&> \u00e9"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"cost":0.5,"prompt_tokens_details":{"cached_tokens":0}}}`
	const fineChunk = "data: {\"id\":\"u\",  \"created\":1.7e9,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"<&>\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15,\"cost\":0.5}}\n\ndata: [DONE]\n\n"
	for name, tc := range map[string]struct {
		stream bool
		body   string
	}{"plain": {false, fine}, "stream": {true, fineChunk}} {
		t.Run("unchanged/"+name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Raw: [][]byte{[]byte(tc.body)}})
			if got := postThrough(t, srv, tc.stream); !bytes.Equal(got, []byte(tc.body)) {
				t.Errorf("read\n%s\nwant it unchanged\n%s", got, tc.body)
			}
		})
	}

	const floats = `{"id":"u","object":"chat.completion","created":"1700000000","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12.0,"completion_tokens":2.5,"total_tokens":1.45e1,"cost":0.5,"queue_time":0.02,"completion_tokens_details":{"reasoning_tokens":1.0,"other":0.25}}}`
	for name, tc := range map[string]struct {
		stream bool
		body   string
	}{
		"plain":  {false, floats},
		"stream": {true, "data: " + strings.Replace(floats, `"message"`, `"delta"`, 1) + "\n\ndata: [DONE]\n\n"},
	} {
		t.Run("rewritten/"+name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Raw: [][]byte{[]byte(tc.body)}})
			got := postThrough(t, srv, tc.stream)
			if tc.stream {
				first, _, _ := bytes.Cut(got, []byte("\n"))
				got = bytes.TrimPrefix(first, []byte("data: "))
			}
			var a struct {
				Created json.RawMessage
				Usage   map[string]json.RawMessage
			}
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("%v: %s", err, got)
			}
			want := map[string]string{"prompt_tokens": "12", "completion_tokens": "3", "total_tokens": "15", "cost": "0.5", "queue_time": "0.02",
				"completion_tokens_details": `{"other":0.25,"reasoning_tokens":1}`}
			for k, v := range want {
				if string(a.Usage[k]) != v {
					t.Errorf("usage %s: %s, want %s (read %s)", k, a.Usage[k], v, got)
				}
			}
			if string(a.Created) != "1700000000" {
				t.Errorf("created %s, want 1700000000", a.Created)
			}
		})
	}
}

// TestGroqUsageOfFloatsIsBilled: Groq's usage in x_groq with counts
// written as floats is given to the backend as integers, and billed.
func TestGroqUsageOfFloatsIsBilled(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(rawStream(wireHi,
		`data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"r","usage":{"queue_time":0.02,"prompt_tokens":40.0,"completion_tokens":3.0,"total_tokens":43.0}}}`,
		wireDone))
	llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, nil)
	resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming())
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := twlc.UsageFromGenerationInfo(resp.Choices[0].GenerationInfo); !ok || u.InputTokens != 40 || u.OutputTokens != 3 {
		t.Fatalf("usage %+v (%v), want 40 + 3", u, ok)
	}
}
