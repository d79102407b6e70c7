package langchaingo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/tokenwise/tokenwise/middleware"
)

// streamMode says which of langchaingo's streaming funcs a call uses.
type streamMode uint8

const (
	streamContent   streamMode = 1 << iota // CallOptions.StreamingFunc
	streamReasoning                        // CallOptions.StreamingReasoningFunc
)

// innerMode returns the funcs the provider installs on the inner call for a
// caller that set caller (0: a middleware made the call a streaming one).
// StreamingFunc is what makes most backends stream, so it is installed only
// when the caller set it (or set neither); StreamingReasoningFunc is always
// installed along with it, so the chain sees the reasoning the backend
// streams even when the caller does not.
func innerMode(caller streamMode) streamMode {
	if caller == streamReasoning {
		return streamReasoning
	}
	return streamContent | streamReasoning
}

func modeOf(content, reasoning bool) streamMode {
	var m streamMode
	if content {
		m |= streamContent
	}
	if reasoning {
		m |= streamReasoning
	}
	return m
}

// nativeChunk is the Chunk.Native of the chunks the provider receives from
// the inner model: the exact arguments of one streaming func call, and the
// core fields the provider derived from them. When such a chunk reaches the
// caller unchanged, the caller's func gets the very same arguments, so a
// pass-through chain is invisible. It is immutable.
type nativeChunk struct {
	mode      streamMode // the funcs installed on the inner call
	from      streamMode // the func that delivered this chunk
	chunk     []byte
	reasoning []byte

	content       string
	reasoningText string
	toolCalls     []middleware.ToolCallDelta
}

// unchanged reports whether c still carries the core fields derived from n.
func (n *nativeChunk) unchanged(c *middleware.Chunk) bool {
	if c.Content != n.content || c.Reasoning != n.reasoningText || len(c.ToolCalls) != len(n.toolCalls) {
		return false
	}
	for i := range c.ToolCalls {
		if c.ToolCalls[i] != n.toolCalls[i] {
			return false
		}
	}
	return true
}

// errAbandoned is what a streaming func returns to an inner model still
// streaming after the provider gave up on its call (see generate).
var errAbandoned = errors.New("tokenwise/langchaingo: the call was given up on when its context ended")

// providerStream receives the inner model's streaming calls and turns them
// into core chunks. langchaingo calls the funcs of one call sequentially;
// mu keeps them from running after abandon (a model that ignored its
// context and streams on after the provider returned).
type providerStream struct {
	mu        sync.Mutex
	abandoned bool

	stream middleware.StreamFunc
	mode   streamMode
	// parseTools: the request offers tools, so a chunk may be langchaingo's
	// openai backend's JSON encoding of tool call deltas.
	parseTools bool
	calls      int   // tool calls started so far (openai delta protocol)
	err        error // the first error the core stream returned
	// lastEmpty: the last entry the inner model streamed carried nothing
	// (no content, reasoning or tool call delta): a finish, an
	// annotation or a usage chunk after the answer (see endedAfterAnswer).
	lastEmpty bool
	// acc assembles what the inner model streamed: the partial answer
	// returned (and billed) with the error of a stream that broke.
	acc middleware.Accumulator
}

// abandon stops the streaming funcs for good: a chunk being delivered
// finishes first, later ones are refused with errAbandoned. Once it has
// returned, nothing of ps changes.
func (p *providerStream) abandon() {
	p.mu.Lock()
	p.abandoned = true
	p.mu.Unlock()
}

func (p *providerStream) content(ctx context.Context, chunk []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.abandoned {
		return errAbandoned
	}
	p.lastEmpty = len(chunk) == 0
	c := middleware.Chunk{}
	n := &nativeChunk{mode: p.mode, from: streamContent, chunk: chunk}
	p.fill(&c, n, chunk)
	c.Native = n
	return p.send(ctx, c)
}

func (p *providerStream) reasoning(ctx context.Context, reasoning, chunk []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.abandoned {
		return errAbandoned
	}
	// Called after the content func for the same entry, when both are
	// installed: this is the entry's verdict.
	p.lastEmpty = len(chunk) == 0 && len(reasoning) == 0
	c := middleware.Chunk{Reasoning: string(reasoning)}
	n := &nativeChunk{mode: p.mode, from: streamReasoning, chunk: chunk, reasoning: reasoning, reasoningText: c.Reasoning}
	if p.mode&streamContent == 0 {
		// The only func installed: the content comes through here too. With
		// both installed, StreamingFunc already delivered it.
		p.fill(&c, n, chunk)
	}
	c.Native = n
	return p.send(ctx, c)
}

// endedAfterAnswer reports whether a stream the openai backend read without
// a finish reason (its last entry's finish_reason was null) still ran to
// its end, without NewTransport to see its [DONE]: the provider reported
// the answer's usage, with output, and the last entry carried nothing.
// That is OpenRouter's usage chunk, which has an entry for the choice,
// and Azure's content filter annotation after the finish. A stream cut
// inside its answer ends on content, or has no usage: servers report it
// once the answer is done (one that reports it cumulatively in every
// chunk, unasked, and is cut right after an empty entry, is read as
// complete: install NewTransport, which sees the [DONE]).
func (p *providerStream) endedAfterAnswer(u middleware.Usage) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastEmpty && u.OutputTokens > 0
}

// fill sets the chunk's content, or its tool call deltas.
func (p *providerStream) fill(c *middleware.Chunk, n *nativeChunk, chunk []byte) {
	if p.parseTools {
		if d, ok := p.toolDeltas(chunk); ok {
			c.ToolCalls, n.toolCalls = d, d
			return
		}
	}
	c.Content = string(chunk)
	n.content = c.Content
}

func (p *providerStream) send(ctx context.Context, c middleware.Chunk) error {
	p.acc.Add(c)
	err := p.stream(ctx, c)
	if err != nil && p.err == nil {
		p.err = err
	}
	return err
}

// wireToolCall is langchaingo's openai backend's encoding of a streamed
// tool call delta (openaiclient.ToolCall): the backend passes
// json.Marshal([]*ToolCall) to StreamingFunc. A delta starting a call has a
// type; one continuing the last call has type "" and only arguments.
type wireToolCall struct {
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type"`
	Function wireToolFunction `json:"function"`
}

type wireToolFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// toolDeltas decodes a chunk holding tool call deltas and numbers them the
// way the backend assembles them (a typed delta starts a new call, an
// untyped one appends arguments to the last).
func (p *providerStream) toolDeltas(chunk []byte) ([]middleware.ToolCallDelta, bool) {
	if len(chunk) < 2 || chunk[0] != '[' {
		return nil, false
	}
	var raw []struct {
		ID       *string           `json:"id"`
		Type     *string           `json:"type"`
		Function *wireToolFunction `json:"function"`
	}
	dec := json.NewDecoder(bytes.NewReader(chunk))
	dec.DisallowUnknownFields()
	if dec.Decode(&raw) != nil || dec.More() || len(raw) == 0 {
		return nil, false
	}
	for _, t := range raw {
		if t.Type == nil || t.Function == nil {
			return nil, false
		}
	}
	out := make([]middleware.ToolCallDelta, 0, len(raw))
	for _, t := range raw {
		if *t.Type == "" && t.Function.Arguments != "" {
			if p.calls == 0 {
				continue // the backend drops it too
			}
			out = append(out, middleware.ToolCallDelta{Index: p.calls - 1, Arguments: t.Function.Arguments})
			continue
		}
		d := middleware.ToolCallDelta{Index: p.calls, Name: t.Function.Name, Arguments: t.Function.Arguments}
		if t.ID != nil {
			d.ID = *t.ID
		}
		out = append(out, d)
		p.calls++
	}
	return out, true
}

// forwarder delivers the core chunks that reach the outermost side to the
// caller's streaming funcs.
type forwarder struct {
	fn   func(ctx context.Context, chunk []byte) error
	rfn  func(ctx context.Context, reasoningChunk, chunk []byte) error
	mode streamMode // the funcs the caller set
}

func (f *forwarder) send(ctx context.Context, c middleware.Chunk) error {
	if n, ok := c.Native.(*nativeChunk); ok && n.mode == innerMode(f.mode) && n.unchanged(&c) {
		// Untouched by the chain: the exact call the inner model made.
		switch {
		case n.from == streamContent && f.fn != nil:
			return f.fn(ctx, n.chunk)
		case n.from == streamReasoning && f.rfn != nil:
			return f.rfn(ctx, n.reasoning, n.chunk)
		}
		return nil
	}
	// A chunk a middleware made or changed (a cache replay, a rewritten
	// answer): deliver its text, and its tool calls the way the openai
	// backend encodes them.
	var reasoning []byte
	if c.Reasoning != "" {
		reasoning = []byte(c.Reasoning)
	}
	var content []byte
	if c.Content != "" {
		content = []byte(c.Content)
	}
	if err := f.emit(ctx, reasoning, content); err != nil {
		return err
	}
	if len(c.ToolCalls) == 0 {
		return nil
	}
	calls := make([]wireToolCall, 0, len(c.ToolCalls))
	for _, d := range c.ToolCalls {
		w := wireToolCall{ID: d.ID, Function: wireToolFunction{Name: d.Name, Arguments: d.Arguments}}
		switch {
		case d.ID != "" || d.Name != "":
			w.Type = "function" // starts a call
		case d.Arguments == "":
			continue // nothing to deliver
		}
		calls = append(calls, w)
	}
	if len(calls) == 0 {
		return nil
	}
	b, err := json.Marshal(calls)
	if err != nil {
		return err
	}
	return f.emit(ctx, nil, b)
}

func (f *forwarder) emit(ctx context.Context, reasoning, chunk []byte) error {
	if f.fn != nil && len(chunk) > 0 {
		if err := f.fn(ctx, chunk); err != nil {
			return err
		}
	}
	if f.rfn != nil && (len(reasoning) > 0 || len(chunk) > 0) {
		return f.rfn(ctx, reasoning, chunk)
	}
	return nil
}
