package openai_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// panicsAfter is a middleware that panics once n chunks went through it
// (n < 0: before calling the next handler).
func panicsAfter(n int) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if n < 0 {
				panic("layer broken before the call")
			}
			if req.Stream != nil {
				inner, seen := req.Stream, 0
				req = req.Clone()
				req.Stream = func(ctx context.Context, c middleware.Chunk) error {
					if seen == n {
						panic(errors.New("layer broken mid-stream"))
					}
					seen++
					return inner(ctx, c)
				}
			}
			return next.Handle(ctx, req)
		})
	}
}

// panicEvents records the events of a chain, for its PanicRecovered ones.
type panicEvents struct{ middlewaretest.Recorder }

func (p *panicEvents) check(t *testing.T) {
	t.Helper()
	ev := middlewaretest.Of[middleware.PanicRecovered](&p.Recorder)
	if len(ev) != 1 || len(ev[0].Stack) == 0 || !bytes.Contains(ev[0].Stack, []byte("robust_test.go")) {
		t.Errorf("panic events %+v, want one with the stack of the panic", ev)
	}
}

// TestPanicUnderStreamingCallIsAnError: a layer that panics mid-stream
// under a real go-openai streaming call: the process survives, the caller
// gets the error from Recv, and no goroutine is left (TestMain's goleak).
func TestPanicUnderStreamingCallIsAnError(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "A long answer streamed in many small pieces.", ChunkSize: 4})
	obs := &panicEvents{}
	chain := middleware.Chain(instrument.New(nil, obs), panicsAfter(3))
	s, err := clientFor(srv, twopenai.NewHTTPClient(chain)).CreateChatCompletionStream(context.Background(), chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll(t, s)
	var pe *middleware.PanicError
	if !errors.Is(err, middleware.ErrPanic) || !errors.As(err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("Recv after %d chunks: %v, want a *middleware.PanicError", len(got), err)
	}
	if len(got) != 3 {
		t.Errorf("%d chunks before the panic, want 3", len(got))
	}
	obs.check(t)
}

func TestPanicBeforeTheFirstChunkIsAnError(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Text("never seen"))
		obs := &panicEvents{}
		chain := middleware.Chain(instrument.New(nil, obs), panicsAfter(-1))
		client := clientFor(srv, twopenai.NewHTTPClient(chain))
		var err error
		if stream {
			_, err = client.CreateChatCompletionStream(context.Background(), chatRequest(true))
		} else {
			_, err = client.CreateChatCompletion(context.Background(), chatRequest(false))
		}
		if !errors.Is(err, middleware.ErrPanic) {
			t.Fatalf("stream %t: %v, want ErrPanic", stream, err)
		}
		if srv.Count() != 0 {
			t.Errorf("stream %t: %d provider calls", stream, srv.Count())
		}
		obs.check(t)
	}
}

// TestUndecodableBodyIsRefusedBeforeTheProvider: a body the transport
// cannot read is never passed upstream unpoliced: it gets an OpenAI-shaped
// 400 naming the member at fault, which go-openai returns as an APIError,
// even under a chain that would have refused the call anyway.
func TestUndecodableBodyIsRefusedBeforeTheProvider(t *testing.T) {
	for _, tc := range []struct {
		name, body, param string
	}{
		{"temperature as a string", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":"0.2"}`, "temperature"},
		{"messages as an object", `{"model":"gpt-4o","messages":{"role":"user"}}`, "messages"},
		{"content as a number", `{"model":"gpt-4o","messages":[{"role":"system","content":"s"},{"role":"user","content":5}]}`, "messages[1].content"},
		{"stream as a string", `{"model":"gpt-4o","messages":[],"stream":"yes"}`, "stream"},
		{"model as a number", `{"model":4,"messages":[]}`, "model"},
		{"not JSON", `{"model":"gpt-4o",`, ""},
		{"an array", `[1,2]`, ""},
		{"trailing garbage", `{"model":"gpt-4o","messages":[]} x`, ""},
		// A member the chain polices, given twice: the provider could read
		// the other value (an output bound of 5 tokens, then none).
		{"max_tokens twice", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_tokens":null}`, "max_tokens"},
		{"model twice", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o"}`, "model"},
		{"messages twice", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"messages":[{"role":"user","content":"a much longer question"}]}`, "messages"},
		{"stream twice", `{"model":"gpt-4o","messages":[],"stream":false,"stream":true}`, "stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Text("must not be reached"))
			called := false
			refuseAll := func(middleware.Handler) middleware.Handler {
				return middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
					called = true
					return nil, middleware.ErrBudget
				})
			}
			hc := twopenai.NewHTTPClient(refuseAll)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/chat/completions", strings.NewReader(tc.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || srv.Count() != 0 || called {
				t.Fatalf("status %d, %d provider calls, chain called %t: %s", resp.StatusCode, srv.Count(), called, body)
			}
			// go-openai reads the same answer as its usual API error.
			var apiErr *openai.APIError
			cfg := openai.DefaultConfig("k")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = &http.Client{Transport: rewriteBody{base: hc.Transport, body: tc.body}}
			_, err = openai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), chatRequest(false))
			if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusBadRequest || apiErr.Type != "invalid_request_error" {
				t.Fatalf("go-openai: %v (%T)", err, err)
			}
			if param, _, _ := strings.Cut(tc.param, "["); tc.param != "" && (apiErr.Param == nil || *apiErr.Param != param || !strings.Contains(apiErr.Message, tc.param)) {
				t.Errorf("param %v, message %q, want %q named", apiErr.Param, apiErr.Message, tc.param)
			}
			if srv.Count() != 0 {
				t.Errorf("%d provider calls", srv.Count())
			}
		})
	}
}

// rewriteBody replaces a request's body before the transport under test
// sees it: go-openai cannot be made to send a body of the wrong shape.
type rewriteBody struct {
	base http.RoundTripper
	body string
}

func (r rewriteBody) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(strings.NewReader(r.body))
	req.ContentLength = int64(len(r.body))
	return r.base.RoundTrip(req)
}

// rawStream is a streamed reply whose body is exactly these SSE lines.
func rawStream(lines ...string) openaitest.Reply {
	var pieces [][]byte
	for _, l := range lines {
		pieces = append(pieces, []byte(l+"\n\n"))
	}
	return openaitest.Reply{Raw: pieces}
}

const okChunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`

// TestMalformedStreamIsATypedError: a stream the transport cannot read to
// its end is an error from Recv (or from the call, before the first chunk)
// matching a core sentinel, never a shortened success, and the chain sees
// the same error.
func TestMalformedStreamIsATypedError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply openaitest.Reply
		want  error
	}{
		{"non-JSON data line", rawStream(okChunk, `data: {"choices":[{"delta":{"content":"Hel`, `data: [DONE]`), middleware.ErrMalformed},
		{"data line not an object", rawStream(okChunk, `data: 42`, `data: [DONE]`), middleware.ErrMalformed},
		{"content of the wrong type", rawStream(okChunk, `data: {"choices":[{"index":0,"delta":{"content":5}}]}`, `data: [DONE]`), middleware.ErrMalformed},
		{"null tool call", rawStream(okChunk, `data: {"choices":[{"index":0,"delta":{"tool_calls":[null]}}]}`, `data: [DONE]`), middleware.ErrMalformed},
		{"no [DONE]", rawStream(okChunk, okChunk), middleware.ErrStreamCut},
		{"comments only", rawStream(`: keep-alive`, `event: ping`), middleware.ErrStreamCut},
		{"[DONE] without chunks", rawStream(`: hi`, `data: [DONE]`), middleware.ErrMalformed},
		{"error object mid-stream", rawStream(okChunk, `data: {"error":{"message":"overloaded","type":"server_error"}}`), middleware.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			rec := &middlewaretest.Tap{}
			s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletionStream(context.Background(), chatRequest(true))
			if err == nil {
				_, err = recvAll(t, s)
			}
			if err == io.EOF || !errors.Is(err, tc.want) {
				t.Fatalf("stream ended with %v, want %v", err, tc.want)
			}
			if _, _, cerr := rec.Last(t); !errors.Is(cerr, tc.want) {
				t.Errorf("the chain saw %v", cerr)
			}
		})
	}
}

// TestInterleavedToolCallFragmentsThroughTheTransport is the crash of the
// issue, byte for byte: both call headers first, then the arguments in
// small pieces, alternating. It once panicked ("strings.Builder copied by
// value") in the transport's goroutine and took the process down.
func TestInterleavedToolCallFragmentsThroughTheTransport(t *testing.T) {
	t.Parallel()
	head := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	lines := []string{
		head + `{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"check_disk","arguments":""}}]},"finish_reason":null}]}`,
		head + `{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"check_disk","arguments":""}}]},"finish_reason":null}]}`,
	}
	a, b := `{"host":"web-1"}`, `{"host":"web-2"}`
	for i := 0; i < len(a); i += 3 {
		for idx, s := range []string{a, b} {
			lines = append(lines, head+fmt.Sprintf(`{"tool_calls":[{"index":%d,"function":{"arguments":%q}}]},"finish_reason":null}]}`, idx, s[i:min(i+3, len(s))]))
		}
	}
	lines = append(lines, head+`{},"finish_reason":"tool_calls"}]}`, `data: [DONE]`)
	srv := openaitest.NewServer(t)
	srv.On().Reply(rawStream(lines...))
	rec := &middlewaretest.Tap{}
	s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletionStream(context.Background(), chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(t, s); err != io.EOF {
		t.Fatalf("stream ended with %v", err)
	}
	_, resp, err := rec.Last(t)
	want := []middleware.ToolCall{{ID: "call_a", Name: "check_disk", Arguments: a}, {ID: "call_b", Name: "check_disk", Arguments: b}}
	if err != nil || !reflect.DeepEqual(resp.Message.ToolCalls, want) {
		t.Fatalf("assembled %+v, %v", resp.Message.ToolCalls, err)
	}
}

// TestStreamUsageWhereverTheServerPutsIt: OpenAI-compatible servers put a
// stream's usage in different places; the chain reads the provider's own
// count from each, once (never a sum of cumulative reports): with the
// finishing chunk (Mistral, Together), in a chunk before an empty last
// one (xAI), cumulative in every chunk (vLLM's continuous usage stats), in
// Groq's x_groq member of the last chunk. A vendor member that is not a
// usage is no error, nor is an event of no choices (skipped, as go-openai
// hands it over empty).
func TestStreamUsageWhereverTheServerPutsIt(t *testing.T) {
	t.Parallel()
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",`
	const first = head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	const usage = `{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}`
	want := middleware.Usage{InputTokens: 10, OutputTokens: 2}
	for _, tc := range []struct {
		name  string
		lines []string
		want  middleware.Usage
	}{
		{"with the finishing chunk", []string{head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}],"usage":null}`,
			head + `"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":` + usage + `}`}, want},
		{"before an empty last chunk", []string{first, head + `"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":` + usage + `}`,
			head + `"choices":[]}`}, want},
		{"cumulative in every chunk", []string{head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}`,
			head + `"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":` + usage + `}`, head + `"choices":[],"usage":` + usage + `}`}, want},
		{"groq's x_groq", []string{first, head + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":{"queue_time":0.07,"prompt_tokens":10,"prompt_time":0.006,"completion_tokens":2,"completion_time":0.02,"total_tokens":12,"total_time":0.03}}}`}, want},
		{"x_groq and a usage chunk", []string{first, head + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":` + usage + `}}`, head + `"choices":[],"usage":` + usage + `}`}, want},
		{"negative counts", []string{first, head + `"choices":[],"usage":{"prompt_tokens":-1000000,"completion_tokens":2}}`}, middleware.Usage{}},
		{"an event of no choices", []string{first, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","ping":true}`, head + `"choices":[],"usage":` + usage + `}`}, want},
		{"x_groq of another shape", []string{first, head + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":"req_1"}`, head + `"choices":[],"x_groq":{"usage":"n/a"}}`}, middleware.Usage{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(rawStream(append(tc.lines, `data: [DONE]`)...))
			rec := &middlewaretest.Tap{}
			s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletionStream(context.Background(), chatRequest(true))
			if err != nil {
				t.Fatal(err)
			}
			out, err := recvAll(t, s)
			if err != io.EOF || len(out) == 0 {
				t.Fatalf("the stream ended with %v after %d chunks, want io.EOF", err, len(out))
			}
			_, resp, cerr := rec.Last(t)
			if cerr != nil || resp.Usage != tc.want {
				t.Fatalf("the chain saw usage %+v (%v), want %+v", resp.Usage, cerr, tc.want)
			}
		})
	}
}

// TestNegativeUsageIsNoUsage: a response whose usage has a negative count
// (a broken or hostile server) is taken as one without usage — billed the
// Meter's conservative estimate — never settled as given, which would take
// spend off a budget.
func TestNegativeUsageIsNoUsage(t *testing.T) {
	t.Parallel()
	for _, u := range []string{`{"prompt_tokens":-1000000,"completion_tokens":2}`, `{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":-5}}`,
		`{"prompt_tokens":10,"completion_tokens":-2}`} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":` + u + `}`)}})
		rec := &middlewaretest.Tap{}
		if _, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletion(context.Background(), chatRequest(false)); err != nil {
			t.Fatalf("usage %s: %v", u, err)
		}
		if _, resp, err := rec.Last(t); err != nil || !resp.Usage.IsZero() {
			t.Fatalf("usage %s: the chain saw %+v (%v), want none", u, resp.Usage, err)
		}
	}
}

// TestStreamClosedAfterItsFinishIsComplete: servers that never send
// [DONE] (some llama.cpp forks, older TGI and text-generation-webui) end a
// finished stream by closing it. Closed after its choice's finish_reason,
// the stream is complete — as go-openai itself reads it, the same events
// and the provider's usage; closed before it, or with n > 1 choices whose
// ends are not all tracked, it is cut.
func TestStreamClosedAfterItsFinishIsComplete(t *testing.T) {
	t.Parallel()
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",`
	first := head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	finish := head + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	for _, tc := range []struct {
		name  string
		lines []string
		n     int
		cut   bool
	}{
		{"closed after the finish", []string{first, finish}, 0, false},
		{"closed before the finish", []string{first}, 0, true},
		{"n = 2, closed after choice 0's finish", []string{first, finish}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(rawStream(tc.lines...))
			req := chatRequest(true)
			req.N = tc.n
			req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
			raw, err := clientFor(srv, nil).CreateChatCompletionStream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want, rawErr := recvAll(t, raw)
			if rawErr != io.EOF {
				t.Fatalf("go-openai alone: %v", rawErr)
			}
			rec := &middlewaretest.Tap{}
			s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletionStream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := recvAll(t, s)
			_, resp, cerr := rec.Last(t)
			if tc.cut {
				if !errors.Is(err, middleware.ErrStreamCut) || !errors.Is(cerr, middleware.ErrStreamCut) {
					t.Fatalf("the client got %v, the chain %v: want the stream cut", err, cerr)
				}
				return
			}
			if err != io.EOF || cerr != nil || !reflect.DeepEqual(got, want) || resp.Usage != (middleware.Usage{InputTokens: 3, OutputTokens: 1}) || resp.FinishReason != "stop" {
				t.Fatalf("the client got %d chunks (%v), the chain %v with usage %+v: want go-openai's %d chunks, io.EOF and the provider's usage", len(got), err, cerr, resp.Usage, len(want))
			}
		})
	}
}

// TestAnswerContentAsParts: some OpenAI-compatible servers answer with the
// message's content as an array of parts (Mistral's reasoning models: a
// "thinking" part, then "text"), which go-openai reads as MultiContent:
// through tokenwise the client reads the same answer, and the chain sees
// the text as the content, the thinking as the reasoning, a refusal part
// as the refusal.
func TestAnswerContentAsParts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		content                  string
		text, reasoning, refusal string
	}{
		{`[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]`, "Hi there", "", ""},
		{`[{"type":"thinking","thinking":[{"type":"text","text":"The user greets."}]},{"type":"text","text":"Hi"}]`, "Hi", "The user greets.", ""},
		{`[{"text":"late type","type":"text"},{"type":"image_url","image_url":{"url":"data:,"}},{"type":"refusal","refusal":"no"}]`, "late type", "", "no"},
		{`[]`, "", "", ""},
	} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + tc.content + `},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}`)}})
		raw, err := clientFor(srv, nil).CreateChatCompletion(context.Background(), chatRequest(false))
		if err != nil {
			t.Fatalf("%s: go-openai alone: %v", tc.content, err)
		}
		rec := &middlewaretest.Tap{}
		got, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletion(context.Background(), chatRequest(false))
		if err != nil || !reflect.DeepEqual(got.Choices, raw.Choices) {
			t.Fatalf("%s: through tokenwise %+v (%v), want go-openai's %+v", tc.content, got.Choices, err, raw.Choices)
		}
		_, resp, cerr := rec.Last(t)
		if cerr != nil || resp.Message.Content != tc.text || resp.Message.Reasoning != tc.reasoning || resp.Refusal != tc.refusal {
			t.Fatalf("%s: the chain saw content %q, reasoning %q, refusal %q (%v)", tc.content, resp.Message.Content, resp.Message.Reasoning, resp.Refusal, cerr)
		}
	}
}

// TestStreamUsageNamesItsServiceTier: the usage the chain sees names the
// processing tier the provider billed — the answer's service_tier, in a
// stream the usage chunk's or, when that chunk leaves it out, the last
// one an earlier chunk named — and the request's Native says which tier
// the request asked for ("auto" and "default" are the standard rates: "").
// A service_tier of another type in a chunk is no error and names
// nothing.
func TestStreamUsageNamesItsServiceTier(t *testing.T) {
	t.Parallel()
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",`
	const usage = `{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}`
	for _, tc := range []struct {
		name, tier string
		reply      openaitest.Reply
		stream     bool
	}{
		{"in every chunk", "priority", rawStream(head+`"service_tier":"priority","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
			head+`"service_tier":"priority","choices":[],"usage":`+usage+`}`, `data: [DONE]`), true},
		{"not in the usage chunk", "flex", rawStream(head+`"service_tier":"flex","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
			head+`"choices":[],"usage":`+usage+`}`, `data: [DONE]`), true},
		{"only in the usage chunk", "flex", rawStream(head+`"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
			head+`"service_tier":"flex","choices":[],"usage":`+usage+`}`, `data: [DONE]`), true},
		{"in no chunk", "", rawStream(head+`"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
			head+`"choices":[],"usage":`+usage+`}`, `data: [DONE]`), true},
		{"of another type", "", rawStream(head+`"service_tier":5,"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
			head+`"service_tier":null,"choices":[],"usage":`+usage+`}`, `data: [DONE]`), true},
		{"an answer", "priority", openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","service_tier":"priority","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":` + usage + `}`)}}, false},
		{"an answer naming default", "default", openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":` + usage + `,"service_tier":"default"}`)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			rec := &middlewaretest.Tap{}
			c := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
			req := chatRequest(tc.stream)
			req.ServiceTier = openai.ServiceTierPriority
			if tc.stream {
				s, err := c.CreateChatCompletionStream(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if out, err := recvAll(t, s); err != io.EOF || len(out) == 0 {
					t.Fatalf("the stream ended with %v after %d chunks, want io.EOF", err, len(out))
				}
			} else if _, err := c.CreateChatCompletion(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			creq, resp, err := rec.Last(t)
			want := middleware.Usage{InputTokens: 10, OutputTokens: 2, ServiceTier: tc.tier}
			if err != nil || resp.Usage != want {
				t.Fatalf("the chain saw usage %+v (%v), want %+v", resp.Usage, err, want)
			}
			if got := middleware.RequestServiceTier(creq); got != "priority" {
				t.Errorf("the request asks for tier %q, want priority", got)
			}
		})
	}
	for asked, want := range map[openai.ServiceTier]string{"": "", "auto": "", "default": "", "flex": "flex", "scale": "scale"} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Text("ok"))
		rec := &middlewaretest.Tap{}
		req := chatRequest(false)
		req.ServiceTier = asked
		if _, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletion(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if creq, _, _ := rec.Last(t); middleware.RequestServiceTier(creq) != want {
			t.Errorf("service_tier %q: the request asks for %q, want %q", asked, middleware.RequestServiceTier(creq), want)
		}
	}
}

// TestReasoningLeftOutOfCompletionIsBilled: servers that count the
// reasoning tokens outside completion_tokens (xAI; Gemini bridges, whose
// completion_tokens is 0 for an answer of thoughts only) still report
// them in total_tokens and reasoning_tokens, and the provider bills them
// as output: the usage the chain sees counts them, answered or streamed;
// OpenAI's own convention (reasoning inside completion, total = prompt +
// completion) is read as it is.
func TestReasoningLeftOutOfCompletionIsBilled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, usage string
		want        middleware.Usage
	}{
		{"openai", `{"prompt_tokens":32,"completion_tokens":103,"total_tokens":135,"completion_tokens_details":{"reasoning_tokens":94}}`,
			middleware.Usage{InputTokens: 32, OutputTokens: 103, ReasoningTokens: 94}},
		{"xai", `{"prompt_tokens":32,"completion_tokens":9,"total_tokens":135,"prompt_tokens_details":{"text_tokens":32,"cached_tokens":6},"completion_tokens_details":{"reasoning_tokens":94}}`,
			middleware.Usage{InputTokens: 32, OutputTokens: 103, CachedInputTokens: 6, ReasoningTokens: 94}},
		{"thoughts only", `{"prompt_tokens":21,"completion_tokens":0,"total_tokens":81,"completion_tokens_details":{"reasoning_tokens":60}}`,
			middleware.Usage{InputTokens: 21, OutputTokens: 60, ReasoningTokens: 60}},
		{"no total", `{"prompt_tokens":32,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":94}}`,
			middleware.Usage{InputTokens: 32, OutputTokens: 103, ReasoningTokens: 94}},
		{"a total below the counts", `{"prompt_tokens":32,"completion_tokens":9,"total_tokens":20}`,
			middleware.Usage{InputTokens: 32, OutputTokens: 9}},
	} {
		for _, stream := range []bool{false, true} {
			srv := openaitest.NewServer(t)
			if stream {
				srv.On().Reply(rawStream(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
					`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":`+tc.usage+`}`, `data: [DONE]`))
			} else {
				srv.On().Reply(openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":` + tc.usage + `}`)}})
			}
			rec := &middlewaretest.Tap{}
			c := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
			if stream {
				s, err := c.CreateChatCompletionStream(context.Background(), chatRequest(true))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := recvAll(t, s); err != io.EOF {
					t.Fatalf("%s: stream ended with %v", tc.name, err)
				}
			} else if _, err := c.CreateChatCompletion(context.Background(), chatRequest(false)); err != nil {
				t.Fatal(err)
			}
			if _, resp, err := rec.Last(t); err != nil || resp.Usage != tc.want {
				t.Errorf("%s (stream %v): the chain saw usage %+v (%v), want %+v", tc.name, stream, resp.Usage, err, tc.want)
			}
		}
	}
}

// TestNullErrorBesideAnAnswerIsNoError: servers that send "error": null
// (or an empty error object) beside a valid answer or chunk are read as
// the answer, as go-openai alone reads them, not failed as a provider
// error; an error object with a message still is one.
func TestNullErrorBesideAnAnswerIsNoError(t *testing.T) {
	t.Parallel()
	for _, e := range []string{`null`, `{}`, `""`, `{"message":null,"type":null,"code":null}`} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","error":` + e + `,"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2}}`)}})
		raw, err := clientFor(srv, nil).CreateChatCompletion(context.Background(), chatRequest(false))
		if err != nil {
			t.Fatalf("error %s: go-openai alone: %v", e, err)
		}
		got, err := clientFor(srv, twopenai.NewHTTPClient(passChain(&middlewaretest.Tap{}))).CreateChatCompletion(context.Background(), chatRequest(false))
		if err != nil || !reflect.DeepEqual(got.Choices, raw.Choices) {
			t.Fatalf("error %s: through tokenwise %+v (%v), want go-openai's %+v", e, got.Choices, err, raw.Choices)
		}

		srv = openaitest.NewServer(t)
		srv.On().Reply(rawStream(
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","error":`+e+`,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`,
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"error":`+e+`}`,
			`data: [DONE]`))
		s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(&middlewaretest.Tap{}))).CreateChatCompletionStream(context.Background(), chatRequest(true))
		if err != nil {
			t.Fatalf("error %s: stream: %v", e, err)
		}
		var text string
		for {
			r, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("error %s: stream read %q, then %v", e, text, err)
			}
			if len(r.Choices) > 0 {
				text += r.Choices[0].Delta.Content
			}
		}
		_ = s.Close()
		if text != "Hello" {
			t.Fatalf("error %s: stream read %q, want Hello", e, text)
		}
	}
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"error":{"message":"overloaded","type":"server_error"},"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}`)}})
	if _, err := clientFor(srv, twopenai.NewHTTPClient(passChain(&middlewaretest.Tap{}))).CreateChatCompletion(context.Background(), chatRequest(false)); !errors.Is(err, middleware.ErrUnavailable) {
		t.Fatalf("an error object with a message: %v, want the provider's error", err)
	}
}

// TestPromptCacheHitsOfOtherProviders: the input tokens read from a
// provider's prompt cache, billed at its cached rate, are read where
// servers other than OpenAI's put them — DeepSeek's
// prompt_cache_hit_tokens and Moonshot's (Kimi's) cached_tokens beside
// the prompt's count — in an answer and in a stream's usage; OpenAI's
// prompt_tokens_details.cached_tokens wins when it counts any.
func TestPromptCacheHitsOfOtherProviders(t *testing.T) {
	t.Parallel()
	const head = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",`
	for _, tc := range []struct {
		name, usage string
		cached      int64
	}{
		{"deepseek", `{"prompt_tokens":1000,"completion_tokens":2,"total_tokens":1002,"prompt_cache_hit_tokens":768,"prompt_cache_miss_tokens":232}`, 768},
		{"moonshot", `{"prompt_tokens":1000,"completion_tokens":2,"total_tokens":1002,"cached_tokens":512}`, 512},
		{"openai's details first", `{"prompt_tokens":1000,"completion_tokens":2,"cached_tokens":512,"prompt_tokens_details":{"cached_tokens":256}}`, 256},
		{"empty details", `{"prompt_tokens":1000,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"cached_tokens":512}`, 512},
		{"negative", `{"prompt_tokens":1000,"completion_tokens":2,"cached_tokens":-5}`, 0},
	} {
		want := middleware.Usage{InputTokens: 1000, OutputTokens: 2, CachedInputTokens: tc.cached}
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				if stream {
					srv.On().Reply(rawStream(`data: `+head+`"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}`,
						`data: `+head+`"choices":[],"usage":`+tc.usage+`}`, `data: [DONE]`))
				} else {
					srv.On().Reply(openaitest.Reply{Status: 200, Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":` + tc.usage + `}`)}})
				}
				rec := &middlewaretest.Tap{}
				c := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
				if stream {
					s, err := c.CreateChatCompletionStream(context.Background(), chatRequest(true))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := recvAll(t, s); err != io.EOF {
						t.Fatalf("the stream ended with %v", err)
					}
				} else if _, err := c.CreateChatCompletion(context.Background(), chatRequest(false)); err != nil {
					t.Fatal(err)
				}
				if _, resp, err := rec.Last(t); err != nil || resp.Usage != want {
					t.Fatalf("the chain saw usage %+v (%v), want %+v", resp.Usage, err, want)
				}
			})
		}
	}
}
