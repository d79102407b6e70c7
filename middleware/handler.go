package middleware

import "context"

// Handler serves one chat completion request.
//
// For a streaming request (req.Stream != nil) Handle delivers every chunk
// through req.Stream before it returns, and the returned Response is the
// assembled answer. Implementations must be safe for concurrent use.
type Handler interface {
	Handle(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Middleware decorates a Handler.
type Middleware func(Handler) Handler

// Chain composes middlewares into one. The first middleware is the
// outermost: it sees the request first and the response last.
// Nil middlewares are skipped, so optional layers can be listed as nil.
func Chain(mws ...Middleware) Middleware {
	return func(next Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				next = mws[i](next)
			}
		}
		return next
	}
}

// Then returns the handler made of h decorated by mws, outermost first.
func Then(h Handler, mws ...Middleware) Handler { return Chain(mws...)(h) }
