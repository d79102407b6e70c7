package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestMain fails the package if a server, connection or stream goroutine
// outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// streamChunks is the number of content chunks of a streamed answer.
const streamChunks = 200

const answer = "web-5, web-6 and web-7 are above 45% on /var; rotate their logs."

// completion is the server's canned answer to a non-streaming request.
var completion = []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"` + answer + `","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2100,"completion_tokens":20,"total_tokens":2120,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}`)

// sseChunks are the server's streamed answer: streamChunks content chunks,
// the last with a finish reason, then [DONE]. usageChunk goes before [DONE]
// when the request asks for usage (stream_options.include_usage), as
// OpenAI does.
var (
	sseChunks  [][]byte
	usageChunk = []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":2100,"completion_tokens":200,"total_tokens":2300}}` + "\n\n")
	sseDone    = []byte("data: [DONE]\n\n")
)

func init() {
	for i := range streamChunks {
		finish := "null"
		if i == streamChunks-1 {
			finish = `"stop"`
		}
		sseChunks = append(sseChunks, []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" tok`+strconv.Itoa(i)+`"},"logprobs":null,"finish_reason":`+finish+`}],"usage":null}`+"\n\n"))
	}
}

// streamedText is the text of the streamed answer.
func streamedText() string {
	var sb strings.Builder
	for i := range streamChunks {
		sb.WriteString(" tok" + strconv.Itoa(i))
	}
	return sb.String()
}

// newServer starts the local OpenAI-compatible server: it reads the whole
// request and answers at once, a stream chunk by chunk with a flush after
// each (as a model streaming tokens does).
func newServer(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(completion)))
			w.Write(completion)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for _, c := range sseChunks {
			w.Write(c)
			f.Flush()
		}
		if bytes.Contains(body, []byte(`"include_usage":true`)) {
			w.Write(usageChunk)
		}
		w.Write(sseDone)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// newClient returns a go-openai client of srv: raw (a plain http.Client)
// when chain is nil, else through tokenwise with chain (which may be
// middleware.Chain(), no layers). Each side runs on its default
// connections, as a user's would: the raw client on a clone of
// http.DefaultTransport (what go-openai's default client uses; a pool of
// its own, closed at the end of the test), tokenwise on its default base
// transport (adapters/openai: a clone of http.DefaultTransport with a
// 64 KiB write buffer, shared by the process's tokenwise clients).
func newClient(tb testing.TB, srv *httptest.Server, tokenwise bool, chain middleware.Middleware) *goopenai.Client {
	tb.Helper()
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL + "/v1"
	if tokenwise {
		cfg.HTTPClient = twopenai.NewHTTPClient(chain)
	} else {
		base := http.DefaultTransport.(*http.Transport).Clone()
		tb.Cleanup(base.CloseIdleConnections)
		cfg.HTTPClient = &http.Client{Transport: base}
	}
	return goopenai.NewClientWithConfig(cfg)
}

// fullPolicy is the chain of the embedded default policy (guard, cache,
// routing, context, fallback and retry, budget, timeout, metering). The
// devops example policy is not used: its regenerate_final makes a second
// upstream call for every final answer, which is a feature, not overhead.
func fullPolicy(tb testing.TB) middleware.Middleware {
	tb.Helper()
	// Calls outside a run are warned about once; not part of the figures.
	mw, err := llmwrap.Build(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	return mw
}

// agentRequest returns an agent request of about 8 KB (a system prompt,
// eight tool calls with their results, three tools), whose last user
// message carries n so that every n is a distinct request (a cache miss):
// middlewaretest.AgentRequest (coreAgentRequest) as go-openai sends it.
func agentRequest(n int) goopenai.ChatCompletionRequest {
	core := coreAgentRequest(n)
	msgs := make([]goopenai.ChatCompletionMessage, len(core.Messages))
	for i, m := range core.Messages {
		msgs[i] = goopenai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content, ToolCallID: m.ToolCallID}
		for _, c := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, goopenai.ToolCall{ID: c.ID, Type: goopenai.ToolTypeFunction,
				Function: goopenai.FunctionCall{Name: c.Name, Arguments: c.Arguments}})
		}
	}
	tools := make([]goopenai.Tool, len(core.Tools))
	for i, t := range core.Tools {
		tools[i] = goopenai.Tool{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: t.Name, Description: t.Description, Parameters: json.RawMessage(t.Parameters)}}
	}
	return goopenai.ChatCompletionRequest{Model: core.Model, Messages: msgs, Temperature: float32(*core.Temperature), User: "u1", Tools: tools}
}

// conversation returns a 50-message conversation (a system prompt and 49
// turns of about 400 bytes), the same for every call.
func conversation() []goopenai.ChatCompletionMessage {
	msgs := []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleSystem, Content: "You are a support assistant for a hosting company. Answer briefly and precisely."}}
	for i := 1; i < 50; i++ {
		role := goopenai.ChatMessageRoleUser
		if i%2 == 0 {
			role = goopenai.ChatMessageRoleAssistant
		}
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: role, Content: fmt.Sprintf(
			"Turn %d: the deployment of service api-%d to region eu-west-%d finished with %d warnings; "+
				"the health check on port %d answered in %d ms, the error budget for the week is at %d%% and "+
				"the on-call engineer asked whether the canary should be promoted before the freeze on Friday. "+
				"Logs mention a retry storm between 10:%02d and 10:%02d that cleared without intervention.",
			i, i*7, i%3+1, i%5, 8000+i, 20+i, 90-i, i%60, (i+4)%60)})
	}
	return msgs
}

// newMessage returns the n-th new user message of 500 bytes.
func newMessage(n int) goopenai.ChatCompletionMessage {
	s := fmt.Sprintf("New question %d: after the last deploy, service api-%d returns HTTP 502 on roughly %d%% of requests from region eu-west-%d. "+
		"The load balancer shows healthy targets, yet the upstream connect time grew from %d ms to %d ms. "+
		"Which of the changes in the release notes could explain this, and what should we check first? ",
		n, n%97, n%13+1, n%3+1, 3+n%7, 40+n%50)
	for len(s) < 500 {
		s += "Please be specific. "
	}
	return goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleUser, Content: s[:500]}
}

// sides runs f as the sub-benchmarks "client=raw" and "client=tokenwise"
// (through chain; benchstat -col /client puts them side by side),
// both against the same server, and reports cpu-ns/op and, of it,
// gc-cpu-ns/op: the garbage collector's CPU time; thread-cpu-ns/op, the CPU
// time of the benchmark's own locked OS thread (the client's work without
// the server, the connection's goroutines or the collector's background
// workers); then scan-heap-MB, the
// live heap with pointers after the loop (the client still alive), which
// every later collection of the process scans.
func sides(b *testing.B, chain func(testing.TB) middleware.Middleware, f func(b *testing.B, c *goopenai.Client)) {
	srv := newServer(b)
	for _, side := range []string{"raw", "tokenwise"} {
		b.Run("client="+side, func(b *testing.B) {
			var mw middleware.Middleware
			if side == "tokenwise" {
				mw = chain(b)
			}
			c := newClient(b, srv, side == "tokenwise", mw)
			b.ReportAllocs()
			// The client's own work, in this goroutine's OS thread (see
			// threadCPUNanos), beside the process's.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start, ok := cpuNanos()
			tStart, tok := threadCPUNanos()
			gcStart := gcNanos()
			f(b, c)
			tEnd, tok2 := threadCPUNanos()
			if end, ok2 := cpuNanos(); ok && ok2 && b.N > 0 {
				b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(gcNanos()-gcStart)/float64(b.N), "gc-cpu-ns/op")
			}
			if tok && tok2 && b.N > 0 {
				b.ReportMetric(float64(tEnd-tStart)/float64(b.N), "thread-cpu-ns/op")
			}
			// After the figures above: what the client keeps alive.
			b.ReportMetric(float64(scanHeapBytes())/(1<<20), "scan-heap-MB")
			runtime.KeepAlive(c)
		})
	}
}

func noLayers(testing.TB) middleware.Middleware { return middleware.Chain() }

// loopCalls sends req(i) for i = 0, 1, ... and checks each answer.
func loopCalls(req func(int) goopenai.ChatCompletionRequest) func(*testing.B, *goopenai.Client) {
	return func(b *testing.B, c *goopenai.Client) {
		ctx := context.Background()
		n := 0
		for b.Loop() {
			resp, err := c.CreateChatCompletion(ctx, req(n))
			if err != nil {
				b.Fatal(err)
			}
			if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != answer {
				b.Fatalf("answer %+v", resp.Choices)
			}
			n++
		}
	}
}

// BenchmarkGoOpenAI8KBFullPolicyMiss: go-openai, an 8 KB agent request,
// the default policy's full chain, a cache miss every call (each request is
// distinct; the cache stays on and stores every answer).
func BenchmarkGoOpenAI8KBFullPolicyMiss(b *testing.B) {
	sides(b, fullPolicy, loopCalls(agentRequest))
}

// BenchmarkGoOpenAI8KBNoLayers: the same through a transport with an empty
// chain (decode, provider, render).
func BenchmarkGoOpenAI8KBNoLayers(b *testing.B) {
	sides(b, noLayers, loopCalls(agentRequest))
}

// BenchmarkGoOpenAIStream200: a streamed answer of 200 chunks to the 8 KB
// request, full policy, cache miss; ns/chunk and cpu-ns/chunk are the
// per-op figures divided by 200, and thread-cpu-ns/chunk the CPU time of
// the benchmark's own (locked) OS thread per chunk: the client's work,
// through tokenwise the chain's coroutine included (see threadCPUNanos).
func BenchmarkGoOpenAIStream200(b *testing.B) {
	sides(b, fullPolicy, func(b *testing.B, c *goopenai.Client) {
		ctx := context.Background()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start, _ := cpuNanos()
		tstart, tok := threadCPUNanos()
		n := 0
		for b.Loop() {
			if err := streamOnce(ctx, c, n); err != nil {
				b.Fatal(err)
			}
			n++
		}
		tend, tok2 := threadCPUNanos()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/streamChunks, "ns/chunk")
		if end, ok := cpuNanos(); ok {
			b.ReportMetric(float64(end-start)/float64(b.N)/streamChunks, "cpu-ns/chunk")
		}
		if tok && tok2 {
			b.ReportMetric(float64(tend-tstart)/float64(b.N)/streamChunks, "thread-cpu-ns/chunk")
		}
	})
}

// streamOnce streams the answer to agentRequest(n) and checks that it
// has streamChunks content chunks.
func streamOnce(ctx context.Context, c *goopenai.Client, n int) error {
	req := agentRequest(n)
	req.Stream = true
	s, err := c.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return err
	}
	defer s.Close()
	chunks := 0
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(r.Choices) > 0 && r.Choices[0].Delta.Content != "" {
			chunks++
		}
	}
	if chunks != streamChunks {
		return fmt.Errorf("%d content chunks, want %d", chunks, streamChunks)
	}
	return nil
}

// BenchmarkGoOpenAINewMessageIn50: a 50-message conversation, the same
// every call, with one new 500-byte user message appended (distinct every
// call: a cache miss); full policy. The tokenwise − raw difference is the
// incremental cost of a turn.
func BenchmarkGoOpenAINewMessageIn50(b *testing.B) {
	conv := conversation()
	msgs := make([]goopenai.ChatCompletionMessage, len(conv)+1)
	copy(msgs, conv)
	sides(b, fullPolicy, loopCalls(func(n int) goopenai.ChatCompletionRequest {
		msgs[len(conv)] = newMessage(n)
		return goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs}
	}))
}

// TestRawAndTokenwiseAgree checks that the two sides of the benchmarks do
// the same work: for each request of the suite, the raw client and the
// client through the full policy get the same answer from the server, and
// the agent request is about 8 KB.
func TestRawAndTokenwiseAgree(t *testing.T) {
	srv := newServer(t)
	raw := newClient(t, srv, false, nil)
	tw := newClient(t, srv, true, fullPolicy(t))
	ctx := context.Background()

	if body, err := json.Marshal(agentRequest(1)); err != nil || len(body) < 7000 || len(body) > 9500 {
		t.Fatalf("agent request of %d bytes (%v), want about 8 KB", len(body), err)
	}
	conv := append(conversation(), newMessage(1))
	if len(conv) != 51 || len(newMessage(1).Content) != 500 {
		t.Fatalf("conversation of %d messages, new message of %d bytes", len(conv), len(newMessage(1).Content))
	}
	for name, req := range map[string]goopenai.ChatCompletionRequest{
		"agent 8KB":    agentRequest(1),
		"conversation": {Model: "gpt-4o-mini", Messages: conv},
	} {
		var want string
		for i, c := range []*goopenai.Client{raw, tw} {
			resp, err := c.CreateChatCompletion(ctx, req)
			if err != nil {
				t.Fatalf("%s, client %d: %v", name, i, err)
			}
			if len(resp.Choices) != 1 {
				t.Fatalf("%s, client %d: %d choices", name, i, len(resp.Choices))
			}
			if i == 0 {
				want = resp.Choices[0].Message.Content
			} else if got := resp.Choices[0].Message.Content; got != want {
				t.Fatalf("%s: tokenwise answered %q, raw %q", name, got, want)
			}
		}
	}

	req := agentRequest(2)
	req.Stream = true
	for i, c := range []*goopenai.Client{raw, tw} {
		s, err := c.CreateChatCompletionStream(ctx, req)
		if err != nil {
			t.Fatalf("stream, client %d: %v", i, err)
		}
		var sb strings.Builder
		for {
			r, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("stream, client %d: %v", i, err)
			}
			if len(r.Choices) > 0 {
				sb.WriteString(r.Choices[0].Delta.Content)
			}
		}
		s.Close()
		if sb.String() != streamedText() {
			t.Fatalf("stream, client %d: got %q", i, sb.String())
		}
	}
}
