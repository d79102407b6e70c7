package budget

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/internal/deadlinecheck"
)

// TestRetryAdmissionIsAValueContextToDeadlines: a call deadline below the
// layer (the timeout layer's) under a deadline above it that nothing
// watches (the run guard's) shares that one's timer through the layer's
// context, as through a context.WithValue: the same allocations (the
// layer's context was opaque to middleware.WithDeadline, which made the
// run deadline real, with a timer of its own, for every call); and it
// still ends with the run deadline's Stop.
func TestRetryAdmissionIsAValueContextToDeadlines(t *testing.T) {
	deadlinecheck.ValueContext(t, func(ctx context.Context) context.Context { return &retryAdmission{Context: ctx} })
}
