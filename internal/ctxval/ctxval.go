// Package ctxval is a context carrying one value in the same allocation
// as the value itself: what context.WithValue(ctx, K{}, &v) gives, for the
// hot paths (every call) that also need v allocated, in one allocation
// instead of two.
package ctxval

import "context"

// Ctx is its parent (deadline, cancellation, values) answering Value(k)
// for any k of type K with &Val, as context.WithValue(parent, k, &Val)
// does. Set Context to the parent.
type Ctx[K comparable, V any] struct {
	context.Context
	Val V
}

// Value returns &c.Val for a key of type K, the parent's value otherwise.
func (c *Ctx[K, V]) Value(key any) any {
	if _, ok := key.(K); ok {
		return &c.Val
	}
	return c.Context.Value(key)
}

// String names the context, as context.WithValue's String does.
func (c *Ctx[K, V]) String() string { return "tokenwise context value" }

// Only is the argument of ValueParent: a type of this package, so that no
// context outside tokenwise has the method by accident.
type Only struct{}

// ValueParent returns the parent: c adds a value to it and nothing else
// (its Done, Err and Deadline are the parent's). middleware.WithDeadline
// looks through such contexts for a deadline it can share a timer with.
func (c *Ctx[K, V]) ValueParent(Only) context.Context { return c.Context }
