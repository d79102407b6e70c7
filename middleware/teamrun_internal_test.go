package middleware

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadlineSharesATimerThroughTeamRun: a Deadline under a lazy one
// with StartTeamRun's context between them stays unmade, as under value
// contexts, is made without the outer one (one timer), and ends at the
// earlier deadline with its cause, the outer one at its own.
func TestDeadlineSharesATimerThroughTeamRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		outerCause, innerCause := errors.New("outer"), errors.New("inner")
		outer := WithDeadline(context.Background(), time.Now().Add(2*time.Second), outerCause)
		defer outer.Stop()
		ctx, _ := StartTeamRun(outer, "sre", "call-1")
		inner := WithDeadline(ctx, time.Now().Add(time.Second), innerCause)
		defer inner.Stop()
		if outer.made() != nil || inner.made() != nil {
			t.Fatal("a Deadline under StartTeamRun's context was made at once")
		}
		<-inner.Done()
		if outer.made() != nil {
			t.Error("the inner Deadline made the outer one")
		}
		if inner.Err() != context.DeadlineExceeded || context.Cause(inner) != innerCause {
			t.Errorf("inner: %v, %v", inner.Err(), context.Cause(inner))
		}
		if outer.Err() != nil {
			t.Errorf("the outer ended with the inner: %v", outer.Err())
		}
		<-outer.Done()
		if context.Cause(outer) != outerCause {
			t.Errorf("outer: %v", context.Cause(outer))
		}
	})
}
