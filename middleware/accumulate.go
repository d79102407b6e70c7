package middleware

import (
	"context"
	"strings"
	"unicode/utf8"
)

// MaxToolCalls bounds the tool-call index an Accumulator accepts.
const MaxToolCalls = 1024

// Accumulator assembles streamed chunks into a Response. The zero value is
// ready to use. It is not safe for concurrent use.
type Accumulator struct {
	content   strings.Builder
	reasoning strings.Builder
	calls     []ToolCall
	args      []strings.Builder
	finish    string
	usage     *Usage
	chunks    int
}

// Add folds one chunk into the accumulated answer.
func (a *Accumulator) Add(c Chunk) {
	a.chunks++
	a.content.WriteString(c.Content)
	a.reasoning.WriteString(c.Reasoning)
	for _, d := range c.ToolCalls {
		if d.Index < 0 || d.Index >= MaxToolCalls {
			continue // adapters reject such indexes; never panic or grow without bound
		}
		for len(a.calls) <= d.Index {
			a.calls = append(a.calls, ToolCall{})
			a.args = append(a.args, strings.Builder{})
		}
		if d.ID != "" {
			a.calls[d.Index].ID = d.ID
		}
		if d.Name != "" {
			a.calls[d.Index].Name = d.Name
		}
		a.args[d.Index].WriteString(d.Arguments)
	}
	if c.FinishReason != "" {
		a.finish = c.FinishReason
	}
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
}

// Chunks returns how many chunks were added.
func (a *Accumulator) Chunks() int { return a.chunks }

// Usage returns the usage reported by the stream, if any chunk carried it.
func (a *Accumulator) Usage() (Usage, bool) {
	if a.usage == nil {
		return Usage{}, false
	}
	return *a.usage, true
}

// Response returns the answer assembled so far.
func (a *Accumulator) Response() *Response {
	r := &Response{
		Message: Message{
			Role:      RoleAssistant,
			Content:   a.content.String(),
			Reasoning: a.reasoning.String(),
		},
		FinishReason: a.finish,
	}
	if len(a.calls) > 0 {
		r.Message.ToolCalls = make([]ToolCall, len(a.calls))
		for i, c := range a.calls {
			c.Arguments = a.args[i].String()
			r.Message.ToolCalls[i] = c
		}
	}
	if a.usage != nil {
		r.Usage = *a.usage
	}
	return r
}

// Replay streams resp to fn as a sequence of chunks: the reasoning, the
// content in pieces of at most size bytes (0 = one piece), each tool call
// (ID and name first, then its arguments), and a final chunk with the
// finish reason and usage. Middlewares that answer without a provider (a
// cache hit, a regenerated answer) use it so that streaming callers still
// receive a stream.
func Replay(ctx context.Context, resp *Response, size int, fn StreamFunc) error {
	if fn == nil {
		return nil
	}
	if resp.Message.Reasoning != "" {
		if err := fn(ctx, Chunk{Reasoning: resp.Message.Reasoning}); err != nil {
			return err
		}
	}
	for s := resp.Message.Content; s != ""; {
		n := len(s)
		if size > 0 && n > size {
			n = size
			for n < len(s) && !utf8.RuneStart(s[n]) {
				n++
			}
		}
		if err := fn(ctx, Chunk{Content: s[:n]}); err != nil {
			return err
		}
		s = s[n:]
	}
	for i, tc := range resp.Message.ToolCalls {
		d := []ToolCallDelta{{Index: i, ID: tc.ID, Name: tc.Name}}
		if err := fn(ctx, Chunk{ToolCalls: d}); err != nil {
			return err
		}
		if tc.Arguments != "" {
			d := []ToolCallDelta{{Index: i, Arguments: tc.Arguments}}
			if err := fn(ctx, Chunk{ToolCalls: d}); err != nil {
				return err
			}
		}
	}
	u := resp.Usage
	return fn(ctx, Chunk{FinishReason: resp.FinishReason, Usage: &u})
}
