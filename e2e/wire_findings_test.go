package e2e

// Answers of shapes found by the wire differential
// (FuzzGoOpenAIReadsTheSameThroughTheTransport and the sweeps), each
// stating what go-openai or langchaingo reads of it from the server
// directly, and what they read through tokenwise (the go-openai transport
// or the langchaingo adapter, under the embedded default policy).

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// wireClients serves body (as contentType) and returns go-openai alone and
// go-openai through the transport with the default policy.
func wireClients(t *testing.T, contentType, body string) (raw, tw *goopenai.Client, srv *wiregen.Server) {
	t.Helper()
	srv = &wiregen.Server{}
	srv.Set(wiregen.Wire{Stream: true, ContentType: contentType, Body: []byte(body)})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = ts.URL
	cfg.HTTPClient = &http.Client{Transport: base}
	raw = goopenai.NewClientWithConfig(cfg)
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(policies.Default()), twopenai.WithBaseTransport(base))
	tw = goopenai.NewClientWithConfig(cfg)
	return raw, tw, srv
}

func wireStreamRequest(n int, usage bool) goopenai.ChatCompletionRequest {
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Stream: true, N: n,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}
	if usage {
		req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
	}
	return req
}

const (
	chunkHi    = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`
	chunkThere = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}`
)

// A stream that starts with a UTF-8 byte order mark (.NET's StreamWriter
// with Encoding.UTF8 writes one), which the SSE spec strips: its first
// event is read, and so is the hit (it once was dropped silently, and the
// truncated answer cached).
func TestStreamAfterAByteOrderMarkKeepsItsFirstChunk(t *testing.T) {
	_, tw, srv := wireClients(t, "text/event-stream", "\xef\xbb\xbfdata: "+chunkHi+"\n\ndata: "+chunkThere+"\n\ndata: [DONE]\n\n")
	for i := range 2 {
		got := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false))
		if got.Err != nil || got.Answer.Choices[0].Content != "hi there" {
			t.Errorf("call %d (upstream calls %d): %v %v, want %q", i+1, srv.Served(), got.Answer, got.Err, "hi there")
		}
	}
}

// n = 2, streamed, choice 0 carrying a byte that is not UTF-8 (which
// go-openai reads as U+FFFD): the cache hit has both choices, as the first
// call had (the stored body once differed from the core answer, raw byte
// against U+FFFD, and the hit was replayed from the core answer: choice 0
// alone).
func TestStreamedHitOfSeveralChoicesKeepsThemDespiteBytesNotUTF8(t *testing.T) {
	body := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a` + "\x80" + `b"},"finish_reason":"stop"},{"index":1,"delta":{"content":"second"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	raw, tw, srv := wireClients(t, "text/event-stream", body)
	r := wiregen.Call(context.Background(), raw, wireStreamRequest(2, false))
	if r.Err != nil || len(r.Answer.Choices) != 2 {
		t.Fatalf("go-openai alone: %v %v", r.Answer, r.Err)
	}
	first := wiregen.Call(context.Background(), tw, wireStreamRequest(2, false))
	before := srv.Served()
	second := wiregen.Call(context.Background(), tw, wireStreamRequest(2, false))
	if first.Err != nil || second.Err != nil {
		t.Fatal(first.Err, second.Err)
	}
	if len(first.Answer.Choices) != 2 || len(second.Answer.Choices) != 2 {
		t.Errorf("first call %d choices, second (a hit: %t) %d choices\nfirst:\n%v\nsecond:\n%v",
			len(first.Answer.Choices), srv.Served() == before, len(second.Answer.Choices), first.Answer, second.Answer)
	}
}

// With include_usage and a server that reports no usage, the hit has no
// usage chunk either (the hit replayed from the core answer once had one
// of zeros).
func TestStreamedHitAddsNoUsageTheAnswerLacked(t *testing.T) {
	body := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a` + "\x80" + `b"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	_, tw, _ := wireClients(t, "text/event-stream", body)
	first := wiregen.Call(context.Background(), tw, wireStreamRequest(0, true))
	second := wiregen.Call(context.Background(), tw, wireStreamRequest(0, true))
	if first.Err != nil || second.Err != nil {
		t.Fatal(first.Err, second.Err)
	}
	if (first.Answer.Usage == nil) != (second.Answer.Usage == nil) {
		t.Errorf("usage: first call %+v, second (hit) %+v", first.Answer.Usage, second.Answer.Usage)
	}
}

// A rune split across two chunks as raw bytes (a server streaming the
// bytes of tokens): go-openai reads "caf\uFFFD\uFFFD", each chunk decoded
// on its own, and so do the first call through tokenwise and its cache hit
// (the stored answer once joined the bytes: the hit answered "café").
func TestStreamedHitReadsARuneSplitAcrossChunksAsTheFirstCall(t *testing.T) {
	body := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"caf` + "\xc3" + `"},"finish_reason":null}]}` + "\n\n" +
		`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` + "\xa9" + `"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	raw, tw, _ := wireClients(t, "text/event-stream", body)
	r := wiregen.Call(context.Background(), raw, wireStreamRequest(0, false))
	first := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false))
	second := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false))
	if r.Err != nil || first.Err != nil || second.Err != nil {
		t.Fatal(r.Err, first.Err, second.Err)
	}
	a, b, c := r.Answer.Choices[0].Content, first.Answer.Choices[0].Content, second.Answer.Choices[0].Content
	if a != b || b != c {
		t.Errorf("go-openai alone %q, first call %q, second call (hit) %q", a, b, c)
	}
}

// A stream served as Content-Type application/json (a mislabelling proxy
// or server), which go-openai reads as a stream: tokenwise reads it too
// (it once decoded it as one JSON answer and failed with ErrMalformed).
func TestEventStreamLabelledJSONIsRead(t *testing.T) {
	body := "data: " + chunkHi + "\n\ndata: " + chunkThere + "\n\ndata: [DONE]\n\n"
	raw, tw, _ := wireClients(t, "application/json", body)
	r := wiregen.Call(context.Background(), raw, wireStreamRequest(0, false))
	if r.Err != nil || r.Answer.Choices[0].Content != "hi there" {
		t.Fatalf("go-openai alone: %v %v", r.Answer, r.Err)
	}
	for i := range 2 {
		got := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false))
		if got.Err != nil || got.Answer.Choices[0].Content != "hi there" {
			t.Errorf("call %d: go-openai alone reads %q; through tokenwise %v %v", i+1, r.Answer.Choices[0].Content, got.Answer, got.Err)
		}
	}
}

// A data line indented by a space, which go-openai trims and reads:
// tokenwise reads it too (it once skipped it, as an SSE field named
// " data", and answered a different text as a success, cached).
func TestIndentedDataLineIsRead(t *testing.T) {
	body := " data: " + chunkHi + "\n\n\u00a0data: " + chunkThere + "\n\ndata: [DONE]\n\n"
	raw, tw, _ := wireClients(t, "text/event-stream", body)
	r := wiregen.Call(context.Background(), raw, wireStreamRequest(0, false))
	if r.Err != nil || r.Answer.Choices[0].Content != "hi there" {
		t.Fatalf("go-openai alone: %v %v", r.Answer, r.Err)
	}
	for i := range 2 {
		got := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false))
		if got.Err != nil || got.Answer.Choices[0].Content != "hi there" {
			t.Errorf("call %d: go-openai alone reads %q; through tokenwise %v %v", i+1, r.Answer.Choices[0].Content, got.Answer, got.Err)
		}
	}
}

// A chunk that begins with an "error" member holding no error ("error":
// null, as some servers send beside the choices): go-openai takes any
// chunk that begins so for an error, and fails; tokenwise reads it as no
// error, and cuts the member from the chunks it forwards, so that
// go-openai through tokenwise reads the whole answer.
func TestChunkBeginningWithANullErrorIsReadWhole(t *testing.T) {
	body := `data: {"error":null,"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n" +
		`data: {"error":null,"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}` + "\n\n" +
		`data: {"error":null,"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}` + "\n\ndata: [DONE]\n\n"
	raw, tw, _ := wireClients(t, "text/event-stream", body)
	if r := wiregen.Call(context.Background(), raw, wireStreamRequest(0, false)); r.Err == nil && r.Answer.Choices[0].Content == "hi there" {
		t.Logf("go-openai alone reads the stream whole now (%v): the cut is no longer needed", r.Answer)
	}
	for _, usage := range []bool{false, true} {
		s, err := tw.CreateChatCompletionStream(context.Background(), wireStreamRequest(0, usage))
		if err != nil {
			t.Fatal(err)
		}
		var text string
		var u *goopenai.Usage
		for {
			c, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("usage %t: through tokenwise, read %q, then %v", usage, text, err)
			}
			if len(c.Choices) > 0 {
				text += c.Choices[0].Delta.Content
			}
			if c.Usage != nil {
				u = c.Usage
			}
		}
		s.Close()
		if text != "hi there" || usage != (u != nil) || u != nil && u.TotalTokens != 5 {
			t.Errorf("usage %t: through tokenwise %q, usage %+v", usage, text, u)
		}
	}
}

// A stream that ends with [DONE] but whose choice never named a
// finish_reason: the go-openai transport, the gateway and the langchaingo
// adapter with twlc.NewTransport, which saw the [DONE], answer it (the
// adapter once reported ErrStreamCut: an error for a whole answer).
func TestLangchaingoStreamWithDoneButNoFinishReasonIsComplete(t *testing.T) {
	body := "data: " + chunkHi + "\n\ndata: [DONE]\n\n"
	_, tw, srv := wireClients(t, "text/event-stream", body)
	if g := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false)); g.Err != nil || g.Answer.Choices[0].Content != "hi" {
		t.Fatalf("go-openai through the transport: %v %v", g.Answer, g.Err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"),
		lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
	if err != nil {
		t.Fatal(err)
	}
	m := twlc.New(twlc.Models{"gpt-4o-mini": inner}, llmwrap.MustBuild(policies.Default()))
	before := srv.Served()
	resp, err := m.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")},
		llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
	if err != nil {
		t.Errorf("langchaingo through tokenwise: %v (cut: %t), after %d upstream calls", err, errors.Is(err, middleware.ErrStreamCut), srv.Served()-before)
	} else if resp.Choices[0].Content != "hi" {
		t.Errorf("content %q", resp.Choices[0].Content)
	}

	// Without [DONE] nor a finish_reason, the stream is cut.
	srv.Set(wiregen.Wire{Stream: true, ContentType: "text/event-stream", Body: []byte("data: " + chunkHi + "\n\n")})
	_, err = m.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi again")},
		llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
	if !errors.Is(err, middleware.ErrStreamCut) {
		t.Errorf("a stream without [DONE] nor finish_reason: %v, want ErrStreamCut", err)
	}
}

// An answer that finishes with finish_reason "error" and no error object
// (OpenRouter's failure of the provider behind it, streamed after the
// content or answered in one piece with HTTP 200): go-openai alone reads a
// success whose finish reason is "error"; through the transport it is the
// provider's error, as through the langchaingo adapter, and never cached
// (the transport once passed it on as a finished answer).
func TestAnswerFinishedWithFinishReasonErrorFails(t *testing.T) {
	stream := "data: " + chunkHi + "\n\n" +
		`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}` + "\n\ndata: [DONE]\n\n"
	plain := `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"error"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	for _, tc := range []struct {
		name, contentType, body string
		stream                  bool
	}{{"stream", "text/event-stream", stream, true}, {"plain", "application/json", plain, false}} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _, srv := wireClients(t, tc.contentType, tc.body)
			cfg := goopenai.DefaultConfig("k")
			p := policies.Default()
			p.Fallback.Retry.MaxAttempts = 1
			ts := httptest.NewServer(srv)
			defer ts.Close()
			cfg.BaseURL = ts.URL
			cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
			tw := goopenai.NewClientWithConfig(cfg)
			req := wireStreamRequest(0, false)
			req.Stream = tc.stream
			if r := wiregen.Call(context.Background(), raw, req); r.Err != nil || r.Answer.Choices[0].Finish != "error" {
				t.Fatalf("go-openai alone: %v %v", r.Answer, r.Err)
			}
			for i := range 2 {
				before := srv.Served()
				got := wiregen.Call(context.Background(), tw, req)
				var pe *middleware.ProviderError
				if !errors.As(got.Err, &pe) {
					t.Errorf("call %d: through the transport %v %v, want the provider's error", i+1, got.Answer, got.Err)
				}
				if srv.Served() == before {
					t.Errorf("call %d was answered from the cache", i+1)
				}
			}
		})
	}
}

// Two tool calls sent whole in one chunk, neither with its index
// (Mistral's streams; Gemini's compatibility layer): go-openai hands them
// on as they came, with a nil Index, and so does the transport — the
// caller reads what it reads without tokenwise —; such an answer is not
// kept, since its hit, restreamed from the merged answer, would have the
// calls indexed (a hit that differed from the first answer).
func TestToolCallsWithoutIndexAreNotKept(t *testing.T) {
	body := `data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n" +
		`data: {"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"tool_calls":[{"id":"D681PevKs","function":{"name":"check_disk","arguments":"{\"host\": \"web-1\"}"}},{"id":"A2b3C4d5E","function":{"name":"rotate_logs","arguments":"{\"host\": \"web-2\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":80,"total_tokens":110,"completion_tokens":30}}` + "\n\ndata: [DONE]\n\n"
	raw, tw, srv := wireClients(t, "text/event-stream", body)
	alone := wiregen.Call(context.Background(), raw, wireStreamRequest(0, true))
	if alone.Err != nil {
		t.Fatal(alone.Err)
	}
	for i := range 2 {
		before := srv.Served()
		got := wiregen.Call(context.Background(), tw, wireStreamRequest(0, true))
		if got.Err != nil {
			t.Fatalf("call %d: %v", i+1, got.Err)
		}
		if !reflect.DeepEqual(got.Answer.Norm(), alone.Answer.Norm()) || got.Answer.Unindexed != alone.Answer.Unindexed || !got.Answer.Unindexed {
			t.Errorf("call %d: %+v (without index: %t), want what go-openai reads alone: %+v", i+1, got.Answer.Norm(), got.Answer.Unindexed, alone.Answer.Norm())
		}
		if srv.Served() == before {
			t.Errorf("call %d was a hit: an answer of calls without index was kept", i+1)
		}
	}
}

// vLLM's error event ({"object":"error","message",...}, sent mid-stream
// with HTTP 200, then [DONE]): go-openai alone reads a success of the
// content before it; through the transport it is the provider's error
// (the transport once skipped it as an event of nothing, and answered the
// content before it, cut, as a success).
func TestVLLMErrorEventFails(t *testing.T) {
	body := "data: " + chunkHi + "\n\n" +
		`data: {"object":"error","message":"The engine is dead","type":"InternalServerError","param":null,"code":500}` + "\n\ndata: [DONE]\n\n"
	raw, tw, srv := wireClients(t, "text/event-stream", body)
	if r := wiregen.Call(context.Background(), raw, wireStreamRequest(0, false)); r.Err != nil {
		t.Logf("go-openai alone fails now: %v", r.Err)
	}
	for i := range 2 {
		before := srv.Served()
		got := wiregen.Call(context.Background(), tw, wireStreamRequest(0, false))
		var pe *middleware.ProviderError
		if !errors.As(got.Err, &pe) || pe.Message != "The engine is dead" {
			t.Errorf("call %d (a hit: %t): through the transport %v %v, want the provider's error", i+1, srv.Served() == before, got.Answer, got.Err)
		}
	}
}

// A plain answer whose values langchaingo's backend cannot decode into
// its types, and which the adapter does not rewrite (a usage count of
// -5.0: no count): through the adapter the call fails with ErrMalformed,
// a typed error, as through the go-openai transport (it once failed with
// the backend's bare *json.UnmarshalTypeError). A count of 12.0, which
// Python servers may write, is read as 12 (TestLangchaingoCountsTheBackendCannotHold).
func TestLangchaingoAnswerOfNegativeFloatCountIsMalformed(t *testing.T) {
	srv := &wiregen.Server{}
	srv.Set(wiregen.Wire{ContentType: "application/json", Body: []byte(`{"id":"u","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":-5.0,"completion_tokens":3.0,"total_tokens":-2.0}}`)})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
	if err != nil {
		t.Fatal(err)
	}
	m := twlc.New(twlc.Models{"gpt-4o-mini": inner}, llmwrap.MustBuild(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
	_, err = m.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")})
	if !errors.Is(err, middleware.ErrMalformed) {
		t.Errorf("through the adapter: %T %v, want ErrMalformed", err, err)
	}
}
