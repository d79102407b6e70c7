package middleware_test

import (
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// A refusal carrying a TimeToWait gives it to middleware.RetryAfter.
type waitErr time.Duration

func (w waitErr) Error() string             { return "wait" }
func (w waitErr) TimeToWait() time.Duration { return time.Duration(w) }

func TestRetryAfterOfRefusals(t *testing.T) {
	t.Parallel()
	if d, ok := middleware.RetryAfter(waitErr(2 * time.Second)); !ok || d != 2*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := middleware.RetryAfter(waitErr(0)); ok {
		t.Error("a zero wait is no wait")
	}
}
