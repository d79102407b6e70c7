package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func pass(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return next.Handle(ctx, req)
	})
}

// passChain is four pass-through layers and the recorder.
func passChain(rec *middlewaretest.Tap) middleware.Middleware {
	return middleware.Chain(pass, pass, pass, pass, rec.Middleware)
}

func clientFor(srv *openaitest.Server, httpClient openai.HTTPDoer) *openai.Client {
	cfg := openai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	if httpClient != nil {
		cfg.HTTPClient = httpClient
	}
	return openai.NewClientWithConfig(cfg)
}

func chatRequest(stream bool) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model:  "gpt-4o-mini",
		Stream: stream,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: "You are an SRE assistant."},
			{Role: openai.ChatMessageRoleUser, Content: "Check the disks of web-1 and web-2."},
		},
		Tools: []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: "check_disk", Description: "Disk usage of a host",
			Parameters: json.RawMessage(`{"type":"object","properties":{"host":{"type":"string"}},"required":["host"]}`),
		}}},
	}
}

var twoCalls = openaitest.ToolCalls(
	openaitest.Call("call_a", "check_disk", `{"host":"web-1"}`),
	openaitest.Call("call_b", "check_disk", `{"host":"web-2"}`),
)

func TestChatCompletionPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply openaitest.Reply
	}{
		{"text", openaitest.Reply{Content: "Both disks are below 50%.", Reasoning: "Looked at both."}},
		{"two tool calls", twoCalls},
		{"cached and reasoning usage", openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 20, CachedTokens: 64, ReasoningTokens: 12}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			rec := &middlewaretest.Tap{}
			ctx := context.Background()

			want, err := clientFor(srv, nil).CreateChatCompletion(ctx, chatRequest(false))
			if err != nil {
				t.Fatal(err)
			}
			got, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletion(ctx, chatRequest(false))
			if err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if !bytes.Equal(reqs[0].Body, reqs[1].Body) {
				t.Errorf("upstream body changed:\n%s\n%s", reqs[0].Body, reqs[1].Body)
			}
			if reqs[1].Header.Get("Authorization") != "Bearer test-key" {
				t.Errorf("Authorization = %q", reqs[1].Header.Get("Authorization"))
			}
			if !reflect.DeepEqual(got.Choices, want.Choices) || !reflect.DeepEqual(got.Usage, want.Usage) || got.Model != want.Model {
				t.Errorf("through the adapter\n%+v\nwithout\n%+v", got, want)
			}
			if got.ID != "chatcmpl-openaitest-2" || got.Header().Get("X-Request-Id") != "req_openaitest_2" {
				t.Errorf("id %q, headers %v: the upstream's bytes and headers were not passed on", got.ID, got.Header())
			}

			req, resp, err := rec.Last(t)
			if err != nil {
				t.Fatal(err)
			}
			if req.Model != "gpt-4o-mini" || len(req.Messages) != 2 || len(req.Tools) != 1 || req.Tools[0].Name != "check_disk" {
				t.Errorf("core request %+v", req)
			}
			u := want.Usage
			wantUsage := middleware.Usage{InputTokens: int64(u.PromptTokens), OutputTokens: int64(u.CompletionTokens), ServiceTier: string(want.ServiceTier)}
			if u.PromptTokensDetails != nil {
				wantUsage.CachedInputTokens = int64(u.PromptTokensDetails.CachedTokens)
			}
			if u.CompletionTokensDetails != nil {
				wantUsage.ReasoningTokens = int64(u.CompletionTokensDetails.ReasoningTokens)
			}
			if resp.Usage != wantUsage || resp.Usage.IsZero() {
				t.Errorf("core usage %+v, want %+v", resp.Usage, wantUsage)
			}
		})
	}
}

// recvAll reads a stream to its end and returns the responses with their
// per-request fields cleared, and the error that ended it.
func recvAll(t *testing.T, s *openai.ChatCompletionStream) ([]openai.ChatCompletionStreamResponse, error) {
	t.Helper()
	defer s.Close()
	var out []openai.ChatCompletionStreamResponse
	for {
		r, err := s.Recv()
		if err != nil {
			return out, err
		}
		r.ID, r.Created = "", 0
		out = append(out, r)
	}
}

func TestChatCompletionStreamPassThrough(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		for _, tc := range []struct {
			name  string
			reply openaitest.Reply
		}{
			{"text", openaitest.Reply{Content: "Both disks are below 50% and nothing needs doing.", Reasoning: "Check both.", ChunkSize: 5}},
			{"two parallel tool calls", twoCalls},
		} {
			name := tc.name
			if includeUsage {
				name += " with usage"
			}
			t.Run(name, func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(tc.reply)
				rec := &middlewaretest.Tap{}
				ctx := context.Background()
				creq := chatRequest(true)
				if includeUsage {
					creq.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
				}

				plain, err := clientFor(srv, nil).CreateChatCompletionStream(ctx, creq)
				if err != nil {
					t.Fatal(err)
				}
				want, err := recvAll(t, plain)
				if err != io.EOF {
					t.Fatalf("plain stream ended with %v", err)
				}
				s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletionStream(ctx, creq)
				if err != nil {
					t.Fatal(err)
				}
				got, err := recvAll(t, s)
				if err != io.EOF {
					t.Fatalf("stream ended with %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("through the adapter\n%+v\nwithout\n%+v", got, want)
				}
				last := got[len(got)-1]
				if includeUsage != (last.Usage != nil && len(last.Choices) == 0) {
					t.Errorf("usage chunk %+v, include_usage %v", last, includeUsage)
				}
				for _, r := range got[:len(got)-1] {
					if r.Usage != nil {
						t.Errorf("usage in a content chunk: %+v", r)
					}
				}
				if tc.reply.ToolCalls != nil {
					var args [2]string
					for _, r := range got {
						for _, c := range r.Choices {
							for _, tc := range c.Delta.ToolCalls {
								args[*tc.Index] += tc.Function.Arguments
							}
						}
					}
					if args != [2]string{`{"host":"web-1"}`, `{"host":"web-2"}`} {
						t.Errorf("tool call arguments %q", args)
					}
				}

				upstream := srv.Requests()[1]
				if !upstream.Chat.IncludeUsage() {
					t.Error("the adapter did not ask the upstream for usage")
				}
				_, resp, err := rec.Last(t)
				if err != nil {
					t.Fatal(err)
				}
				wu := openaitest.UsageFor(upstream.Chat, tc.reply)
				if resp.Usage.InputTokens != int64(wu.PromptTokens) || resp.Usage.OutputTokens != int64(wu.CompletionTokens) || resp.Usage.IsZero() {
					t.Errorf("core usage %+v, want %+v", resp.Usage, wu)
				}
				if n := len(resp.Message.ToolCalls); n != len(tc.reply.ToolCalls) {
					t.Errorf("assembled %d tool calls", n)
				}
				if resp.Message.Content != tc.reply.Content || resp.Message.Reasoning != tc.reply.Reasoning {
					t.Errorf("assembled %+v", resp.Message)
				}
			})
		}
	}
}

func TestStreamCutIsAnError(t *testing.T) {
	t.Parallel()
	for _, reply := range []openaitest.Reply{openaitest.CutAfter(3), openaitest.EOFAfter(3)} {
		t.Run(reply.Fault.Kind.String(), func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(reply)
			rec := &middlewaretest.Tap{}
			s, err := clientFor(srv, twopenai.NewHTTPClient(passChain(rec))).CreateChatCompletionStream(context.Background(), chatRequest(true))
			if err != nil {
				t.Fatal(err)
			}
			got, err := recvAll(t, s)
			if err == io.EOF || !errors.Is(err, middleware.ErrStreamCut) {
				t.Fatalf("Recv after %d chunks: %v, want ErrStreamCut", len(got), err)
			}
			if len(got) != 3 {
				t.Errorf("received %d chunks before the cut, want 3", len(got))
			}
			_, resp, cerr := rec.Last(t)
			if !errors.Is(cerr, middleware.ErrStreamCut) || resp == nil || resp.Message.Content == "" {
				t.Errorf("the chain saw %v with partial response %+v", cerr, resp)
			}
		})
	}
}

func TestRateLimitedIsAnAPIError(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.RateLimited(2 * time.Second))
		rec := &middlewaretest.Tap{}
		client := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
		var err error
		if stream {
			var s *openai.ChatCompletionStream
			s, err = client.CreateChatCompletionStream(context.Background(), chatRequest(true))
			if s != nil && err == nil {
				s.Close()
			}
		} else {
			_, err = client.CreateChatCompletion(context.Background(), chatRequest(false))
		}
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Type != "requests" {
			t.Fatalf("stream=%v: %T %v, want *openai.APIError 429", stream, err, err)
		}
		_, _, cerr := rec.Last(t)
		var pe *middleware.ProviderError
		if !errors.As(cerr, &pe) || pe.RetryAfter != 2*time.Second || !errors.Is(cerr, middleware.ErrRateLimited) || pe.StatusCode != 429 {
			t.Fatalf("the chain saw %#v", cerr)
		}
	}
}

func TestContextWindowErrorKeepsBody(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.ContextLengthExceeded(128000, 130000))
	_, err := clientFor(srv, twopenai.NewHTTPClient(nil)).CreateChatCompletion(context.Background(), chatRequest(false))
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 400 || apiErr.Code != "context_length_exceeded" || apiErr.Param == nil || *apiErr.Param != "messages" {
		t.Fatalf("%v", err)
	}
}

// routeTo is a middleware that changes the model, as a router does.
func routeTo(model string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := req.Clone()
			r.Model = model
			return next.Handle(ctx, r)
		})
	}
}

func TestChangedModelKeepsUnknownFields(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	hc := twopenai.NewHTTPClient(routeTo("gpt-4o"))

	// Through go-openai, with fields the core does not model.
	creq := chatRequest(false)
	creq.Metadata = map[string]string{"x": "y"}
	creq.User = "u1"
	creq.LogProbs = true
	resp, err := clientFor(srv, hc).CreateChatCompletion(context.Background(), creq)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "gpt-4o" {
		t.Errorf("answered by %q", resp.Model)
	}
	// Through plain HTTP, with a custom top-level field.
	raw := `{"model":"gpt-4o-mini","x_custom":{"a":[1,2.50,"\u00e9"]},"messages":[{"role":"user","content":"hi","x_msg":true}],"metadata":{"x":"y"},"user":"u1","logprobs":true}`
	hresp, err := hc.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()

	reqs := srv.Requests()
	for i, orig := range [][]byte{mustMarshal(t, creq), []byte(raw)} {
		var sent, was map[string]json.RawMessage
		if err := json.Unmarshal(reqs[i].Body, &sent); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(orig, &was)
		if string(sent["model"]) != `"gpt-4o"` {
			t.Errorf("upstream got model %s", sent["model"])
		}
		delete(sent, "model")
		delete(was, "model")
		if !reflect.DeepEqual(sent, was) {
			t.Errorf("fields changed:\n%s\n%s", reqs[i].Body, orig)
		}
	}
	if !strings.Contains(string(reqs[1].Body), `"x_custom":{"a":[1,2.50,"\u00e9"]}`) {
		t.Errorf("custom field not byte-identical: %s", reqs[1].Body)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// overBudget is a tokenwise-style error: a type matching a sentinel.
type overBudget struct{ Limit int64 }

func (e *overBudget) Error() string        { return "budget: run limit reached" }
func (e *overBudget) Is(target error) bool { return target == middleware.ErrBudget }

func refuse(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return nil, &overBudget{Limit: 100}
	})
}

func TestMiddlewareErrorReachesCaller(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("never"))
	client := clientFor(srv, twopenai.NewHTTPClient(middleware.Chain(pass, refuse)))

	_, err := client.CreateChatCompletion(context.Background(), chatRequest(false))
	var ob *overBudget
	if !errors.Is(err, middleware.ErrBudget) || !errors.As(err, &ob) || ob.Limit != 100 {
		t.Fatalf("CreateChatCompletion: %v", err)
	}
	_, err = client.CreateChatCompletionStream(context.Background(), chatRequest(true))
	if !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("CreateChatCompletionStream: %v", err)
	}
	if n := srv.Count(); n != 0 {
		t.Fatalf("the upstream got %d requests", n)
	}
}

func TestTransportIsADoer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	client := clientFor(srv, twopenai.NewTransport(passChain(&middlewaretest.Tap{})))
	resp, err := client.CreateChatCompletion(context.Background(), chatRequest(false))
	if err != nil || resp.Choices[0].Message.Content != "ok" {
		t.Fatalf("%+v %v", resp, err)
	}
	// Errors come back unwrapped: no *url.Error around them.
	client = clientFor(srv, twopenai.NewTransport(refuse))
	_, err = client.CreateChatCompletion(context.Background(), chatRequest(false))
	var ob *overBudget
	if !errors.As(err, &ob) || err != error(ob) {
		t.Fatalf("%T %v", err, err)
	}
	if _, err := client.ListModels(context.Background()); err == nil {
		t.Fatal("non-chat request did not reach the server")
	}
}

func TestMalformedResponse(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Malformed())
	rec := &middlewaretest.Tap{}
	client := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))

	_, err := client.CreateChatCompletion(context.Background(), chatRequest(false))
	if !errors.Is(err, middleware.ErrMalformed) {
		t.Fatalf("CreateChatCompletion: %v", err)
	}
	s, err := client.CreateChatCompletionStream(context.Background(), chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll(t, s)
	if !errors.Is(err, middleware.ErrMalformed) || len(got) != 1 {
		t.Fatalf("Recv after %d chunks: %v", len(got), err)
	}
}

// canned is a base transport that answers every request with one body.
type canned struct {
	status int
	ctype  string
	body   string
}

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.ctype}},
		Body: io.NopCloser(strings.NewReader(c.body)), Request: r}, nil
}

func TestGarbageIsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream bool
		body   string
		want   error
	}{
		{"not JSON", false, `<html>502</html>`, middleware.ErrMalformed},
		{"no choices", false, `{"id":"x","object":"chat.completion","choices":[]}`, middleware.ErrMalformed},
		{"choices missing", false, `{"id":"x"}`, middleware.ErrMalformed},
		{"wrong type", false, `{"choices":[{"message":{"content":42}}]}`, middleware.ErrMalformed},
		{"trailing garbage", false, `{"choices":[{"message":{"content":"a"}}]}{`, middleware.ErrMalformed},
		{"error in a 200", false, `{"error":{"message":"overloaded","type":"server_error"}}`, middleware.ErrUnavailable},
		{"bad SSE data", true, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {oops\n\n", middleware.ErrMalformed},
		{"empty stream", true, "data: [DONE]\n\n", middleware.ErrMalformed},
		{"no DONE", true, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", middleware.ErrStreamCut},
		{"error event", true, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"rate\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n", middleware.ErrRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctype := "application/json"
			if tc.stream {
				ctype = "text/event-stream"
			}
			p := twopenai.NewProvider("http://upstream.invalid/v1", "k", twopenai.WithBaseTransport(canned{200, ctype, tc.body}))
			req := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: "user", Content: "hi"}}}
			if tc.stream {
				req.Stream = func(context.Context, middleware.Chunk) error { return nil }
			}
			_, err := p.Handle(context.Background(), req)
			var pe *middleware.ProviderError
			if !errors.Is(err, tc.want) || !errors.As(err, &pe) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}

func TestNonChatRequestsPassThrough(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	rec := &middlewaretest.Tap{}
	client := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
	_, err := client.ListModels(context.Background())
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 {
		t.Fatalf("ListModels: %v", err)
	}
	if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/v1/models" {
		t.Fatalf("upstream saw %+v", reqs)
	}
	if len(rec.Requests()) != 0 {
		t.Fatal("the chain saw a non-chat request")
	}
}

// answer is a middleware that answers without the provider, as a cache
// hit does; with replay it streams the answer itself.
func answer(resp *middleware.Response, replay bool) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := resp.Clone()
			if replay && req.Stream != nil {
				if err := middleware.Replay(ctx, r, 4, req.Stream); err != nil {
					return nil, err
				}
			}
			return r, nil
		})
	}
}

func TestSynthesizedAnswers(t *testing.T) {
	cached := &middleware.Response{Model: "gpt-4o-mini", FinishReason: "tool_calls", FromCache: true,
		Message: middleware.Message{Role: "assistant", Content: "Checking.",
			ToolCalls: []middleware.ToolCall{{ID: "c1", Name: "check_disk", Arguments: `{"host":"web-1"}`}}},
		Usage: middleware.Usage{InputTokens: 30, OutputTokens: 9, CachedInputTokens: 2}}
	srv := openaitest.NewServer(t) // never reached
	for _, replay := range []bool{false, true} {
		client := clientFor(srv, twopenai.NewHTTPClient(answer(cached, replay)))
		resp, err := client.CreateChatCompletion(context.Background(), chatRequest(false))
		if err != nil {
			t.Fatal(err)
		}
		m := resp.Choices[0].Message
		if m.Content != "Checking." || len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Arguments != `{"host":"web-1"}` ||
			resp.Choices[0].FinishReason != "tool_calls" || resp.Usage.PromptTokens != 30 || resp.Usage.PromptTokensDetails.CachedTokens != 2 {
			t.Fatalf("replay=%v: %+v", replay, resp)
		}
		for _, includeUsage := range []bool{false, true} {
			creq := chatRequest(true)
			if includeUsage {
				creq.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
			}
			s, err := client.CreateChatCompletionStream(context.Background(), creq)
			if err != nil {
				t.Fatal(err)
			}
			got, err := recvAll(t, s)
			if err != io.EOF {
				t.Fatal(err)
			}
			var content, args, finish string
			var usage *openai.Usage
			for _, r := range got {
				if r.Usage != nil {
					usage = r.Usage
				}
				for _, c := range r.Choices {
					content += c.Delta.Content
					for _, tc := range c.Delta.ToolCalls {
						args += tc.Function.Arguments
					}
					if c.FinishReason != "" {
						finish = string(c.FinishReason)
					}
				}
			}
			if content != "Checking." || args != `{"host":"web-1"}` || finish != "tool_calls" || (usage != nil) != includeUsage {
				t.Fatalf("replay=%v usage=%v: %+v", replay, includeUsage, got)
			}
			if includeUsage && usage.TotalTokens != 39 {
				t.Fatalf("usage %+v", usage)
			}
		}
	}
	if srv.Count() != 0 {
		t.Fatal("the upstream was called")
	}
}

// upper rewrites the answer, chunks included.
func upper(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		if req.Stream != nil {
			inner := req.Stream
			req = req.Clone()
			req.Stream = func(ctx context.Context, c middleware.Chunk) error {
				c.Content = strings.ToUpper(c.Content)
				return inner(ctx, c)
			}
		}
		resp, err := next.Handle(ctx, req)
		if resp != nil {
			resp = resp.Clone()
			resp.Message.Content = strings.ToUpper(resp.Message.Content)
		}
		return resp, err
	})
}

func TestChangedAnswers(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "disk is fine", ChunkSize: 3})
	client := clientFor(srv, twopenai.NewHTTPClient(upper))
	resp, err := client.CreateChatCompletion(context.Background(), chatRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "DISK IS FINE" || resp.ID != "chatcmpl-openaitest-1" || resp.Usage.TotalTokens == 0 {
		t.Fatalf("%+v", resp)
	}
	s, err := client.CreateChatCompletionStream(context.Background(), chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvAll(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	var content string
	for _, r := range got {
		if r.Usage != nil {
			t.Errorf("usage chunk not asked for: %+v", r)
		}
		for _, c := range r.Choices {
			content += c.Delta.Content
		}
	}
	if content != "DISK IS FINE" || got[0].Choices[0].Delta.Role != "assistant" || got[0].Model != "gpt-4o-mini" {
		t.Fatalf("%q %+v", content, got)
	}
}

func TestCallerStopsReading(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.StallAfter(2))
	rec := &middlewaretest.Tap{}
	client := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
	s, err := client.CreateChatCompletionStream(context.Background(), chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	s.Close() // returns once the chain has ended
	_, _, cerr := rec.Last(t)
	if !errors.Is(cerr, context.Canceled) {
		t.Fatalf("the chain ended with %v, want context.Canceled", cerr)
	}
}

func TestCallerCancels(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.StallAfter(2))
	rec := &middlewaretest.Tap{}
	client := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := client.CreateChatCompletionStream(ctx, chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	var rerr error
	for rerr == nil {
		_, rerr = s.Recv()
	}
	if !errors.Is(rerr, context.Canceled) {
		t.Fatalf("Recv: %v, want context.Canceled", rerr)
	}
	s.Close()
	if _, _, cerr := rec.Last(t); !errors.Is(cerr, context.Canceled) {
		t.Fatalf("the chain ended with %v", cerr)
	}

	// A non-streaming call whose context is done before the answer.
	srv2 := openaitest.NewServer(t)
	srv2.On().Reply(openaitest.Stall())
	ctx2, cancel2 := context.WithCancel(context.Background())
	stallThenCancel := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			cancel2()
			return next.Handle(ctx, req)
		})
	}
	_, err = clientFor(srv2, twopenai.NewHTTPClient(stallThenCancel)).CreateChatCompletion(ctx2, chatRequest(false))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateChatCompletion: %v", err)
	}
}

func TestProviderOptions(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.RateLimited(time.Second))
	p := twopenai.NewProvider(srv.URL+"/", "sk-test", twopenai.WithProviderName("azure"), twopenai.WithHeader("Api-Key", "k2"))
	temp := 0.0
	_, err := p.Handle(context.Background(), &middleware.Request{Model: "m", Temperature: &temp, MaxTokens: 5,
		Messages: []middleware.Message{{Role: "user", Content: "hi"}}})
	var pe *middleware.ProviderError
	var he *twopenai.HTTPError
	if !errors.As(err, &pe) || pe.Provider != "azure" || pe.Model != "m" || !errors.As(err, &he) || he.StatusCode != 429 {
		t.Fatalf("%#v", err)
	}
	rec := srv.Requests()[0]
	if rec.Path != "/v1/chat/completions" || rec.Header.Get("Authorization") != "Bearer sk-test" || rec.Header.Get("Api-Key") != "k2" {
		t.Fatalf("%s %v", rec.Path, rec.Header)
	}
	if c := rec.Chat; c.Temperature == nil || *c.Temperature != 0 || c.MaxCompletionTokens == nil || *c.MaxCompletionTokens != 5 || c.MaxTokens != nil {
		t.Fatalf("sent %s", rec.Body)
	}
}

func TestStreamAnsweredInOnePiece(t *testing.T) {
	t.Parallel()
	body := `{"id":"x","model":"m","choices":[{"message":{"content":"whole"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`
	p := twopenai.NewProvider("http://upstream.invalid/v1", "", twopenai.WithBaseTransport(canned{200, "application/json", body}))
	var got []middleware.Chunk
	resp, err := p.Handle(context.Background(), &middleware.Request{Model: "m", Stream: func(_ context.Context, c middleware.Chunk) error {
		got = append(got, c)
		return nil
	}})
	if err != nil || resp.Message.Content != "whole" || len(got) != 2 || got[0].Content != "whole" || got[1].Usage.InputTokens != 3 {
		t.Fatalf("%+v %v %+v", resp, err, got)
	}
}

// TestBillableRequestsOutsideTheChainAreNamed: a billable request the
// Transport cannot run through its chain (the Responses API, embeddings)
// reaches the upstream with a warning, once per endpoint, that its spend
// is not counted; with WithUnpolicedRefused it is refused with an
// OpenAI-shaped 400 before it is sent; a request that costs nothing
// (listing models) passes silently.
func TestBillableRequestsOutsideTheChainAreNamed(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	send := func(c *http.Client, method, path string) *http.Response {
		req, _ := http.NewRequest(method, up.URL+path, strings.NewReader(`{"model":"gpt-4o","input":"hi"}`))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	c := twopenai.NewHTTPClient(nil, twopenai.WithBaseTransport(base))
	for range 2 {
		for _, path := range []string{"/v1/responses", "/v1/embeddings"} {
			if resp := send(c, "POST", path); resp.StatusCode != 200 {
				t.Fatalf("%s: %d, want the upstream's answer", path, resp.StatusCode)
			}
		}
	}
	send(c, "GET", "/v1/models")
	if n := strings.Count(logs.String(), "passed through without the policy"); n != 2 || !strings.Contains(logs.String(), "endpoint=/responses") ||
		!strings.Contains(logs.String(), "endpoint=/embeddings") || hits.Load() != 5 {
		t.Fatalf("%d warnings, %d upstream calls; logs:\n%s", n, hits.Load(), logs.String())
	}
	strict := twopenai.NewHTTPClient(nil, twopenai.WithBaseTransport(base), twopenai.WithUnpolicedRefused())
	resp := send(strict, "POST", "/v1/responses")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "WithUnpolicedRefused") || hits.Load() != 5 {
		t.Fatalf("refused: %d %s, %d upstream calls", resp.StatusCode, b, hits.Load())
	}
	if resp := send(strict, "GET", "/v1/models"); resp.StatusCode != 200 || hits.Load() != 6 {
		t.Fatalf("GET /v1/models through the strict client: %d", resp.StatusCode)
	}
	for _, path := range []string{"/v1/responses/compact", "/v1/images/variations", "/v1/batches", "/v1/videos", "/v1/fine_tuning/jobs"} {
		if resp := send(strict, "POST", path); resp.StatusCode != 400 || hits.Load() != 6 {
			t.Fatalf("POST %s through the strict client: %d, %d upstream calls", path, resp.StatusCode, hits.Load())
		}
	}
}
