package middleware

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxToolCalls bounds the tool-call index an Accumulator accepts, and the
// number of calls it assembles.
const MaxToolCalls = 1024

// Accumulator assembles streamed chunks into a Response, the way the
// official OpenAI SDKs do: tool-call fragments are merged by their index,
// in whatever order they arrive (the fragments of several calls may be
// interleaved, and a call's ID and name may come in any of its fragments,
// or in every one). A fragment whose ID differs from the ID its index
// already has starts a new call at that index, as servers that give every
// parallel call index 0 and an ID of its own require. The assembled calls
// are ordered by index, and calls sharing an index by arrival.
//
// The zero value is ready to use. It is not safe for concurrent use.
type Accumulator struct {
	content   strings.Builder
	reasoning strings.Builder
	refusal   strings.Builder
	calls     []*accCall // in order of arrival; pointers: a Builder must not move
	slot      []int32    // by index: 1 + the position in calls of the index's current call; 0 none
	finish    string
	usage     *Usage
	chunks    int
}

// accCall is one tool call being assembled.
type accCall struct {
	index    int
	id, name string
	args     strings.Builder
}

// Add folds one chunk into the accumulated answer.
func (a *Accumulator) Add(c Chunk) {
	a.chunks++
	a.content.WriteString(c.Content)
	a.reasoning.WriteString(c.Reasoning)
	a.refusal.WriteString(c.Refusal)
	for i := range c.ToolCalls {
		a.addCall(&c.ToolCalls[i])
	}
	if c.FinishReason != "" {
		a.finish = c.FinishReason
	}
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
}

func (a *Accumulator) addCall(d *ToolCallDelta) {
	if d.Index < 0 || d.Index >= MaxToolCalls {
		return // adapters reject such indexes; never panic or grow without bound
	}
	if d.Index >= len(a.slot) {
		a.slot = append(a.slot, make([]int32, d.Index+1-len(a.slot))...)
	}
	var call *accCall
	if s := a.slot[d.Index]; s > 0 {
		call = a.calls[s-1]
		if d.ID != "" && call.id != "" && d.ID != call.id {
			call = nil // a new ID at a used index: a new call
		}
	}
	if call == nil {
		if len(a.calls) >= MaxToolCalls {
			return
		}
		call = &accCall{index: d.Index}
		a.calls = append(a.calls, call)
		a.slot[d.Index] = int32(len(a.calls))
	}
	if d.ID != "" {
		call.id = d.ID
	}
	if d.Name != "" {
		call.name = d.Name
	}
	call.args.WriteString(d.Arguments)
}

func byIndex(a, b *accCall) int { return a.index - b.index }

// Chunks returns how many chunks were added.
func (a *Accumulator) Chunks() int { return a.chunks }

// FinishReason returns the last finish reason a chunk carried ("" none
// yet): a stream whose choice has one has finished.
func (a *Accumulator) FinishReason() string { return a.finish }

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
		Refusal:      a.refusal.String(),
		FinishReason: a.finish,
	}
	if len(a.calls) > 0 {
		// By index; calls sharing an index in arrival order.
		order := a.calls
		if !slices.IsSortedFunc(order, byIndex) {
			order = slices.Clone(order)
			slices.SortStableFunc(order, byIndex)
		}
		calls := make([]ToolCall, len(order))
		for i, c := range order {
			calls[i] = ToolCall{ID: c.id, Name: c.name, Arguments: c.args.String()}
		}
		r.Message.ToolCalls = calls
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
	if resp.Refusal != "" {
		if err := fn(ctx, Chunk{Refusal: resp.Refusal}); err != nil {
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

// NextPiece returns the length of the next piece of s when text is
// streamed in pieces of at most size bytes: it ends after the last space or
// newline in the second half of that window when there is one, never in the
// middle of a UTF-8 sequence, and holds at least one character. Replays of
// cached answers use it so that a hit streams like a provider.
func NextPiece(s string, size int) int {
	if len(s) <= size {
		return len(s)
	}
	for i := size; i > size/2; i-- {
		if s[i-1] == ' ' || s[i-1] == '\n' {
			return i
		}
	}
	n := size
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if n == 0 { // a character longer than size
		_, n = utf8.DecodeRuneInString(s)
	}
	return n
}
