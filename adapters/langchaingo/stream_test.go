package langchaingo_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

const answer = "Pomeranians are dogs: order Carnivora, family Canidae, genus Canis."

// collector records what a caller's streaming funcs receive.
type collector struct {
	mu        sync.Mutex
	chunks    []string
	reasoning []string // StreamingReasoningFunc's reasoning argument
	rchunks   []string // StreamingReasoningFunc's chunk argument
}

func (c *collector) fn(_ context.Context, chunk []byte) error {
	c.mu.Lock()
	c.chunks = append(c.chunks, string(chunk))
	c.mu.Unlock()
	return nil
}

func (c *collector) rfn(_ context.Context, reasoning, chunk []byte) error {
	c.mu.Lock()
	c.reasoning = append(c.reasoning, string(reasoning))
	c.rchunks = append(c.rchunks, string(chunk))
	c.mu.Unlock()
	return nil
}

func (c *collector) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.chunks, "")
}

// TestStreamingThroughChain: the caller's StreamingFunc receives the chunks
// through the chain, their concatenation is the answer the same request
// gets without streaming, the chain sees them as core chunks, and a
// pass-through chain delivers exactly what the plain client delivers.
func TestStreamingThroughChain(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: answer, ChunkSize: 5})
	var sp spy
	inner := newOpenAI(t, srv, "gpt-4o-mini", true)
	llm := twlc.New(twlc.Models{"gpt-4o-mini": inner}, sp.mw)
	msgs := []llms.MessageContent{human("Tell me about my taxonomy")}

	var wrapped, plain collector
	resp, err := llm.GenerateContent(t.Context(), msgs, llms.WithStreamingFunc(wrapped.fn))
	if err != nil {
		t.Fatal(err)
	}
	plainResp, err := inner.GenerateContent(t.Context(), msgs, llms.WithStreamingFunc(plain.fn))
	if err != nil {
		t.Fatal(err)
	}
	nonStream, err := llm.GenerateContent(t.Context(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if got := wrapped.text(); got != answer || resp.Choices[0].Content != answer || nonStream.Choices[0].Content != answer {
		t.Fatalf("streamed %q, response %q, non-stream %q", got, resp.Choices[0].Content, nonStream.Choices[0].Content)
	}
	if len(wrapped.chunks) < 10 || !reflect.DeepEqual(wrapped.chunks, plain.chunks) {
		t.Errorf("wrapped chunks %q\nplain chunks %q", wrapped.chunks, plain.chunks)
	}
	if !reflect.DeepEqual(resp, plainResp) {
		t.Errorf("response %s, plain %s", dump(resp), dump(plainResp))
	}
	core := sp.lastStream(t)
	if core.Message.Content != answer || core.FinishReason != middleware.FinishStop || core.Usage.OutputTokens == 0 {
		t.Errorf("chain saw %+v", core)
	}
}

// replaceAnswer is a middleware that hides the inner model's stream and
// answers with its own text instead, streamed with middleware.Replay: what
// a router hiding a cheap draft, or a cache replaying a hit, does.
func replaceAnswer(text string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			out := req.Stream
			inner := req.Clone()
			if out != nil {
				inner.Stream = func(context.Context, middleware.Chunk) error { return nil } // hide the draft
			}
			draft, err := next.Handle(ctx, inner)
			if err != nil {
				return nil, err
			}
			final := &middleware.Response{Model: draft.Model, FinishReason: middleware.FinishStop, Usage: draft.Usage,
				Message: middleware.Message{Role: middleware.RoleAssistant, Content: text}}
			if err := middleware.Replay(ctx, final, 4, out); err != nil {
				return nil, err
			}
			return final, nil
		})
	}
}

// TestStreamingReplacedAnswer: a middleware that replaces the answer
// controls what the caller's streaming funcs see.
func TestStreamingReplacedAnswer(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "cheap draft", Reasoning: "draft thoughts"})
	const final = "The final, regenerated answer."
	llm := twlc.New(twlc.Models{"m": newOpenAI(t, srv, "m", false)}, replaceAnswer(final))

	var c collector
	resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")},
		llms.WithStreamingFunc(c.fn), llms.WithStreamingReasoningFunc(c.rfn))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.text(); got != final || resp.Choices[0].Content != final {
		t.Fatalf("caller streamed %q and got %q, want %q", got, resp.Choices[0].Content, final)
	}
	if len(c.chunks) != (len(final)+3)/4 {
		t.Errorf("%d chunks, want Replay's pieces of 4 bytes: %q", len(c.chunks), c.chunks)
	}
	if strings.Join(c.rchunks, "") != final || strings.Join(c.reasoning, "") != "" {
		t.Errorf("reasoning func got %q / %q", c.reasoning, c.rchunks)
	}
	if strings.Contains(strings.Join(c.chunks, ""), "draft") {
		t.Error("the hidden draft reached the caller")
	}
	// GenerationInfo keeps reporting usage in the openai backend's keys.
	if u, ok := twlc.UsageFromGenerationInfo(resp.Choices[0].GenerationInfo); !ok || u.InputTokens == 0 {
		t.Errorf("GenerationInfo %v", resp.Choices[0].GenerationInfo)
	}
}

// TestStreamingReasoning: with both streaming funcs, reasoning and content
// reach the caller exactly as from the plain client, and the chain sees
// them apart.
func TestStreamingReasoning(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Reasoning: "Let me think about dogs.", Content: answer, ChunkSize: 7})
	var sp spy
	inner := newOpenAI(t, srv, "deepseek-reasoner", false)
	llm := twlc.New(twlc.Models{"deepseek-reasoner": inner}, sp.mw)
	msgs := []llms.MessageContent{human("q")}

	for _, tc := range []struct {
		name    string
		fn, rfn bool
	}{{"both", true, true}, {"content", true, false}, {"reasoning", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var w, p collector
			opts := func(c *collector) []llms.CallOption {
				var o []llms.CallOption
				if tc.fn {
					o = append(o, llms.WithStreamingFunc(c.fn))
				}
				if tc.rfn {
					o = append(o, llms.WithStreamingReasoningFunc(c.rfn))
				}
				return o
			}
			resp, err := llm.GenerateContent(t.Context(), msgs, opts(&w)...)
			if err != nil {
				t.Fatal(err)
			}
			plainResp, err := inner.GenerateContent(t.Context(), msgs, opts(&p)...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(w.chunks, p.chunks) || !reflect.DeepEqual(w.reasoning, p.reasoning) || !reflect.DeepEqual(w.rchunks, p.rchunks) {
				t.Errorf("wrapped %+v\nplain %+v", &w, &p)
			}
			if !reflect.DeepEqual(resp, plainResp) {
				t.Errorf("response %s, plain %s", dump(resp), dump(plainResp))
			}
			core := sp.lastStream(t)
			if core.Message.Content != answer || core.Message.Reasoning != "Let me think about dogs." {
				t.Errorf("chain assembled %+v", core.Message)
			}
			if _, r := sp.last(t); r.Message.Reasoning != "Let me think about dogs." {
				t.Errorf("core response reasoning %q", r.Message.Reasoning)
			}
		})
	}
}

// TestStreamingToolCalls: the openai backend's streamed tool call deltas
// become core ToolCallDeltas the chain can assemble, and the caller gets
// the backend's own chunks; a replayed tool call reaches the caller in the
// backend's JSON form.
func TestStreamingToolCalls(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{ToolCalls: []openaitest.ToolCall{
		openaitest.Call("call_1", "check_disk", `{"path":"/var/lib/docker"}`),
		openaitest.Call("call_2", "check_memory", `{"host":"db-1"}`),
	}, ChunkSize: 4})
	var sp spy
	inner := newOpenAI(t, srv, "gpt-4o-mini", false)
	llm := twlc.New(twlc.Models{"gpt-4o-mini": inner}, sp.mw)
	msgs := []llms.MessageContent{human("Why is the node slow?")}
	tools := llms.WithTools(weatherTools("check_disk", "check_memory"))

	var w, p collector
	resp, err := llm.GenerateContent(t.Context(), msgs, tools, llms.WithStreamingFunc(w.fn))
	if err != nil {
		t.Fatal(err)
	}
	plainResp, err := inner.GenerateContent(t.Context(), msgs, tools, llms.WithStreamingFunc(p.fn))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w.chunks, p.chunks) || !reflect.DeepEqual(resp, plainResp) {
		t.Errorf("wrapped %q %s\nplain %q %s", w.chunks, dump(resp), p.chunks, dump(plainResp))
	}
	want := []middleware.ToolCall{
		{ID: "call_1", Name: "check_disk", Arguments: `{"path":"/var/lib/docker"}`},
		{ID: "call_2", Name: "check_memory", Arguments: `{"host":"db-1"}`},
	}
	if core := sp.lastStream(t); !reflect.DeepEqual(core.Message.ToolCalls, want) || core.Message.Content != "" {
		t.Errorf("chain assembled %+v", core.Message)
	}
	if _, r := sp.last(t); !reflect.DeepEqual(r.Message.ToolCalls, want) || r.FinishReason != middleware.FinishToolCalls {
		t.Errorf("core response %+v", r)
	}

	// A middleware replaying a tool call answer: the caller's StreamingFunc
	// gets the calls in the backend's JSON form.
	replay := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := &middleware.Response{Model: req.Model, FinishReason: middleware.FinishToolCalls,
				Message: middleware.Message{Role: middleware.RoleAssistant, ToolCalls: want}}
			return r, middleware.Replay(ctx, r, 0, req.Stream)
		})
	}
	var rc collector
	resp, err = twlc.New(twlc.Models{"gpt-4o-mini": inner}, replay).GenerateContent(t.Context(), msgs, tools, llms.WithStreamingFunc(rc.fn))
	if err != nil {
		t.Fatal(err)
	}
	var got []middleware.ToolCall
	for _, c := range rc.chunks {
		var deltas []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct{ Name, Arguments string }
		}
		if err := json.Unmarshal([]byte(c), &deltas); err != nil {
			t.Fatalf("chunk %q: %v", c, err)
		}
		for _, d := range deltas {
			if d.Type != "" { // a new call, as the backend assembles them
				got = append(got, middleware.ToolCall{ID: d.ID, Name: d.Function.Name})
			}
			got[len(got)-1].Arguments += d.Function.Arguments
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replayed stream assembles to %+v", got)
	}
	if tc := resp.Choices[0].ToolCalls; len(tc) != 2 || tc[1].ID != "call_2" || tc[1].FunctionCall.Arguments != `{"host":"db-1"}` ||
		resp.Choices[0].FuncCall == nil || resp.Choices[0].FuncCall.Name != "check_disk" {
		t.Errorf("replayed response %s", dump(resp))
	}
}

// TestStreamingFuncError: an error from the caller's StreamingFunc stops
// the stream and is what GenerateContent returns.
func TestStreamingFuncError(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: answer, ChunkSize: 3})
	llm := twlc.New(twlc.Models{"m": newOpenAI(t, srv, "m", false)}, passThrough)
	errStop := errors.New("stop here")
	n := 0
	_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")},
		llms.WithStreamingFunc(func(context.Context, []byte) error {
			if n++; n == 3 {
				return errStop
			}
			return nil
		}))
	if !errors.Is(err, errStop) || n != 3 {
		t.Fatalf("err %v after %d chunks", err, n)
	}
}

func weatherTools(names ...string) []llms.Tool {
	var out []llms.Tool
	for _, n := range names {
		out = append(out, llms.Tool{Type: "function", Function: &llms.FunctionDefinition{
			Name: n, Description: "Run " + n,
			Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
		}})
	}
	return out
}

// TestStreamingChangedChunks: a middleware that edits chunks in flight (and
// leaves their Native as it was) is what the caller sees.
func TestStreamingChangedChunks(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "quiet words", ChunkSize: 3})
	shout := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			out := req.Stream
			r := req.Clone()
			r.Stream = func(ctx context.Context, c middleware.Chunk) error {
				c.Content = strings.ToUpper(c.Content)
				return out(ctx, c)
			}
			return next.Handle(ctx, r)
		})
	}
	llm := twlc.New(twlc.Models{"m": newOpenAI(t, srv, "m", false)}, shout)
	var c collector
	if _, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, llms.WithStreamingFunc(c.fn)); err != nil {
		t.Fatal(err)
	}
	if got := c.text(); got != "QUIET WORDS" {
		t.Fatalf("caller saw %q", got)
	}
}

// TestStreamingTurnedOff: when the chain serves a streaming call with a
// plain inner call (and streams the answer itself), the caller's funcs are
// not handed to the inner model.
func TestStreamingTurnedOff(t *testing.T) {
	in := &stub{resp: textResponse("whole answer", 3, 2)}
	plainInner := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			out := req.Stream
			r := req.Clone()
			r.Stream = nil
			resp, err := next.Handle(ctx, r)
			if err != nil {
				return nil, err
			}
			return resp, middleware.Replay(ctx, resp, 0, out)
		})
	}
	llm := twlc.New(twlc.Models{"m": in}, plainInner)
	var c collector
	resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, llms.WithStreamingFunc(c.fn))
	if err != nil {
		t.Fatal(err)
	}
	if in.lastCall(t).opts.StreamingFunc != nil {
		t.Error("the caller's StreamingFunc reached the inner model")
	}
	if !reflect.DeepEqual(c.chunks, []string{"whole answer"}) || resp.Choices[0].Content != "whole answer" {
		t.Fatalf("caller saw %q, got %q", c.chunks, resp.Choices[0].Content)
	}
}
