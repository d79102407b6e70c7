package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/middleware"
)

// benchRequest returns a realistic agent request of about 8 KB: a system
// prompt, a conversation with tool calls and results, and three tools.
func benchRequest(tb testing.TB) []byte {
	tb.Helper()
	line := "The service web-%d reported disk usage of %d%% on /var at 12:%02d; logs rotate daily and the archive is kept for 14 days. "
	var sys strings.Builder
	for i := range 6 {
		fmt.Fprintf(&sys, line, i, 40+i, i)
	}
	msgs := []map[string]any{
		{"role": "system", "content": "You are an SRE assistant. Use the tools, be terse, cite hosts. " + sys.String()},
		{"role": "user", "content": "Check the disks of the web tier and tell me which hosts need cleanup."},
	}
	for i := range 8 {
		id := fmt.Sprintf("call_%d", i)
		msgs = append(msgs,
			map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
				"id": id, "type": "function", "function": map[string]any{"name": "check_disk", "arguments": fmt.Sprintf(`{"host":"web-%d","path":"/var"}`, i)}}}},
			map[string]any{"role": "tool", "tool_call_id": id, "content": fmt.Sprintf("Filesystem Size Used Avail Use%% Mounted on\\n/dev/sda1 100G %dG %dG %d%% /var\\n", 40+i, 60-i, 40+i) + strings.Repeat("ok ", 160)},
		)
	}
	msgs = append(msgs, map[string]any{"role": "user", "content": "Summarise."})
	tool := func(name string) map[string]any {
		return map[string]any{"type": "function", "function": map[string]any{"name": name, "description": "Runs " + name + " on a host and returns its output.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"host": map[string]any{"type": "string"}, "path": map[string]any{"type": "string"}}, "required": []string{"host"}}}}
	}
	body, err := json.Marshal(map[string]any{
		"model": "gpt-4o-mini", "messages": msgs, "temperature": 0.2, "stream": false, "user": "u1",
		"tools": []any{tool("check_disk"), tool("rotate_logs"), tool("list_files")},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

const benchResponse = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"web-5, web-6 and web-7 are above 45% on /var; rotate their logs.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2100,"completion_tokens":20,"total_tokens":2120,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}`

func passThrough(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return next.Handle(ctx, req)
	})
}

var chain5 = middleware.Chain(passThrough, passThrough, passThrough, passThrough, passThrough)

// BenchmarkRequestPath is the transport's request path for an 8 KB body:
// decode, five pass-through layers, encode (an unchanged request is not
// re-encoded).
func BenchmarkRequestPath(b *testing.B) {
	body := benchRequest(b)
	var sent []byte
	h := chain5(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		sent = encodeRequest(req, encodeOptions{})
		return nil, nil
	}))
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := decodeRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		h.Handle(ctx, req)
	}
	if !bytes.Equal(sent, body) {
		b.Fatal("request re-encoded")
	}
}

// BenchmarkRequestPathRouted is the same with a router changing the model:
// the body is patched.
func BenchmarkRequestPathRouted(b *testing.B) {
	body := benchRequest(b)
	h := chain5(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		r := req.Clone()
		r.Model = "gpt-4o"
		encodeRequest(r, encodeOptions{})
		return nil, nil
	}))
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := decodeRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		h.Handle(ctx, req)
	}
}

// BenchmarkRequestDecodeMemo is the transport's decoding of the 8 KB body
// as an agent sends it turn after turn: a new body every call (a copy,
// with a distinct last message) whose other messages and tools the
// Transport's memo decoded before. BenchmarkRequestDecodeNoMemo is the
// same without the memo.
func BenchmarkRequestDecodeMemo(b *testing.B) {
	benchDecodeTurns(b, newMsgMemo(memoSlots, memoMaxBytes))
}

func BenchmarkRequestDecodeNoMemo(b *testing.B) { benchDecodeTurns(b, nil) }

func benchDecodeTurns(b *testing.B, memo *msgMemo) {
	body := benchRequest(b)
	i := bytes.Index(body, []byte(`"Summarise."`))
	bodies := make([][]byte, 64)
	for n := range bodies {
		bodies[n] = bytes.Clone(body)
		bodies[n][i+1] = byte('A' + n%26)
		bodies[n][i+2] = byte('a' + n/26)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	start, ok := cpuNanos()
	for b.Loop() {
		req, err := decodeRequestMemo(bodies[n%len(bodies)], memo)
		if err != nil || len(req.Messages) != 19 {
			b.Fatal(err)
		}
		n++
	}
	if end, ok2 := cpuNanos(); ok && ok2 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkRequestDecodeStdlib and BenchmarkRequestDecodeJSONv2 are the
// references: the same body decoded into go-openai's request type by
// encoding/json and by github.com/go-json-experiment/json.
func BenchmarkRequestDecodeStdlib(b *testing.B) {
	body := benchRequest(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var r goopenai.ChatCompletionRequest
		if err := json.Unmarshal(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestDecodeJSONv2(b *testing.B) {
	body := benchRequest(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var r goopenai.ChatCompletionRequest
		if err := jsonv2.Unmarshal(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

var benchChunk = []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" tokens"},"logprobs":null,"finish_reason":null}],"usage":null}`)

// BenchmarkDecodeChunk decodes one typical chunk.
func BenchmarkDecodeChunk(b *testing.B) {
	r := getReader(nil)
	defer putReader(r)
	var w Wire
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := r.chunk(&w, benchChunk, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeChunkStdlib is the reference: what go-openai itself does
// with every chunk, encoding/json into its stream response type.
func BenchmarkDecodeChunkStdlib(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var c goopenai.ChatCompletionStreamResponse
		if err := json.Unmarshal(benchChunk, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// cannedTransport answers every request with the same body.
type cannedTransport struct {
	ctype string
	body  []byte
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	n := int64(-1) // a stream: chunked
	if c.ctype == "application/json" {
		n = int64(len(c.body))
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {c.ctype}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: n, Request: r}, nil
}

// BenchmarkRoundTrip is a whole non-streaming RoundTrip of an 8 KB request
// through five pass-through layers, without a network: read and decode the
// request, run the chain, build the upstream request, decode the response
// and hand the caller the provider's bytes.
func BenchmarkRoundTrip(b *testing.B) {
	body := benchRequest(b)
	t := NewTransport(chain5, WithBaseTransport(cannedTransport{"application/json", []byte(benchResponse)}))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer k")
		resp, err := t.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// sseBody is an upstream stream of n content chunks, a finish chunk and the
// usage chunk, as OpenAI sends them with include_usage.
func sseBody(n int) []byte {
	var b bytes.Buffer
	head := `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":`
	fmt.Fprintf(&b, "data: %s{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head)
	for range n {
		fmt.Fprintf(&b, "data: %s{\"content\":\" tokens\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head)
	}
	fmt.Fprintf(&b, "data: %s{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n", head)
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":1000,"total_tokens":1020}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamChunk is the per-chunk cost of a stream: the provider
// reads the event line, decodes it, accumulates it and hands it to the
// transport's writer (pass-through layers do not wrap Stream, so chunks go
// straight to it), which renders it for a caller that did not ask for usage
// (the usage field is cut out of the provider's bytes).
func BenchmarkStreamChunk(b *testing.B) {
	const n = 1000
	body := sseBody(n)
	p := &Provider{cfg: newConfig(nil)}
	sw := &sseWriter{w: io.Discard}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		req := &middleware.Request{Model: "gpt-4o-mini", Stream: sw.send}
		resp, err := p.readStream(ctx, req, bytes.NewReader(body))
		if err != nil || resp.Usage.OutputTokens != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+3)), "ns/chunk")
}

// BenchmarkStreamRoundTrip is a whole streaming RoundTrip of 1000 chunks,
// the chain a coroutine driven by the caller's reads.
func BenchmarkStreamRoundTrip(b *testing.B) {
	const n = 1000
	body := benchRequest(b)
	body = bytes.Replace(body, []byte(`"stream":false`), []byte(`"stream":true`), 1)
	t := NewTransport(chain5, WithBaseTransport(cannedTransport{"text/event-stream", sseBody(n)}))
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", bytes.NewReader(body))
		resp, err := t.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+3)), "ns/chunk")
}

// BenchmarkStreamChunkKept is BenchmarkStreamChunk when a cache keeps the
// stream (middleware.WithKeepNative): each chunk read and merged into the
// body to store, which MarshalNative renders at the end.
func BenchmarkStreamChunkKept(b *testing.B) {
	const n = 1000
	body := sseBody(n)
	p := &Provider{cfg: newConfig(nil)}
	sw := &sseWriter{w: io.Discard}
	ctx := middleware.WithKeepNative(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		req := &middleware.Request{Model: "gpt-4o-mini", Stream: sw.send}
		resp, err := p.readStream(ctx, req, bytes.NewReader(body))
		if err != nil || resp.Usage.OutputTokens != 1000 {
			b.Fatal(err)
		}
		if _, _, ok := resp.Native.(middleware.NativeMarshaler).MarshalNative(); !ok {
			b.Fatal("not merged")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+3)), "ns/chunk")
}

// BenchmarkRoundTripTurns is the transport's whole non-streaming RoundTrip
// without layers and without a network, as an agent drives it: an 8 KB
// request whose last message is new every call (its other messages and
// tools the memo decoded before), the upstream's answer of 530 bytes with
// its Content-Length, and the caller reading the answer to the end.
func BenchmarkRoundTripTurns(b *testing.B) {
	body := benchRequest(b)
	i := bytes.Index(body, []byte(`"Summarise."`)) + 1
	t := NewTransport(middleware.Chain(), WithBaseTransport(cannedTransport{"application/json", []byte(benchResponse)}))
	buf := bytes.Clone(body)
	out := make([]byte, 4<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	start, ok := cpuNanos()
	for b.Loop() {
		// A new body every call, as go-openai marshals one.
		turn := append(buf[:0], body[:i]...)
		turn = strconv.AppendInt(turn, int64(n), 10)
		turn = append(turn, body[i:]...)
		buf = turn
		r, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", bytes.NewReader(turn))
		r.Header.Set("Accept", "application/json") // go-openai's headers
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer k")
		resp, err := t.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(out); err != nil {
				break
			}
		}
		resp.Body.Close()
		n++
	}
	if end, ok2 := cpuNanos(); ok && ok2 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkRequestDecodeGrowing is the transport's decoding of an agent's
// conversation as it grows: each call resends the previous call's
// messages and adds an assistant message and a tool result (from 4 to 60
// messages, then a new conversation).
func BenchmarkRequestDecodeGrowing(b *testing.B) {
	memo := newMsgMemo(memoSlots, memoMaxBytes)
	var bodies [][]byte
	msgs := []string{`{"role":"system","content":"You are an SRE assistant."}`, `{"role":"user","content":"Check the disks."}`}
	for i := 0; len(msgs) < 60; i++ {
		msgs = append(msgs,
			fmt.Sprintf(`{"role":"assistant","content":null,"tool_calls":[{"id":"call_%d","type":"function","function":{"name":"check_disk","arguments":"{\"host\":\"web-%d\"}"}}]}`, i, i),
			fmt.Sprintf(`{"role":"tool","tool_call_id":"call_%d","content":"/dev/sda1 100G %dG used on web-%d"}`, i, 40+i, i))
		bodies = append(bodies, []byte(`{"model":"gpt-4o-mini","messages":[`+strings.Join(msgs, ",")+`]}`))
	}
	b.ReportAllocs()
	n := 0
	start, ok := cpuNanos()
	for b.Loop() {
		if n%len(bodies) == 0 { // a new conversation: new bytes
			for i, body := range bodies {
				bodies[i] = bytes.Replace(body, []byte("SRE"), []byte(fmt.Sprintf("S%02d", n/len(bodies)%100)), 1)
			}
		}
		if _, err := decodeRequestMemo(bodies[n%len(bodies)], memo); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if end, ok2 := cpuNanos(); ok && ok2 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkRoundTripNewMessageIn50 is the transport's share of the bench
// module's PairedNewMessageIn50 without layers and without a network: a
// 50-message conversation go-openai marshals anew every call (here spliced, not marshalled), with
// one new 500-byte user message, the upstream's answer read to the end.
func BenchmarkRoundTripNewMessageIn50(b *testing.B) {
	msgs := []goopenai.ChatCompletionMessage{{Role: "system", Content: "You are a support assistant for a hosting company."}}
	for i := 1; i < 50; i++ {
		role := "user"
		if i%2 == 0 {
			role = "assistant"
		}
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: role, Content: fmt.Sprintf("Turn %d: the deployment of service api-%d finished with %d warnings; ", i, i*7, i%5) +
			strings.Repeat("the health check answered in time and the canary was promoted. ", 5)})
	}
	msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "user", Content: "New question : " + strings.Repeat("Please be specific. ", 24)})
	conv, err := json.Marshal(goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
	if err != nil {
		b.Fatal(err)
	}
	i := bytes.Index(conv, []byte("New question ")) + len("New question ")
	t := NewTransport(middleware.Chain(), WithBaseTransport(cannedTransport{"application/json", []byte(benchResponse)}))
	out := make([]byte, 4<<10)
	b.ReportAllocs()
	n := 0
	start, ok := cpuNanos()
	for b.Loop() {
		// A new body every call, as go-openai marshals one.
		body := make([]byte, 0, len(conv)+20)
		body = strconv.AppendInt(append(body, conv[:i]...), int64(n), 10)
		body = append(body, conv[i:]...)
		r, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", bytes.NewBuffer(body))
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer k")
		resp, err := t.RoundTrip(r)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(benchResponse)) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, resp.ContentLength)
		}
		for {
			if _, err := resp.Body.Read(out); err != nil {
				break
			}
		}
		resp.Body.Close()
		n++
	}
	if end, ok2 := cpuNanos(); ok && ok2 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}
