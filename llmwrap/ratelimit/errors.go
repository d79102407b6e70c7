package ratelimit

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

var (
	// ErrLimited matches every refusal of a rate limit (*Error).
	ErrLimited = errors.New("tokenwise/ratelimit: over the rate limit")
	// ErrRejected matches refusals returned to the caller (on_limit reject,
	// or a wait that could not end in time): a fallback chain stops on them.
	ErrRejected = errors.New("tokenwise/ratelimit: rejected")
	// ErrMoveOn matches refusals of on_limit fallback: a fallback chain
	// moves on to its next model.
	ErrMoveOn = errors.New("tokenwise/ratelimit: moved on to the next model")
	// ErrStoreUnavailable matches refusals because the shared store could
	// not be reached (on_unavailable fail_closed).
	ErrStoreUnavailable = errors.New("tokenwise/ratelimit: rate-limit store unavailable")
)

// Error is a rate limit's refusal of a call. It matches
// middleware.ErrRateLimited, ErrLimited and ErrRejected or ErrMoveOn with
// errors.Is; RetryAfter (also given by middleware.RetryAfter) is how long
// the call would have had to wait (for a full concurrency limit, which
// frees when a call ends, a polling hint).
type Error struct {
	Model      string
	Team       string
	Limit      string // the limit that refused: "rpm", "tpm", "concurrency", "team tpm", "provider", "store", ...
	RetryAfter time.Duration
	Fallback   bool  // the call moves on to the next model of the chain
	Err        error // the store's failure, for Limit "store"
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tokenwise/ratelimit: rate limited before the provider")
	if e.Model != "" {
		fmt.Fprintf(&b, " (%s)", e.Model)
	}
	if e.Limit != "" {
		b.WriteString(": " + e.Limit)
	}
	if e.Team != "" {
		fmt.Fprintf(&b, " of team %q", e.Team)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Is matches middleware.ErrRateLimited, ErrLimited, ErrMoveOn (Fallback)
// or ErrRejected, and ErrStoreUnavailable for a store failure.
func (e *Error) Is(target error) bool {
	switch target {
	case middleware.ErrRateLimited, ErrLimited:
		return true
	case ErrMoveOn:
		return e.Fallback
	case ErrRejected:
		return !e.Fallback
	case ErrStoreUnavailable:
		return e.Err != nil
	}
	return false
}

// Unwrap returns the store's failure, if any.
func (e *Error) Unwrap() error { return e.Err }

// TimeToWait returns RetryAfter (read by middleware.RetryAfter).
func (e *Error) TimeToWait() time.Duration { return e.RetryAfter }
