package cache

import (
	"context"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
)

// cached is the Native of replayed chunks.
var cached any = middleware.CachedChunk{}

// replay streams a cached answer to fn the way a provider streams one:
// the reasoning, the refusal and the content in pieces of at most size
// bytes (cut after a space or at a character boundary), each tool call by
// index (ID and name first, then its arguments in pieces), a chunk with the
// finish reason, and a last chunk with usage: the usage the answer cost
// when it was made, which is what a caller who asked for usage in the
// stream sees (the hit's Response keeps zero Usage: nothing was spent).
// Every chunk's Native is middleware.CachedChunk.
func replay(ctx context.Context, resp *middleware.Response, usage middleware.Usage, size int, fn middleware.StreamFunc) error {
	for s := resp.Message.Reasoning; s != ""; {
		n := piece(s, size)
		if err := fn(ctx, middleware.Chunk{Reasoning: s[:n], Native: cached}); err != nil {
			return err
		}
		s = s[n:]
	}
	for s := resp.Refusal; s != ""; {
		n := piece(s, size)
		if err := fn(ctx, middleware.Chunk{Refusal: s[:n], Native: cached}); err != nil {
			return err
		}
		s = s[n:]
	}
	for s := resp.Message.Content; s != ""; {
		n := piece(s, size)
		if err := fn(ctx, middleware.Chunk{Content: s[:n], Native: cached}); err != nil {
			return err
		}
		s = s[n:]
	}
	var d [1]middleware.ToolCallDelta
	for i, tc := range resp.Message.ToolCalls {
		d[0] = middleware.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Name}
		if err := fn(ctx, middleware.Chunk{ToolCalls: d[:], Native: cached}); err != nil {
			return err
		}
		for s := tc.Arguments; s != ""; {
			n := piece(s, size)
			d[0] = middleware.ToolCallDelta{Index: i, Arguments: s[:n]}
			if err := fn(ctx, middleware.Chunk{ToolCalls: d[:], Native: cached}); err != nil {
				return err
			}
			s = s[n:]
		}
	}
	if err := fn(ctx, middleware.Chunk{FinishReason: resp.FinishReason, Native: cached}); err != nil {
		return err
	}
	return fn(ctx, middleware.Chunk{Usage: &usage, Native: cached})
}

// piece returns the length of the next piece of s: at most size bytes,
// ending after the last space in that window when there is one, never in
// the middle of a UTF-8 sequence (a piece holds at least one character).
func piece(s string, size int) int {
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
