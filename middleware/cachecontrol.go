package middleware

import (
	"context"
	"time"
)

// CacheControl is what a request asks of response caches, carried by its
// context. Adapters set it from their framework's own convention (the
// OpenAI transport reads the HTTP request's Cache-Control header); package
// llmwrap/cache sets it with cache.WithBypass, WithRefresh and WithTTL.
// The zero value asks nothing.
type CacheControl struct {
	// NoStore: neither read nor write a cache (the call is a bypass).
	NoStore bool
	// NoCache: do not read a cache; call the provider and overwrite the
	// stored answer (the call is a refresh).
	NoCache bool
	// TTL stores the answer for this long instead of the configured TTL.
	// Zero: the configured TTL.
	TTL time.Duration
	// Source says who asked, for the reason in the run report and events
	// (for example "cache-control no-store" or "cache.WithBypass").
	Source string
	// ReplayFormat, when set, says that the caller renders a streamed hit
	// itself when the stored answer's native form (a *StoredNative) has
	// this Format: a cache then answers such a hit without calling the
	// request's Stream, and the caller streams the stored answer with
	// everything it carried (the OpenAI transport sets it to its
	// NativeFormat). It is no request to the cache.
	ReplayFormat string
}

// CachedChunk is the Native of the chunks a response cache replays to a
// streaming caller from a stored answer: the caller can tell a streamed
// hit from its first chunk (the OpenAI transport marks it with a header).
type CachedChunk struct{}

type cacheControlKey struct{}

// WithCacheControl returns a context whose calls carry c.
func WithCacheControl(ctx context.Context, c CacheControl) context.Context {
	return context.WithValue(ctx, cacheControlKey{}, c)
}

// CacheControlFrom returns the cache control carried by ctx (zero when
// none).
func CacheControlFrom(ctx context.Context) CacheControl {
	c, _ := ctx.Value(cacheControlKey{}).(CacheControl)
	return c
}

type keepNativeKey struct{}

// WithKeepNative returns a context under which a streaming call's Response
// must carry a Native a cache can keep (a [NativeMarshaler]): a response
// cache that will store the streamed answer sets it. Without it an adapter
// may spare itself keeping every chunk of a stream for that purpose.
func WithKeepNative(ctx context.Context) context.Context {
	return context.WithValue(ctx, keepNativeKey{}, true)
}

// KeepNative reports whether ctx carries [WithKeepNative].
func KeepNative(ctx context.Context) bool {
	v, _ := ctx.Value(keepNativeKey{}).(bool)
	return v
}
