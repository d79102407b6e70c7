package langchaingo_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// The tests of this file play event streams byte for byte to langchaingo's
// own openai client, over HTTP, through twlc.NewTransport: the shapes real
// servers send that the backend alone reads wrongly.

// rawStream is a Reply that sends the data lines as they are, one event
// each.
func rawStream(lines ...string) openaitest.Reply {
	pieces := make([][]byte, len(lines))
	for i, l := range lines {
		pieces[i] = []byte(l + "\n\n")
	}
	return openaitest.Reply{Raw: pieces}
}

const (
	wireHi   = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`
	wireStop = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	wireDone = `data: [DONE]`
)

// TestEntryAfterTheFinishKeepsTheStreamComplete: a choice-0 entry with
// finish_reason null after the finishing chunk (Azure's asynchronous
// content filter annotation; a usage chunk that carries an empty choice)
// leaves a complete stream complete: the call succeeds with its finish
// reason and usage, and the cache keeps the answer. (The backend copies
// every entry's finish_reason, the null included, and the adapter took the
// answer for a cut one.)
func TestEntryAfterTheFinishKeepsTheStreamComplete(t *testing.T) {
	const annotation = `data: {"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":2},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}`
	const usage = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
	const usageWithChoice = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":null}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
	for name, reply := range map[string]openaitest.Reply{
		"azure annotation":           rawStream(wireHi, wireStop, annotation, usage, wireDone),
		"usage with an empty choice": rawStream(wireHi, wireStop, usageWithChoice, wireDone),
		"annotation, no [DONE]":      rawStream(wireHi, wireStop, annotation, usage),
	} {
		t.Run(name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(reply)
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, c.Middleware())
			for i := range 2 {
				resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming(), llms.WithTemperature(0))
				if err != nil {
					t.Fatalf("call %d: %v: a complete stream failed", i, err)
				}
				ch := resp.Choices[0]
				if ch.Content != "hi" || ch.StopReason != "stop" {
					t.Fatalf("call %d: content %q, finish %q; want \"hi\", \"stop\"", i, ch.Content, ch.StopReason)
				}
				if u, ok := twlc.UsageFromGenerationInfo(ch.GenerationInfo); !ok || u.InputTokens != 12 || u.OutputTokens != 5 {
					t.Fatalf("call %d: usage %+v (%v), want 12 + 5", i, u, ok)
				}
			}
			if srv.Count() != 1 {
				t.Fatalf("%d provider calls, want 1: the complete answer was not cached", srv.Count())
			}
		})
	}
}

// TestEntryAfterTheFinishWithoutTheTransport: without NewTransport, the
// backend reads an entry after the finish (OpenRouter's usage chunk with
// an entry for the choice, Azure's annotation) as a null finish_reason.
// Such a stream, which ended after its answer with its usage reported,
// is what the bare client reads, a success billed its usage, not a cut;
// a stream cut inside its answer is still a cut, usage reported in every
// chunk or not.
func TestEntryAfterTheFinishWithoutTheTransport(t *testing.T) {
	const annotation = `data: {"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":2},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}`
	const usage = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
	const usageWithChoice = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
	const roleWithUsage = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":{"prompt_tokens":12,"completion_tokens":0,"total_tokens":12}}`
	const hiWithUsage = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}`
	for _, tc := range []struct {
		name  string
		reply openaitest.Reply
		cut   bool
	}{
		{"openrouter usage chunk", rawStream(wireHi, wireStop, usageWithChoice, wireDone), false},
		{"azure annotation", rawStream(wireHi, wireStop, annotation, usage, wireDone), false},
		{"cut, no usage", rawStream(wireHi), true},
		{"cut after an annotation, no usage", rawStream(wireHi, annotation), true},
		{"cut, usage in every chunk", rawStream(roleWithUsage, hiWithUsage), true},
		{"cut after the role, usage in every chunk", rawStream(roleWithUsage), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			_, bareErr := newOpenAI(t, srv, "gpt-4o", false).GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming())
			if bareErr != nil {
				t.Fatalf("the bare client: %v", bareErr)
			}
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", false)}, c.Middleware())
			resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming())
			if tc.cut {
				if !errors.Is(err, middleware.ErrStreamCut) {
					t.Fatalf("err %v, want a cut", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: a complete stream failed", err)
			}
			ch := resp.Choices[0]
			if u, ok := twlc.UsageFromGenerationInfo(ch.GenerationInfo); ch.Content != "hi" || !ok || u.InputTokens != 12 || u.OutputTokens != 5 {
				t.Fatalf("content %q, usage %+v (%v); want \"hi\", 12 + 5", ch.Content, u, ok)
			}
			// No finish reason read: not known complete, not kept.
			if _, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming()); err != nil {
				t.Fatal(err)
			}
			if srv.Count() != 3 {
				t.Fatalf("%d provider calls, want 3 (the bare call, and two not served from the cache)", srv.Count())
			}
		})
	}
}

// TestErrorObjectInTheAnswerIsTheProvidersError: an error object a server
// sends with status 200, inside the event stream (OpenRouter's beside the
// choice it finishes with "error", OpenAI's and vLLM's error event, which
// vLLM follows with [DONE]) or as the body of a plain answer, fails the
// call with the provider's error, classified from its code or type as the
// go-openai transport does: never a truncated answer returned as a success,
// a generic cut, or an untyped "empty response". The cache does not keep
// it. A finish_reason "error" without an error object is a failure too.
func TestErrorObjectInTheAnswerIsTheProvidersError(t *testing.T) {
	const (
		openRouter = `{"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","provider":"openai","error":{"code":502,"message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`
		rateLimit  = `{"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}`
		vllmEvent  = `{"error": {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError", "param": null, "code": 500}}`
		vllmObject = `{"object":"error","message":"This model's maximum context length is 4096 tokens","type":"BadRequestError","param":null,"code":400}`
		bareString = `{"error":"model overloaded"}`
		finishErr  = `{"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`
		answer     = `{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"%s"}]%s}`
	)
	for _, tc := range []struct {
		name   string
		stream bool
		reply  openaitest.Reply
		want   error
		code   string
	}{
		{"stream/openrouter mid-stream error", true, rawStream(wireHi, "data: "+openRouter, wireDone), middleware.ErrUnavailable, "502"},
		{"stream/openrouter error, no [DONE]", true, rawStream(wireHi, "data: "+openRouter), middleware.ErrUnavailable, "502"},
		{"stream/rate limit as first event", true, rawStream("data: "+rateLimit, wireDone), middleware.ErrRateLimited, "rate_limit_exceeded"},
		{"stream/vllm error event", true, rawStream(wireHi, "data: "+vllmEvent, wireDone), middleware.ErrUnavailable, "500"},
		{"stream/vllm error object", true, rawStream("data: "+vllmObject, wireDone), middleware.ErrBadRequest, "400"},
		{"stream/bare error string", true, rawStream(wireHi, "data: "+bareString, wireDone), middleware.ErrUnavailable, ""},
		{"stream/finish_reason error alone", true, rawStream(wireHi, "data: "+finishErr, wireDone), middleware.ErrUnavailable, ""},
		{"plain/rate limit", false, openaitest.Reply{Raw: [][]byte{[]byte(rateLimit)}}, middleware.ErrRateLimited, "rate_limit_exceeded"},
		{"plain/vllm error object", false, openaitest.Reply{Raw: [][]byte{[]byte(vllmObject)}}, middleware.ErrBadRequest, "400"},
		{"plain/openrouter error beside the choice", false,
			openaitest.Reply{Raw: [][]byte{[]byte(fmt.Sprintf(answer, "error", `,"error":{"code":502,"message":"Provider disconnected unexpectedly"}`))}},
			middleware.ErrUnavailable, "502"},
		{"plain/finish_reason error alone", false, openaitest.Reply{Raw: [][]byte{[]byte(fmt.Sprintf(answer, "error", ""))}}, middleware.ErrUnavailable, ""},
		{"plain/no choices", false, openaitest.Reply{Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[]}`)}}, middleware.ErrMalformed, ""},
		{"plain/empty object", false, openaitest.Reply{Raw: [][]byte{[]byte(`{}`)}}, middleware.ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, c.Middleware())
			opts := []llms.CallOption{llms.WithTemperature(0)}
			if tc.stream {
				opts = append(opts, streaming())
			}
			for i := range 2 {
				resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, opts...)
				var pe *middleware.ProviderError
				if !errors.Is(err, tc.want) || !errors.As(err, &pe) {
					var content string
					if err == nil {
						content = resp.Choices[0].Content
					}
					t.Fatalf("call %d: err %v (content %q), want a ProviderError of %v", i, err, content, tc.want)
				}
				if pe.Code != tc.code {
					t.Fatalf("call %d: code %q, want %q (%v)", i, pe.Code, tc.code, err)
				}
			}
			if srv.Count() != 2 {
				t.Fatalf("%d provider calls, want 2: the failed answer was cached", srv.Count())
			}
		})
	}
}

// TestNullErrorMemberIsNoError: servers that send "error": null (or an
// empty error object) beside their choices answer normally.
func TestNullErrorMemberIsNoError(t *testing.T) {
	const withNull = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","error":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`
	const withEmpty = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","error":{},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	for name, tc := range map[string]struct {
		stream bool
		reply  openaitest.Reply
	}{
		"stream": {true, rawStream(withNull, withEmpty, wireDone)},
		"plain": {false, openaitest.Reply{Raw: [][]byte{[]byte(
			`{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","error":null,"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`)}}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, middleware.Chain())
			var opts []llms.CallOption
			if tc.stream {
				opts = append(opts, streaming())
			}
			resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, opts...)
			if err != nil || resp.Choices[0].Content != "hi" || resp.Choices[0].StopReason != "stop" {
				t.Fatalf("%+v, %v: want the answer", resp, err)
			}
		})
	}
}

// TestToolCallIndexOutOfRangeIsMalformed: a streamed tool call whose index
// is negative, not an integer, or not below middleware.MaxToolCalls fails
// the call with ErrMalformed, and the cache does not keep it (it used to
// vanish: a success finished by "tool_calls" with no call, cached). A call
// at the last index accepted arrives.
func TestToolCallIndexOutOfRangeIsMalformed(t *testing.T) {
	stream := func(index string) openaitest.Reply {
		return rawStream(
			`data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":`+index+`,"id":"c1","type":"function","function":{"name":"restart","arguments":"{}"}}]},"finish_reason":null}]}`,
			`data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
			wireDone)
	}
	tools := llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "restart", Parameters: map[string]any{"type": "object"}}}})
	for _, index := range []string{"-1", "1024", "1e9", "1.5", fmt.Sprint(middleware.MaxToolCalls - 1)} {
		t.Run(index, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(stream(index))
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, c.Middleware())
			valid := index == fmt.Sprint(middleware.MaxToolCalls-1)
			for i := range 2 {
				resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("restart it")}, tools, streaming(), llms.WithTemperature(0))
				switch {
				case valid && (err != nil || len(resp.Choices[0].ToolCalls) != 1 || resp.Choices[0].ToolCalls[0].FunctionCall.Name != "restart"):
					t.Fatalf("call %d: %+v, %v: want the call", i, resp, err)
				case !valid && !errors.Is(err, middleware.ErrMalformed):
					var calls int
					if err == nil {
						calls = len(resp.Choices[0].ToolCalls)
					}
					t.Fatalf("call %d: err %v (%d tool calls), want ErrMalformed", i, err, calls)
				}
			}
			if want := map[bool]int{true: 1, false: 2}[valid]; srv.Count() != want {
				t.Fatalf("%d provider calls, want %d", srv.Count(), want)
			}
		})
	}
}

// TestConnectionLostMidLineIsACut: a connection lost in the middle of a
// data line (the body ends with an unexpected EOF, the line has no break)
// is a cut stream, not a malformed chunk: the unterminated line is
// dropped, as the SSE spec drops an unterminated event. Before any chunk
// it is retried like any other cut; after one, the call fails with
// ErrStreamCut (it used to be ErrMalformed, which is not retried).
func TestConnectionLostMidLineIsACut(t *testing.T) {
	const part = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choi`
	for _, tc := range []struct {
		name   string
		before string // the events sent before the cut line
		yaml   string
	}{
		{"first event, retried", "", "version: 1\nfallback: {retry: {max_attempts: 2, base_delay: 1ms}}\n"},
		{"after a chunk", wireHi + "\n\n", "version: 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if n.Add(1) == 1 { // 200, then the connection dies inside a data line
					conn, bw, err := http.NewResponseController(w).Hijack()
					if err != nil {
						t.Error(err)
						return
					}
					body := tc.before + part
					fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(body), body)
					_ = bw.Flush()
					_ = conn.Close()
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, wireHi+"\n\n"+wireStop+"\n\n"+wireDone+"\n\n")
			}))
			defer srv.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			inner, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
				openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
			if err != nil {
				t.Fatal(err)
			}
			pol, err := policies.LoadBytes([]byte(tc.yaml), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": inner}, llmwrap.MustBuild(pol))
			resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming())
			if tc.before == "" {
				if err != nil || resp.Choices[0].Content != "hi" || n.Load() != 2 {
					t.Fatalf("%v (cut %v, malformed %v), %d provider calls: want the retried answer",
						err, errors.Is(err, middleware.ErrStreamCut), errors.Is(err, middleware.ErrMalformed), n.Load())
				}
				return
			}
			if !errors.Is(err, middleware.ErrStreamCut) || errors.Is(err, middleware.ErrMalformed) {
				t.Fatalf("err %v, want ErrStreamCut", err)
			}
		})
	}
}
