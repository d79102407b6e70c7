package cache

import (
	"context"

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
		n := middleware.NextPiece(s, size)
		if err := fn(ctx, middleware.Chunk{Reasoning: s[:n], Native: cached}); err != nil {
			return err
		}
		s = s[n:]
	}
	for s := resp.Refusal; s != ""; {
		n := middleware.NextPiece(s, size)
		if err := fn(ctx, middleware.Chunk{Refusal: s[:n], Native: cached}); err != nil {
			return err
		}
		s = s[n:]
	}
	for s := resp.Message.Content; s != ""; {
		n := middleware.NextPiece(s, size)
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
			n := middleware.NextPiece(s, size)
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
