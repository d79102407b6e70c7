package middleware

import (
	"context"
	"slices"
)

type servedModelsKey struct{}

// WithServedModels marks the calls of ctx as servable by the named models
// only (names sorted, as slices.Sort leaves them; the slice is not
// copied and must not change): the caller's endpoint holds a client for
// each of them and for no other (the Models of a langchaingo Model). No
// layer moves such a call to a model outside the set: the router keeps the
// requested model where its rule, larger_window or regeneration names
// another, the cascade and the fallback chain skip the others, a budget
// refuses rather than downgrade to one, a compaction summarises with the
// request's model. A moved call would only fail with an unknown model.
func WithServedModels(ctx context.Context, sorted []string) context.Context {
	return context.WithValue(ctx, servedModelsKey{}, sorted)
}

// ServedModels returns the set WithServedModels gave ctx (sorted); ok is
// false when it gave none: any model serves.
func ServedModels(ctx context.Context) (sorted []string, ok bool) {
	sorted, ok = ctx.Value(servedModelsKey{}).([]string)
	return sorted, ok
}

// Serves reports whether a call of ctx may be sent to model: true unless
// WithServedModels gave ctx a set that does not hold it.
func Serves(ctx context.Context, model string) bool {
	set, ok := ServedModels(ctx)
	return !ok || InServed(set, model)
}

// InServed reports whether model is in sorted, a set ServedModels
// returned.
func InServed(sorted []string, model string) bool {
	_, found := slices.BinarySearch(sorted, model)
	return found
}
