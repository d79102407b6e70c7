package toolwrap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Func runs a tool with the arguments the model wrote (JSON text, or plain
// text for frameworks that pass a single string) and returns its result.
// It should return promptly once ctx is done.
type Func func(ctx context.Context, args string) (string, error)

// Meta is what the executor needs to know about a tool. The zero value is a
// read-only, non-cacheable tool without its own timeout.
type Meta struct {
	// SideEffects makes the tool run alone and in call order: it waits for
	// the earlier calls of the turn and the later ones wait for it.
	SideEffects bool
	// Idempotent allows caching the tool's results (see Config.CacheTTL,
	// which turns the cache on).
	Idempotent bool
	// Timeout bounds one call of the tool. Zero: the executor's timeout.
	Timeout time.Duration
}

// Tool is the core tool shape: a name, a description, the JSON Schema of
// its arguments, its metadata and the function that runs it. A Tool is a
// value; it is safe for concurrent use when its Call is.
type Tool struct {
	Name        string
	Description string
	Parameters  []byte // JSON Schema of the arguments; nil = none
	Meta        Meta
	Call        Func
}

// Spec returns the tool's description for a chat request.
func (t Tool) Spec() middleware.Tool {
	return middleware.Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters}
}

// Result is the outcome of one tool call, in the model's terms.
type Result struct {
	CallID string
	Name   string
	// Content is what the model is shown: the result, its excerpt when it
	// was offloaded to an artifact, or the observation of an error.
	Content string
	// Err is the failure behind an error observation (matching ErrTimeout,
	// ErrPanic, ErrUnknownTool or the tool's own error); nil on success.
	Err      error
	Duration time.Duration
	Cached   bool
	Artifact string // the artifact id when the result was offloaded
	Bytes    int    // size of the raw result
	// SavedTokens estimates the tokens the artifact kept out of the
	// conversation (raw result minus excerpt).
	SavedTokens int64
}

// Sentinel errors.
var (
	// ErrTimeout: a tool call ran out of its timeout. The context of the
	// call is cancelled with it as the cause, so both
	// context.DeadlineExceeded and ErrTimeout match.
	ErrTimeout = errors.New("tokenwise/toolwrap: tool timed out")
	// ErrPanic: a tool panicked, or the executor's own work for a call did
	// (an observer, an artifact store). Such errors match
	// middleware.ErrPanic too; the stack is in a middleware.PanicRecovered
	// event.
	ErrPanic = errors.New("tokenwise/toolwrap: tool panicked")
	// ErrUnknownTool: the model asked for a tool the executor does not have.
	ErrUnknownTool = errors.New("tokenwise/toolwrap: unknown tool")
	// ErrNotRun: a call of the turn was not run because an earlier one
	// (of the turn, or of an earlier turn of the run), given up on at its
	// timeout, was still running and it could not run alone: a call after
	// a tool with side effects that was given up on, or a call of a tool
	// with side effects after any call given up on.
	ErrNotRun = errors.New("tokenwise/toolwrap: not run: an earlier call timed out and is still running")
	// ErrNotFound: no artifact with that id in this run.
	ErrNotFound = errors.New("tokenwise/toolwrap: artifact not found")
	// ErrEvicted: the artifact was in this run, and its store, full,
	// evicted it for newer ones (a MemoryStore's bound, once the
	// *middleware.Run it was put in had ended). It matches ErrNotFound
	// too.
	ErrEvicted = fmt.Errorf("%w: evicted from its full store for newer artifacts", ErrNotFound)
	// ErrTooLarge: an artifact is larger than its store allows.
	ErrTooLarge = errors.New("tokenwise/toolwrap: artifact too large")
	// ErrStoreFull: a store that keeps what it holds (a run's store,
	// RunArtifacts; a MemoryStore, which keeps the artifacts of runs in
	// progress) has no room left for the artifact. It matches ErrTooLarge
	// too.
	ErrStoreFull = fmt.Errorf("%w: the artifact store is full of artifacts it keeps for runs in progress", ErrTooLarge)
	// ErrNoRun: an artifact put outside a run (middleware.StartRun). Every
	// call outside a run is its own artifact scope, which no later call can
	// read, so nothing is stored.
	ErrNoRun = errors.New("tokenwise/toolwrap: no run to keep the artifact in")
)

// Error is a failed tool call. Its Is matches the sentinel of its reason
// through Unwrap, and its message is the observation the model reads.
type Error struct {
	Tool    string
	CallID  string
	Timeout time.Duration // set for timeouts (and a call given up on at its timeout whose report panicked)
	Err     error
	// ended, for a call given up on (its timeout or its context ended)
	// while its tool still ran, is closed when the tool returns; givenAt
	// is when it was given up on.
	ended   <-chan struct{}
	givenAt time.Time
}

func (e *Error) Error() string {
	name := clip(e.Tool, maxToolName) // a name is the model's to write: any length
	var inner *Error
	switch {
	case errors.As(e.Err, &inner):
		// A tool's error that is another call's (a sub-agent's): its
		// timeout is not this call's.
		return fmt.Sprintf("tool %s failed: %v", name, e.Err)
	case errors.Is(e.Err, ErrTimeout):
		return fmt.Sprintf("tool %s timed out after %s", name, e.Timeout)
	case errors.Is(e.Err, ErrUnknownTool):
		return fmt.Sprintf("tool %s does not exist", name)
	case errors.Is(e.Err, ErrNotRun):
		return fmt.Sprintf("tool %s was not run: an earlier call timed out and is still running", name)
	}
	return fmt.Sprintf("tool %s failed: %v", name, e.Err)
}

// maxToolName bounds the tool name an error says.
const maxToolName = 128

func (e *Error) Unwrap() error { return e.Err }

// panicError carries a recovered panic value and its stack. It matches
// ErrPanic and middleware.ErrPanic.
type panicError struct {
	v     any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }
func (p *panicError) Is(target error) bool {
	return target == ErrPanic || target == middleware.ErrPanic
}
