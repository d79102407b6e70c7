package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestHandleAllocations pins what the layer adds to a call it admits at
// one allocation beside the admission's own (Reserve and Done): the
// context below it, holding the call's ticket, the admission of its
// retries, the counter of the requests sent and the observer of the
// provider's limits (they were six: the context, the ticket, the counter,
// CountAttempts' context, the observer and WithObserver's context). It also
// checks that the context below still admits retries by the ticket and
// counts the requests the Meter sees sent.
func TestHandleAllocations(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{
		Models:  map[string]ratelimit.ModelLimit{"gpt-4o": {RPM: 1 << 40}},
		Teams:   map[string]ratelimit.TeamShare{"sre": {Weight: 1}, "*": {Weight: 1}},
		OnLimit: ratelimit.OnLimitReject,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := middleware.WithTeam(context.Background(), "sre")
	resp := &middleware.Response{}
	h := l.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return resp, nil
	}))
	req := &middleware.Request{Model: "gpt-4o"}
	admission := testing.AllocsPerRun(200, func() {
		tk, err := l.Reserve(ctx, "gpt-4o", "sre", 0)
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(ctx, -1, 1)
	})
	call := testing.AllocsPerRun(200, func() {
		if _, err := h.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	if call > admission+1 {
		t.Errorf("a call through the layer: %v allocations, the admission alone %v; want at most one more", call, admission)
	}

	// The context below admits retries by the ticket (each one more
	// request of the minute, refused once the minute is full), and
	// carries the counter the Meter adds the requests sent to, which the
	// ticket settles.
	rpm2 := func() *ratelimit.Limiter {
		l, err := ratelimit.New(ratelimit.Config{
			Models:  map[string]ratelimit.ModelLimit{"gpt-4o": {RPM: 2, Burst: time.Minute}},
			OnLimit: ratelimit.OnLimitReject,
		})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	meter := middleware.Meter(nil, nil)(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{}, nil
	}))
	l2 := rpm2()
	var retryErrs []error
	h2 := l2.Middleware()(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		for range 2 {
			retryErrs = append(retryErrs, middleware.AdmitRetry(ctx))
		}
		return meter.Handle(ctx, req)
	}))
	if _, err := h2.Handle(ctx, req); err != nil {
		t.Fatal(err)
	}
	if len(retryErrs) != 2 || retryErrs[0] != nil || retryErrs[1] == nil {
		t.Errorf("retries admitted under an rpm of 2: %v, want the first admitted and the second refused", retryErrs)
	}
	for _, sends := range []int{1, 2} {
		l3 := rpm2()
		h3 := l3.Middleware()(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			var resp *middleware.Response
			var err error
			for range sends {
				resp, err = meter.Handle(ctx, req)
			}
			return resp, err
		}))
		if _, err := h3.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
		_, err := l3.Reserve(ctx, "gpt-4o", "", 0)
		if full := err != nil; full != (sends == 2) {
			t.Errorf("a call that sent %d requests under an rpm of 2: the next refused %v (%v)", sends, full, err)
		}
	}
}
