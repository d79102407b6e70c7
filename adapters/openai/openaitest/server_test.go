package openaitest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// newClient returns a go-openai client for srv with its own HTTP transport,
// whose idle connections are closed when the test ends.
func newClient(t *testing.T, srv *openaitest.Server) *openai.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = &http.Client{Transport: tr}
	return openai.NewClientWithConfig(cfg)
}

func user(text string) openai.ChatCompletionMessage {
	return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: text}
}

// post sends a raw JSON body and returns the response with its body read.
func post(t *testing.T, url, body string) (*http.Response, string, error) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestCreateChatCompletionText(t *testing.T) {
	srv := openaitest.NewServer(t)
	reply := openaitest.Text("Hello there!")
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(reply)
	client := newClient(t, srv)

	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: "You are terse."},
			user("Say hello"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID != "chatcmpl-openaitest-1" || resp.Object != "chat.completion" || resp.Model != "gpt-4o-mini" || resp.Created == 0 {
		t.Errorf("envelope = %q %q %q %d", resp.ID, resp.Object, resp.Model, resp.Created)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("choices = %d, want 1", len(resp.Choices))
	}
	c := resp.Choices[0]
	if c.Message.Role != "assistant" || c.Message.Content != "Hello there!" || c.FinishReason != openai.FinishReasonStop {
		t.Errorf("choice = %+v", c)
	}
	// 3 + (4 + q(14)) + (4 + q(9)) = 18 prompt tokens; q(12) = 3 completion tokens.
	if u := resp.Usage; u.PromptTokens != 18 || u.CompletionTokens != 3 || u.TotalTokens != 21 {
		t.Errorf("usage = %+v, want 18/3/21", u)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d requests, want 1", len(reqs))
	}
	rec := reqs[0]
	if rec.Method != http.MethodPost || rec.Path != "/v1/chat/completions" || rec.Rule != 0 || rec.Seq != 1 {
		t.Errorf("recorded %s %s rule %d seq %d", rec.Method, rec.Path, rec.Rule, rec.Seq)
	}
	if got := rec.Header.Get("Authorization"); got != "Bearer sk-test" {
		t.Errorf("Authorization = %q", got)
	}
	if got := openaitest.UsageFor(rec.Chat, reply); got.PromptTokens != 18 || got.CompletionTokens != 3 {
		t.Errorf("UsageFor = %+v", got)
	}
	if rec.Chat.Messages[1].Content.String() != "Say hello" || !json.Valid(rec.Body) {
		t.Errorf("recorded chat = %+v", rec.Chat)
	}
}

func TestCreateChatCompletionToolCalls(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(
		openaitest.Call("call_1", "check_disk", `{"path":"/"}`),
		openaitest.Call("", "check_mem", `{}`),
	))
	client := newClient(t, srv)

	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{user("check the host")},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.Choices[0]
	if c.FinishReason != openai.FinishReasonToolCalls || c.Message.Content != "" {
		t.Errorf("choice = %+v", c)
	}
	want := []openai.ToolCall{
		{ID: "call_1", Type: "function", Function: openai.FunctionCall{Name: "check_disk", Arguments: `{"path":"/"}`}},
		{ID: "call_1_1", Type: "function", Function: openai.FunctionCall{Name: "check_mem", Arguments: `{}`}},
	}
	if len(c.Message.ToolCalls) != len(want) {
		t.Fatalf("tool calls = %+v", c.Message.ToolCalls)
	}
	for i, w := range want {
		if got := c.Message.ToolCalls[i]; got.ID != w.ID || got.Type != w.Type || got.Function != w.Function {
			t.Errorf("tool call %d = %+v, want %+v", i, got, w)
		}
	}

	// On the wire, content is null rather than "".
	_, body, err := post(t, srv.URL+"/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"again"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Choices []struct {
			Message map[string]json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if got := string(raw.Choices[0].Message["content"]); got != "null" {
		t.Errorf("content = %s, want null; body %s", got, body)
	}
}

// streamResult is a stream assembled the way a client would.
type streamResult struct {
	chunks    int
	role      string
	content   string
	reasoning string
	finish    openai.FinishReason
	calls     []openai.ToolCall
	usage     *openai.Usage
	withUsage int // chunks with a non-nil usage
	err       error
}

// collect reads the stream until an error; err is nil when it ended with
// io.EOF.
func collect(stream *openai.ChatCompletionStream) streamResult {
	var r streamResult
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			return r
		}
		r.chunks++
		if chunk.Usage != nil {
			r.withUsage++
			r.usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Role != "" {
				r.role = ch.Delta.Role
			}
			r.content += ch.Delta.Content
			r.reasoning += ch.Delta.ReasoningContent
			if ch.FinishReason != "" {
				r.finish = ch.FinishReason
			}
			for _, tc := range ch.Delta.ToolCalls {
				i := *tc.Index
				for len(r.calls) <= i {
					r.calls = append(r.calls, openai.ToolCall{})
				}
				if tc.ID != "" {
					r.calls[i].ID, r.calls[i].Type = tc.ID, tc.Type
				}
				r.calls[i].Function.Name += tc.Function.Name
				r.calls[i].Function.Arguments += tc.Function.Arguments
			}
		}
	}
}

func TestStreamParallelToolCallsWithUsage(t *testing.T) {
	srv := openaitest.NewServer(t)
	reply := openaitest.Reply{
		Reasoning: "Disk first, then memory.",
		Content:   "Checking both.",
		ToolCalls: []openaitest.ToolCall{
			openaitest.Call("call_a", "check_disk", `{"path":"/var/log"}`),
			openaitest.Call("call_b", "check_mem", `{"unit":"MiB"}`),
		},
		ChunkSize: 5,
	}
	srv.On(openaitest.Streaming()).Reply(reply)
	client := newClient(t, srv)

	stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:         "gpt-4o",
		Messages:      []openai.ChatCompletionMessage{user("check the host")},
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if ct := stream.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	r := collect(stream)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.role != "assistant" || r.content != reply.Content || r.reasoning != reply.Reasoning || r.finish != openai.FinishReasonToolCalls {
		t.Errorf("assembled %+v", r)
	}
	if len(r.calls) != 2 {
		t.Fatalf("calls = %+v", r.calls)
	}
	for i, want := range reply.ToolCalls {
		got := r.calls[i]
		if got.ID != want.ID || got.Type != "function" || got.Function.Name != want.Function.Name || got.Function.Arguments != want.Function.Arguments {
			t.Errorf("call %d = %+v, want %+v", i, got, want)
		}
	}
	if r.withUsage != 1 || r.usage == nil {
		t.Fatalf("%d chunks with usage, want 1", r.withUsage)
	}
	want := openaitest.UsageFor(srv.Requests()[0].Chat, reply)
	if r.usage.PromptTokens != want.PromptTokens || r.usage.CompletionTokens != want.CompletionTokens ||
		r.usage.TotalTokens != want.TotalTokens || r.usage.CompletionTokensDetails.ReasoningTokens != want.ReasoningTokens {
		t.Errorf("usage = %+v, want %+v", r.usage, want)
	}
	// q(24) reasoning = 6; completion = q(14) + 6 + (1 + q(10+19)) + (1 + q(9+14)) = 4 + 6 + 9 + 7.
	if want.ReasoningTokens != 6 || want.CompletionTokens != 26 {
		t.Errorf("rule gives %+v", want)
	}
}

// sseData returns the payloads of the "data:" lines of an SSE body.
func sseData(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for event := range strings.SplitSeq(body, "\n\n") {
		if event == "" {
			continue
		}
		data, ok := strings.CutPrefix(event, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("bad SSE event %q", event)
		}
		out = append(out, data)
	}
	return out
}

func TestStreamWireFormat(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{
		ToolCalls: []openaitest.ToolCall{
			openaitest.Call("call_a", "a", `{"x":1}`),
			openaitest.Call("call_b", "b", `{"y":2}`),
		},
		ChunkSize: 4,
	})

	for _, includeUsage := range []bool{false, true} {
		body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"go"}]}`
		if includeUsage {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"go"}]}`
		}
		resp, raw, err := post(t, srv.URL+"/chat/completions", body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type = %q", ct)
		}
		data := sseData(t, raw)
		if data[len(data)-1] != "[DONE]" {
			t.Fatalf("last event %q, want [DONE]", data[len(data)-1])
		}
		type delta struct {
			Role      string          `json:"role"`
			Content   json.RawMessage `json:"content"`
			ToolCalls []struct {
				Index    int     `json:"index"`
				ID       *string `json:"id"`
				Type     *string `json:"type"`
				Function struct {
					Name      *string `json:"name"`
					Arguments *string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		}
		type chunk struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta        delta   `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
			raw   map[string]json.RawMessage
		}
		var chunks []chunk
		for _, d := range data[:len(data)-1] {
			var c chunk
			if err := json.Unmarshal([]byte(d), &c); err != nil {
				t.Fatalf("chunk %s: %v", d, err)
			}
			if err := json.Unmarshal([]byte(d), &c.raw); err != nil {
				t.Fatal(err)
			}
			if c.Object != "chat.completion.chunk" {
				t.Errorf("object = %q", c.Object)
			}
			chunks = append(chunks, c)
		}
		// role; call a: header + 2 fragments; call b: header + 2 fragments; finish [; usage].
		wantN := 8
		if includeUsage {
			wantN = 9
		}
		if len(chunks) != wantN {
			t.Fatalf("include_usage=%t: %d chunks, want %d:\n%s", includeUsage, len(chunks), wantN, raw)
		}
		if d := chunks[0].Choices[0].Delta; d.Role != "assistant" || d.Content != nil {
			t.Errorf("first delta = %+v, want role only (content omitted for a tool-only reply)", d)
		}
		for i, call := range []string{"a", "b"} {
			head := chunks[1+3*i].Choices[0].Delta.ToolCalls[0]
			if head.Index != i || head.ID == nil || *head.ID != "call_"+call || *head.Type != "function" ||
				*head.Function.Name != call || *head.Function.Arguments != "" {
				t.Errorf("call %d header = %+v", i, head)
			}
			args := ""
			for _, c := range chunks[2+3*i : 4+3*i] {
				frag := c.Choices[0].Delta.ToolCalls[0]
				if frag.Index != i || frag.ID != nil || frag.Type != nil || frag.Function.Name != nil {
					t.Errorf("call %d fragment carries more than arguments: %+v", i, frag)
				}
				args += *frag.Function.Arguments
			}
			if want := `{"` + map[string]string{"a": "x", "b": "y"}[call] + `":` + map[string]string{"a": "1", "b": "2"}[call] + `}`; args != want {
				t.Errorf("call %d arguments = %q, want %q", i, args, want)
			}
		}
		fin := chunks[7].Choices[0].FinishReason
		if fin == nil || *fin != "tool_calls" || chunks[6].Choices[0].FinishReason != nil {
			t.Errorf("finish reasons wrong")
		}
		for i, c := range chunks {
			_, has := c.raw["usage"]
			switch {
			case !includeUsage && has:
				t.Errorf("chunk %d has usage without include_usage", i)
			case includeUsage && i < 8 && string(c.Usage) != "null":
				t.Errorf("chunk %d usage = %s, want null", i, c.Usage)
			}
		}
		if includeUsage {
			last := chunks[8]
			if string(last.raw["choices"]) != "[]" || !strings.Contains(string(last.Usage), `"prompt_tokens":8`) {
				t.Errorf("usage chunk = %v", last.raw)
			}
		}
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name       string
		reply      openaitest.Reply
		status     int
		errType    string
		code       any // go-openai decodes a null code as 0
		message    string
		retryAfter string
	}{
		{"rate limit", openaitest.RateLimited(1500 * time.Millisecond), 429, "requests", "rate_limit_exceeded", "Rate limit reached", "2"},
		{"insufficient quota", openaitest.InsufficientQuota(), 429, "insufficient_quota", "insufficient_quota", "exceeded your current quota", ""},
		{"server error", openaitest.ServerError(), 500, "server_error", 0, "The server had an error", ""},
		{"unavailable", openaitest.Unavailable(), 503, "server_error", 0, "overloaded", ""},
		{"context length", openaitest.ContextLengthExceeded(128000, 130001), 400, "invalid_request_error", "context_length_exceeded", "This model's maximum context length is 128000 tokens. However, your messages resulted in 130001 tokens.", ""},
		{"invalid key", openaitest.InvalidAPIKey(), 401, "invalid_request_error", "invalid_api_key", "Incorrect API key", ""},
		{"content filter", openaitest.ContentFilterError(), 400, "invalid_request_error", "content_filter", "content management policy", ""},
		{"status only", openaitest.Reply{Status: http.StatusBadGateway, RetryAfter: time.Second}, 502, "server_error", 0, "Bad Gateway", "1"},
		{"custom", openaitest.Error(http.StatusTeapot, "teapot_error", "short_and_stout", "I'm a teapot"), 418, "teapot_error", "short_and_stout", "I'm a teapot", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tt.reply)
			client := newClient(t, srv)
			req := openai.ChatCompletionRequest{Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")}}

			check := func(err error) {
				t.Helper()
				var apiErr *openai.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v (%T), want *openai.APIError", err, err)
				}
				if apiErr.HTTPStatusCode != tt.status || apiErr.Type != tt.errType || apiErr.Code != tt.code || !strings.Contains(apiErr.Message, tt.message) {
					t.Errorf("APIError = %+v (code %#v)", apiErr, apiErr.Code)
				}
			}
			_, err := client.CreateChatCompletion(context.Background(), req)
			check(err)
			_, err = client.CreateChatCompletionStream(context.Background(), req)
			check(err)

			resp, body, err := post(t, srv.URL+"/chat/completions", `{"model":"gpt-4o","messages":[]}`)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if !strings.Contains(body, `"param":`) || !strings.Contains(body, `"code":`) {
				t.Errorf("body %s lacks param or code", body)
			}
		})
	}
}

func TestRateLimitBodyIsOpenAIs(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.RateLimited(20 * time.Second))
	resp, body, err := post(t, srv.URL+"/chat/completions", `{"model":"gpt-4o","messages":[]}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "20" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	e := got["error"]
	if e["type"] != "requests" || e["code"] != "rate_limit_exceeded" || e["param"] != nil || !strings.HasPrefix(e["message"].(string), "Rate limit reached") {
		t.Errorf("body = %s", body)
	}
	if _, ok := e["param"]; !ok {
		t.Errorf("param missing, want null: %s", body)
	}
}

func TestMalformed(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Malformed())
	client := newClient(t, srv)
	req := openai.ChatCompletionRequest{Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")}}

	if _, err := client.CreateChatCompletion(context.Background(), req); err == nil {
		t.Error("CreateChatCompletion succeeded on a malformed body")
	}
	resp, body, err := post(t, srv.URL+"/chat/completions", `{"model":"gpt-4o","messages":[]}`)
	if err != nil || resp.StatusCode != 200 || json.Valid([]byte(body)) {
		t.Errorf("status %d, err %v, valid JSON %t", resp.StatusCode, err, json.Valid([]byte(body)))
	}

	stream, err := client.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	var syntaxErr *json.SyntaxError
	if _, err := stream.Recv(); !errors.As(err, &syntaxErr) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("second Recv err = %v (%T), want a JSON error", err, err)
	}
}

// TestCutStream documents what a client sees when the connection drops
// before "[DONE]": net/http reports the aborted chunked body as
// io.ErrUnexpectedEOF, and go-openai's Recv returns that error as is.
func TestCutStream(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.CutAfter(3))
	client := newClient(t, srv)

	stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	r := collect(stream)
	if r.chunks != 3 || !errors.Is(r.err, io.ErrUnexpectedEOF) {
		t.Errorf("got %d chunks and err %v, want 3 and io.ErrUnexpectedEOF", r.chunks, r.err)
	}

	_, body, err := post(t, srv.URL+"/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[]}`)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("raw read err = %v, want io.ErrUnexpectedEOF", err)
	}
	if strings.Contains(body, "[DONE]") || strings.Count(body, "data: ") != 3 {
		t.Errorf("raw body %q: want 3 events and no [DONE]", body)
	}

	// Non-streaming: half the JSON, then the connection drops.
	if _, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")},
	}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("CreateChatCompletion err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestEOFStream documents the dangerous case: a stream that ends cleanly
// without "[DONE]" looks complete to go-openai (Recv returns io.EOF), so
// only the missing terminator tells a truncated answer apart.
func TestEOFStream(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.EOFAfter(2))
	client := newClient(t, srv)

	stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	r := collect(stream)
	if r.err != nil || r.chunks != 2 || r.finish != "" {
		t.Errorf("got %d chunks, finish %q, err %v; want 2 chunks ended by io.EOF", r.chunks, r.finish, r.err)
	}

	_, body, err := post(t, srv.URL+"/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[]}`)
	if err != nil || strings.Contains(body, "[DONE]") {
		t.Errorf("raw body %q, err %v: want a clean end without [DONE]", body, err)
	}
}

// TestStall: a stalled answer, before its first byte or after two chunks,
// ends only at the client's deadline (50ms of synctest's fake time: the
// server is served in memory, as in a bubble it must be), and nothing of
// the server is left behind (synctest fails on a goroutine left blocked).
// Close releasing stalled handlers of the listening server is
// TestCloseReleasesStalledHandlers'.
func TestStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		cfg := openai.DefaultConfig("sk-test")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = &http.Client{Transport: srv.Transport()}
		client := openai.NewClientWithConfig(cfg)
		req := openai.ChatCompletionRequest{Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")}}

		// Before the first byte: only the client's deadline ends the call.
		srv.On(openaitest.LastContains("before")).Reply(openaitest.Stall())
		req.Messages = []openai.ChatCompletionMessage{user("before")}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := client.CreateChatCompletion(ctx, req)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stall before first byte: err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("stall before first byte: the call ended after %v, want the deadline's 50ms", d)
		}

		// Mid-stream: two chunks arrive, then nothing until the deadline.
		srv.On(openaitest.LastContains("mid")).Reply(openaitest.StallAfter(2))
		req.Messages = []openai.ChatCompletionMessage{user("mid")}
		start = time.Now()
		ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		stream, err := client.CreateChatCompletionStream(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r := collect(stream)
		stream.Close()
		if r.chunks != 2 || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("stall mid-stream: %d chunks, err %v; want 2 and context.DeadlineExceeded", r.chunks, r.err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("stall mid-stream: the call ended after %v, want the deadline's 50ms", d)
		}
	})
}

func TestCloseReleasesStalledHandlers(t *testing.T) {
	srv := openaitest.New()
	srv.Start()
	arrived := make(chan struct{})
	srv.On(func(*openaitest.ChatRequest) bool { close(arrived); return true }).Reply(openaitest.Stall())

	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	srv.Close() // must not wait for the client
	if err := <-done; err == nil {
		t.Error("the stalled request succeeded")
	}
}

func TestRules(t *testing.T) {
	srv := openaitest.NewServer(t)
	disk := srv.On(openaitest.Model("gpt-4o-mini"), openaitest.LastRole("user")).
		Reply(openaitest.Text("first"), openaitest.Text("second"))
	srv.On(openaitest.LastContains("once")).Reply(openaitest.Text("once")).Times(1)
	srv.On(openaitest.AnyContains("remember")).Reply(openaitest.Text("remembered"))
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("tool result seen"))
	srv.On(func(r *openaitest.ChatRequest) bool { return len(r.Tools) > 0 }).Reply(openaitest.Text("has tools"))
	srv.On(openaitest.Model("empty")) // no replies: never matches
	client := newClient(t, srv)

	ask := func(model string, tools []openai.Tool, msgs ...openai.ChatCompletionMessage) string {
		t.Helper()
		resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: model, Messages: msgs, Tools: tools})
		if err != nil {
			return "error: " + err.Error()
		}
		return resp.Choices[0].Message.Content
	}
	tool := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: "42%", ToolCallID: "call_1"}
	tools := []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{Name: "f"}}}

	steps := []struct {
		got, want string
	}{
		{ask("gpt-4o-mini", nil, user("a")), "first"},
		{ask("gpt-4o-mini", nil, user("b")), "second"},
		{ask("gpt-4o-mini", nil, user("c")), "second"}, // the last reply repeats
		{ask("gpt-4o", nil, user("just once")), "once"},
		{ask("gpt-4o", nil, user("remember this"), tool), "remembered"},
		{ask("gpt-4o", nil, user("x"), tool), "tool result seen"},
		{ask("gpt-4o", tools, user("x")), "has tools"},
	}
	for i, s := range steps {
		if s.got != s.want {
			t.Errorf("step %d: got %q, want %q", i, s.got, s.want)
		}
	}
	if disk.Hits() != 3 {
		t.Errorf("Hits = %d, want 3", disk.Hits())
	}

	// "once" is used up: the request falls through to the unmatched error.
	got := ask("empty", nil, user("just once"))
	for _, want := range []string{"status code: 400", "no rule matches request #8", `model "empty"`, `last "user" message "just once"`} {
		if !strings.Contains(got, want) {
			t.Errorf("unmatched error %q lacks %q", got, want)
		}
	}
	if reqs := srv.Requests(); reqs[len(reqs)-1].Rule != -1 || reqs[0].Rule != 0 || reqs[3].Rule != 1 {
		t.Errorf("recorded rules %d %d %d", reqs[0].Rule, reqs[3].Rule, reqs[len(reqs)-1].Rule)
	}

	srv.Default(openaitest.Text("fallback"))
	if got := ask("empty", nil, user("just once")); got != "fallback" {
		t.Errorf("with Default: %q", got)
	}
	if srv.Count() != 9 {
		t.Errorf("Count = %d, want 9", srv.Count())
	}
	srv.Reset()
	if srv.Count() != 0 || len(srv.Requests()) != 0 {
		t.Error("Reset kept requests")
	}
}

func TestPaths(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	base := strings.TrimSuffix(srv.URL, "/v1")
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

	for _, path := range []string{"/chat/completions", "/v1/chat/completions", "/openai/deployments/gpt/chat/completions", "/v1/chat/completions/"} {
		if resp, got, err := post(t, base+path, body); err != nil || resp.StatusCode != 200 || !strings.Contains(got, `"content":"ok"`) {
			t.Errorf("POST %s: %d %s %v", path, resp.StatusCode, got, err)
		}
	}
	if resp, got, _ := post(t, base+"/v1/completions", body); resp.StatusCode != 404 || !strings.Contains(got, "Invalid URL (POST /v1/completions)") {
		t.Errorf("POST /v1/completions: %d %s", resp.StatusCode, got)
	}
	resp, err := http.Get(srv.URL + "/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	for _, bad := range []string{`{"model":`, `[1,2]`} {
		if resp, got, _ := post(t, srv.URL+"/chat/completions", bad); resp.StatusCode != 400 || !strings.Contains(got, "could not parse the JSON body") {
			t.Errorf("body %s: %d %s", bad, resp.StatusCode, got)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 8 {
		t.Fatalf("recorded %d, want 8", len(reqs))
	}
	for _, r := range reqs[4:] {
		if r.Chat != nil || r.Rule != -1 {
			t.Errorf("%s %s: Chat %v, Rule %d", r.Method, r.Path, r.Chat, r.Rule)
		}
	}
}

func TestRequestDecoding(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	body := `{
		"model": "gpt-4o",
		"messages": [
			{"role": "system", "content": "be brief"},
			{"role": "user", "content": [{"type": "text", "text": "what is "}, {"type": "image_url", "image_url": {"url": "data:x"}}, {"type": "text", "text": "this?"}]},
			{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
			{"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
		],
		"tools": [{"type": "function", "function": {"name": "look", "description": "Look.", "parameters": {"type": "object"}}}],
		"tool_choice": "auto",
		"temperature": 0,
		"max_tokens": 100,
		"seed": 7,
		"stop": ["\n"],
		"n": "two",
		"future_field": {"nested": true}
	}`
	resp, _, err := post(t, srv.URL+"/chat/completions", body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, err %v", resp.StatusCode, err)
	}
	c := srv.Requests()[0].Chat
	if c.Model != "gpt-4o" || len(c.Messages) != 4 || len(c.Tools) != 1 || string(c.ToolChoice) != `"auto"` {
		t.Fatalf("decoded %+v", c)
	}
	if c.Temperature == nil || *c.Temperature != 0 || c.TopP != nil || *c.MaxTokens != 100 || *c.Seed != 7 || c.N != nil {
		t.Errorf("sampling fields: temperature %v top_p %v max_tokens %v seed %v n %v", c.Temperature, c.TopP, c.MaxTokens, c.Seed, c.N)
	}
	if got := c.Messages[1].Content.String(); got != "what is this?" || len(c.Messages[1].Content.Parts) != 3 {
		t.Errorf("parts content = %q (%d parts)", got, len(c.Messages[1].Content.Parts))
	}
	if !strings.Contains(string(c.Messages[1].Content.Parts[1].Raw), "data:x") {
		t.Errorf("image part raw = %s", c.Messages[1].Content.Parts[1].Raw)
	}
	if m := c.Messages[2]; m.Content.String() != "" || m.ToolCalls[0].Function.Name != "look" {
		t.Errorf("assistant message = %+v", m)
	}
	if m := c.Messages[3]; m.ToolCallID != "call_1" || m.Content.Text != "a cat" {
		t.Errorf("tool message = %+v", m)
	}
	// 3 + (4+q(8)) + (4+q(13)+85) + (4+q(4+2)+1) + (4+q(5)) + (8+q(4+5+17)) = 3+6+93+7+6+15.
	if got := openaitest.PromptTokens(c); got != 130 {
		t.Errorf("PromptTokens = %d, want 130", got)
	}
}

func TestUsageOverride(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{
		Content: "cached answer",
		Usage:   &openaitest.Usage{PromptTokens: 2000, CompletionTokens: 300, CachedTokens: 1536, ReasoningTokens: 256},
	})
	client := newClient(t, srv)
	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "o3-mini", Messages: []openai.ChatCompletionMessage{user("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := resp.Usage
	if u.PromptTokens != 2000 || u.CompletionTokens != 300 || u.TotalTokens != 2300 ||
		u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 1536 ||
		u.CompletionTokensDetails == nil || u.CompletionTokensDetails.ReasoningTokens != 256 {
		t.Errorf("usage = %+v %+v %+v", u, u.PromptTokensDetails, u.CompletionTokensDetails)
	}
}

func TestTokenRule(t *testing.T) {
	req := &openaitest.ChatRequest{Messages: []openaitest.Message{
		{Role: "user", Content: openaitest.Content{Text: "Hello, world!"}},
	}}
	if got := openaitest.PromptTokens(req); got != 11 {
		t.Errorf("PromptTokens = %d, want 11", got)
	}
	if got := openaitest.PromptTokens(nil); got != 0 {
		t.Errorf("PromptTokens(nil) = %d", got)
	}
	r := openaitest.Reply{Content: "Hi!", Reasoning: "greet back", ToolCalls: []openaitest.ToolCall{openaitest.Call("c", "wave", `{"hand":"left"}`)}}
	// q(3) + q(10) + 1 + q(4+15) = 1 + 3 + 1 + 5.
	if got := openaitest.CompletionTokens(r); got != 10 {
		t.Errorf("CompletionTokens = %d, want 10", got)
	}
	if got := openaitest.UsageFor(req, r); got != (openaitest.Usage{PromptTokens: 11, CompletionTokens: 10, TotalTokens: 21, ReasoningTokens: 3}) {
		t.Errorf("UsageFor = %+v", got)
	}
}

func TestChunkingKeepsRunes(t *testing.T) {
	srv := openaitest.NewServer(t)
	text := "héllo wörld, ünïcode ✓ done"
	srv.On().Reply(openaitest.Reply{Content: text, ChunkSize: 3})
	client := newClient(t, srv)
	stream, err := client.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model: "m", Messages: []openai.ChatCompletionMessage{user("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	r := collect(stream)
	// role + ceil(27 runes / 3) content chunks + finish.
	if r.err != nil || r.content != text || r.chunks != 1+9+1 {
		t.Errorf("content %q in %d chunks, err %v", r.content, r.chunks, r.err)
	}
}

func TestHeadersAndFinishReason(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{
		Content:      "partial",
		FinishReason: "length",
		Model:        "gpt-4o-2024-08-06",
		Header:       http.Header{"X-Ratelimit-Remaining-Requests": {"0"}},
	})
	client := newClient(t, srv)
	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{user("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].FinishReason != openai.FinishReasonLength || resp.Model != "gpt-4o-2024-08-06" {
		t.Errorf("finish %q model %q", resp.Choices[0].FinishReason, resp.Model)
	}
	if h := resp.Header(); h.Get("X-Ratelimit-Remaining-Requests") != "0" || h.Get("X-Request-Id") != "req_openaitest_1" {
		t.Errorf("headers %v", h)
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := openaitest.NewServer(t)
	limited := srv.On().Reply(openaitest.Text("limited")).Times(10)
	srv.On().Reply(openaitest.Text("rest"))
	client := newClient(t, srv)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	for range 40 {
		wg.Go(func() {
			resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
				Model: "m", Messages: []openai.ChatCompletionMessage{user("hi")},
			})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[resp.Choices[0].Message.Content]++
			mu.Unlock()
		})
		wg.Go(func() { _ = srv.Requests() })
	}
	wg.Wait()
	if counts["limited"] != 10 || counts["rest"] != 30 || limited.Hits() != 10 || srv.Count() != 40 {
		t.Errorf("counts %v, hits %d, recorded %d", counts, limited.Hits(), srv.Count())
	}
}

// TestStreamFlushesEachChunk reads the first event while the server still
// waits ChunkLatency before the next one.
func TestStreamFlushesEachChunk(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "slow stream", ChunkLatency: time.Hour})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	ctx, cancel := context.WithCancel(context.Background())
	req = req.WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"role":"assistant"`) {
		t.Errorf("first line %q, err %v", line, err)
	}
	cancel() // ends the hour-long wait
}
