package sse_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokenwise/tokenwise/sse"
)

// TestSendAfterTheHandlerReturnedWritesNothing: a run that leaves a
// goroutine behind (parallel tools, one of which still streams when
// another's failure ends the run) may call Send after the handler has
// answered; net/http's ResponseWriter must not be written to then (its
// buffers go back to a pool for other requests). Whichever way the
// handler ended (an error before the first event, the end of the stream,
// an error after it), a late Send returns an error and the client's
// response is what it was when the handler returned.
func TestSendAfterTheHandlerReturnedWritesNothing(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		first bool // an event sent before the run returns
		gone  bool // the client went away before the run returned
		err   error
	}{
		"client gone":                  {first: true, gone: true},
		"error before the first event": {err: errors.New("upstream down")},
		"end of the stream":            {first: true},
		"error after the first event":  {first: true, err: errors.New("cut")},
	} {
		t.Run(name, func(t *testing.T) {
			late := make(chan *sse.Stream, 1)
			ctx, leave := context.WithCancel(context.Background())
			defer leave()
			h := sse.Handler(func(_ context.Context, _ *http.Request, s *sse.Stream) error {
				if tc.first {
					if err := s.Send("first"); err != nil {
						return err
					}
				}
				if tc.gone {
					leave()
				}
				late <- s // the goroutine the run left behind sends later
				return tc.err
			})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
			before := rec.Body.String()
			s := <-late
			if err := s.Send("late"); err == nil {
				t.Errorf("a Send after the handler returned: no error")
			}
			if after := rec.Body.String(); after != before {
				t.Fatalf("the response was %q when the handler returned, %q after a late Send", before, after)
			}
		})
	}
}
