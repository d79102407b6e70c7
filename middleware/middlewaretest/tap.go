package middlewaretest

import (
	"context"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// Tap is a pass-through middleware that remembers every call it saw: the
// request, the chunks streamed through it, the response and the error. The
// zero value is ready to use; it is safe for concurrent use.
type Tap struct {
	mu     sync.Mutex
	reqs   []*middleware.Request
	resps  []*middleware.Response
	errs   []error
	chunks []middleware.Chunk
}

// Middleware passes each call on and records it.
func (t *Tap) Middleware(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		t.mu.Lock()
		t.reqs = append(t.reqs, req)
		t.mu.Unlock()
		if req.Stream != nil {
			inner := req.Stream
			req = req.Clone()
			req.Stream = func(ctx context.Context, c middleware.Chunk) error {
				t.mu.Lock()
				t.chunks = append(t.chunks, c)
				t.mu.Unlock()
				return inner(ctx, c)
			}
		}
		resp, err := next.Handle(ctx, req)
		t.mu.Lock()
		t.resps = append(t.resps, resp)
		t.errs = append(t.errs, err)
		t.mu.Unlock()
		return resp, err
	})
}

// Last returns the request, response and error of the last call that
// returned; it fails tb when no call has.
func (t *Tap) Last(tb testing.TB) (*middleware.Request, *middleware.Response, error) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.resps) == 0 {
		tb.Fatal("the chain saw no call")
	}
	n := len(t.resps) - 1
	return t.reqs[n], t.resps[n], t.errs[n]
}

// Requests returns the requests seen so far, in order.
func (t *Tap) Requests() []*middleware.Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*middleware.Request(nil), t.reqs...)
}

// Chunks returns the chunks streamed through so far, in order.
func (t *Tap) Chunks() []middleware.Chunk {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]middleware.Chunk(nil), t.chunks...)
}
