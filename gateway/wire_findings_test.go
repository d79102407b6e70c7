package gateway_test

// Shapes the wire differential (TestGoOpenAIReadsTheSameThroughTheGatewaySweep)
// found, through the gateway; e2e's wire_findings_test.go says more of each.

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/internal/wiregen"
)

func gatewayStreamRequest(n int) goopenai.ChatCompletionRequest {
	return goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Stream: true, N: n,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}
}

const (
	chunkHi    = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`
	chunkThere = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}`
)

// TestGatewayStreamAfterAByteOrderMarkKeepsItsFirstChunk: a stream that
// begins with a byte order mark is read whole, first call and hit.
func TestGatewayStreamAfterAByteOrderMarkKeepsItsFirstChunk(t *testing.T) {
	srv, _, tw := wireGateway(t)
	srv.Set(wiregen.Wire{Stream: true, ContentType: "text/event-stream", Body: []byte("\xef\xbb\xbfdata: " + chunkHi + "\n\ndata: " + chunkThere + "\n\ndata: [DONE]\n\n")})
	for i := range 2 {
		got := wiregen.Call(context.Background(), tw, gatewayStreamRequest(0))
		if got.Err != nil || got.Answer.Choices[0].Content != "hi there" {
			t.Errorf("call %d (upstream calls %d): %v %v, want %q", i+1, srv.Served(), got.Answer, got.Err, "hi there")
		}
	}
}

// TestGatewayStreamedHitOfSeveralChoicesKeepsThemDespiteBytesNotUTF8: the
// hit of a stream of two choices, choice 0 holding a byte that is not
// UTF-8, has both choices.
func TestGatewayStreamedHitOfSeveralChoicesKeepsThemDespiteBytesNotUTF8(t *testing.T) {
	srv, _, tw := wireGateway(t)
	srv.Set(wiregen.Wire{Stream: true, ContentType: "text/event-stream", Body: []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a` + "\x80" + `b"},"finish_reason":"stop"},{"index":1,"delta":{"content":"second"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")})
	first := wiregen.Call(context.Background(), tw, gatewayStreamRequest(2))
	before := srv.Served()
	second := wiregen.Call(context.Background(), tw, gatewayStreamRequest(2))
	if first.Err != nil || second.Err != nil {
		t.Fatal(first.Err, second.Err)
	}
	if len(first.Answer.Choices) != 2 || len(second.Answer.Choices) != 2 || first.Answer.String() != second.Answer.String() {
		t.Errorf("first call %d choices, second (a hit: %t) %d choices\nfirst:\n%v\nsecond:\n%v",
			len(first.Answer.Choices), srv.Served() == before, len(second.Answer.Choices), first.Answer, second.Answer)
	}
}

// TestGatewayEventStreamLabelledJSONIsRead: a stream labelled
// application/json, which go-openai reads as a stream, is read so.
func TestGatewayEventStreamLabelledJSONIsRead(t *testing.T) {
	srv, url, tw := wireGateway(t)
	srv.Set(wiregen.Wire{Stream: true, ContentType: "application/json", Body: []byte("data: " + chunkHi + "\n\ndata: " + chunkThere + "\n\ndata: [DONE]\n\n")})
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = url
	if r := wiregen.Call(context.Background(), goopenai.NewClientWithConfig(cfg), gatewayStreamRequest(0)); r.Err != nil || r.Answer.Choices[0].Content != "hi there" {
		t.Fatalf("go-openai alone: %v %v", r.Answer, r.Err)
	}
	if got := wiregen.Call(context.Background(), tw, gatewayStreamRequest(0)); got.Err != nil || got.Answer.Choices[0].Content != "hi there" {
		t.Errorf("through the gateway: %v %v", got.Answer, got.Err)
	}
}

// TestGatewayStreamWithCreatedAsAStringIsRead: a stream whose chunks carry
// "created" as a string, which openai-go reads (go-openai fails on it, its
// own decoding): openai-go through the gateway reads the answer too, first
// call and hit (the gateway once failed the call with a 502, the chunk
// taken for malformed).
func TestGatewayStreamWithCreatedAsAStringIsRead(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	srv := &wiregen.Server{}
	srv.Set(wiregen.Wire{Stream: true, ContentType: "text/event-stream", Body: []byte(
		`data: {"id":"c","object":"chat.completion.chunk","created":"1700000000","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"c","object":"chat.completion.chunk","created":"1700000000","model":"m","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	gw := defaultPolicyGateway(t, ts.URL+"/v1")
	read := func(base, key string) (string, error) {
		oc := openai.NewClient(option.WithAPIKey(key), option.WithBaseURL(base+"/"), option.WithMaxRetries(0))
		ss := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		defer ss.Close()
		var acc openai.ChatCompletionAccumulator
		for ss.Next() {
			acc.AddChunk(ss.Current())
		}
		if err := ss.Err(); err != nil || len(acc.Choices) == 0 {
			return "", err
		}
		return acc.Choices[0].Message.Content, nil
	}
	if got, err := read(ts.URL+"/v1", "k"); err != nil || got != "hi there" {
		t.Fatalf("openai-go alone: %q %v", got, err)
	}
	for i := range 2 {
		before := srv.Served()
		if got, err := read(gw, devopsKey); err != nil || got != "hi there" || i == 1 && srv.Served() != before {
			t.Errorf("call %d (a hit: %t): openai-go through the gateway: %q %v", i+1, srv.Served() == before, got, err)
		}
	}
}
