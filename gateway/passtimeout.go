package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// A passed-through call the gateway polices (a Responses or embeddings
// call) is bounded as the chain bounds a chat call: by its team's
// timeouts (each attempt by those of its model's timeouts.models entry,
// the call's total by the one of the model its client asked for, extended
// to the longer one of an attempt's model) — total the call as a whole, its fallbacks included (an error
// matching timeout.ErrTotal, as a chat call's); call from send to the
// answer's last byte; for a streamed
// Responses call, first_token the wait for the stream's first event and
// idle the wait for each next one (an event with a data payload: SSE
// comments, ": keepalive", and blank lines are no event, as they are no
// chunk of a chat stream) — and by its run's deadline
// (limits.run_timeout from the run's start: the run X-Run-Id names, else
// the call's own). A bound that passes before the answer began (a
// stream's begins with its first event: see firstEvent) is the
// caller's OpenAI-shaped 504 "timeout" (a Responses or embeddings call's
// attempt that was sent charged its input, as the provider bills a prompt
// it received and as the chain bills a chat attempt that timed out; so is
// one whose client went away before its answer); one that passes while a
// stream is read ends the stream
// with an error event naming it (the call charged its reservation, as a
// cut stream is: the provider may have billed what it streamed); a JSON
// answer it cuts is a 504 too, charged its reservation.

// passBound is the clocks of one passed-through call. The run's deadline
// and the total timeout bound the call as a whole (ctx); the team's timeouts bound each of its
// attempts (a Responses call's fallback chain may make several, see
// responses_fallback.go): call from the attempt's send to its answer's
// last byte, first_token and idle for a stream (attempt).
type passBound struct {
	ctx       context.Context // the call's: the run's deadline ends it
	cancel    context.CancelCauseFunc
	run       *time.Timer        // the run's deadline (nil: none)
	stopTotal context.CancelFunc // releases the call's total timeout, all its attempts (nil: none)
	call      time.Duration      // an attempt's limit (0: none)
	callCause error
	firstLim  time.Duration // an attempt's first-token limit (0: none)
	first     error         // the first-token cause (nil: no first-token clock)
	idle      time.Duration // the idle limit (0: none)
	idleCause error
	// limits are the team's timeouts, whose timeouts.models entries give
	// each attempt the limits of its model (see begin); stream says the
	// call asked for a stream (first_token and idle are a stream's).
	limits policies.Timeouts
	stream bool

	mu      sync.Mutex
	actx    context.Context // the current attempt's, under ctx
	acancel context.CancelCauseFunc
	gap     *time.Timer // the attempt's first-token, then idle, clock (nil: none running)
	whole   *time.Timer // the attempt's call clock (nil: none)
	started bool        // the answer's first event (its first bytes, for an answer that is no stream) was read
	// left is what the idle clock has left until the stream's next event
	// (it runs only while a read waits for the upstream), and waitStart
	// when the current wait began.
	left      time.Duration
	waitStart time.Time
	// others are the attempts still running beside the current one (a
	// hedge's: begun with keep), with their call clocks.
	others []passAttempt
}

// passAttempt is an attempt running beside the current one.
type passAttempt struct {
	actx   context.Context
	cancel context.CancelCauseFunc
	whole  *time.Timer
	// idle and idleCause are the attempt's idle limit (its model's).
	idle      time.Duration
	idleCause error
}

// boundPass returns r with a context bounded by the team's timeouts and
// the run's deadline (the run of ctx, its run_timeout the team policy's)
// — its one attempt's; the call's own (the run's deadline only) when
// attempts says the caller begins each attempt itself (begin) —, and the
// call's bound, whose stop ends its clocks when the call is over (nil,
// and r as it is, when nothing bounds the call). stream says the call
// asked for a stream (the first-token and idle clocks are a stream's).
// The limits are those of the team's timeouts.models entry that matches
// the call's model (asked, the model its client asked for: its total,
// extended to the longer total of an attempt's model;
// model, the one its first attempt is sent to: that attempt's call,
// first-token and idle limits; a later attempt's are its own model's,
// see begin), else the team's timeouts.
func (s *Server) boundPass(ctx context.Context, r *http.Request, team, asked, model string, stream, attempts bool) (*http.Request, *passBound) {
	pol := s.pol.Policy(team)
	b := &passBound{limits: pol.Timeouts, stream: stream}
	b.setLimits(model)
	var runLeft time.Duration
	var runCause error
	if _, runTimeout := llmwrap.RunLimits(pol); runTimeout > 0 {
		if run := middleware.RunFrom(ctx); run != nil {
			runLeft, runCause = max(time.Until(run.Started().Add(runTimeout)), 0), &middleware.DeadlineError{Cause: guard.ErrRunDeadline, Limit: runTimeout}
		}
	}
	total := pol.Timeouts.For(asked).Total.Duration()
	if runCause == nil && total <= 0 && !b.limited() {
		return r, nil
	}
	parent := r.Context()
	if total > 0 {
		// The call as its caller sees it, its fallbacks included, as the
		// chain bounds a chat call (the timeout package's total
		// middleware). A deadline, not only a cancellation: what waits on a store
		// (go-redis bounds its reads by the context's deadline) gives up
		// at the call's total too.
		// It follows the model that answers: an attempt of a model with
		// a longer total extends it (see begin), from the call's start.
		var stop context.CancelFunc
		parent, stop = timeout.ExtendableTotal(parent, total)
		timeout.ExtendTotal(parent, pol.Timeouts.For(model).Total.Duration())
		b.stopTotal = stop
	}
	b.ctx, b.cancel = context.WithCancelCause(parent)
	if runCause != nil {
		b.run = time.AfterFunc(runLeft, func() { b.cancel(runCause) })
	}
	if attempts {
		return r.WithContext(b.ctx), b
	}
	return r.WithContext(b.begin(b.ctx, false, "")), b
}

// setLimits sets the attempt limits (call, and for a stream first_token
// and idle) to those of model; b.mu held, or b not yet shared.
func (b *passBound) setLimits(model string) {
	t := b.limits.For(model)
	b.call, b.firstLim, b.idle = t.Call.Duration(), 0, 0
	if b.stream {
		b.firstLim, b.idle = t.FirstToken.Duration(), t.Idle.Duration()
	}
	b.callCause, b.first, b.idleCause = nil, nil, nil
	if b.call > 0 {
		b.callCause = &middleware.DeadlineError{Cause: timeout.ErrCall, Limit: b.call}
	}
	if b.firstLim > 0 {
		b.first = &middleware.DeadlineError{Cause: timeout.ErrFirstToken, Limit: b.firstLim}
	}
	if b.idle > 0 {
		b.idleCause = &middleware.DeadlineError{Cause: timeout.ErrIdle, Limit: b.idle}
	}
}

// limited reports whether an attempt of some model has a limit: the
// team's timeouts, or one of its timeouts.models entries.
func (b *passBound) limited() bool {
	t := b.limits
	if t.Call > 0 || b.stream && (t.FirstToken > 0 || t.Idle > 0) {
		return true
	}
	for _, m := range t.Models {
		if m.Call > 0 || b.stream && (m.FirstToken > 0 || m.Idle > 0) {
			return true
		}
	}
	return false
}

// begin starts an attempt of the call: a context under parent (the
// call's, or one under it) with the attempt's clocks (call, first-token);
// the previous attempt's stopped, but when keep says it runs on beside
// this one (a hedge: see answer). model is the attempt's: its limits are
// that model's ("": those the call's first attempt got).
func (b *passBound) begin(parent context.Context, keep bool, model string) context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	if keep && b.actx != nil {
		b.others = append(b.others, passAttempt{b.actx, b.acancel, b.whole, b.idle, b.idleCause})
		b.whole = nil
	}
	if model != "" {
		b.setLimits(model)
		// The call's total follows the attempt's model when it has a
		// longer one (a fallback from gpt-4o to o3).
		timeout.ExtendTotal(parent, b.limits.For(model).Total.Duration())
	}
	b.stopClocks()
	if b.acancel != nil && !keep {
		b.acancel(nil)
	}
	actx, cancel := context.WithCancelCause(parent)
	b.actx, b.acancel, b.started = actx, cancel, false
	if b.callCause != nil {
		cause := b.callCause
		b.whole = time.AfterFunc(b.call, func() { cancel(cause) })
	}
	if b.first != nil {
		cause := b.first
		b.gap = time.AfterFunc(b.firstLim, func() { cancel(cause) })
	}
	return actx
}

// answer makes the attempt of actx, whose answer the client gets, the
// current one, whose clocks bound the reading of the answer, when another
// one ran beside it (a hedge's); the other attempts end.
func (b *passBound) answer(actx context.Context) {
	if b == nil || actx == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.others) == 0 || actx == b.actx {
		return
	}
	for i, o := range b.others {
		if o.actx != actx {
			continue
		}
		b.stopClocks()
		if b.acancel != nil {
			b.acancel(nil)
		}
		b.others[i] = passAttempt{}
		b.actx, b.acancel, b.whole = o.actx, o.cancel, o.whole
		b.idle, b.idleCause = o.idle, o.idleCause
		return
	}
}

// stopClocks stops the attempt's clocks; b.mu held.
func (b *passBound) stopClocks() {
	if b.gap != nil {
		b.gap.Stop()
		b.gap = nil
	}
	if b.whole != nil {
		b.whole.Stop()
		b.whole = nil
	}
}

// stop stops b's clocks: the call is over.
func (b *passBound) stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopClocks()
	for _, o := range b.others {
		if o.whole != nil {
			o.whole.Stop()
		}
		if o.cancel != nil {
			o.cancel(nil)
		}
	}
	b.others = nil
	if b.run != nil {
		b.run.Stop()
	}
	if b.stopTotal != nil {
		b.stopTotal()
	}
	b.cancel(nil)
}

// cause returns the bound that ended the call's current attempt (the
// run's deadline, which ends every attempt, included), nil if none did.
func (b *passBound) cause() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	ctx := b.actx
	b.mu.Unlock()
	if ctx == nil {
		ctx = b.ctx // no attempt was sent
	}
	if c := context.Cause(ctx); errors.Is(c, middleware.ErrTimeout) {
		return c
	}
	return nil
}

// watch returns modify with b's watch of the answer: for an answer that
// is not a stream, the first-token and idle clocks stop; the answer's body
// is read through b (watchedBody) before modify reads it.
func (b *passBound) watch(modify func(*http.Response) error) func(*http.Response) error {
	if b == nil {
		return modify
	}
	return func(resp *http.Response) error {
		if !isEventStream(resp) {
			b.mu.Lock()
			if b.gap != nil {
				b.gap.Stop()
				b.gap = nil
			}
			b.idle = 0
			b.mu.Unlock()
		}
		resp.Body = &watchedBody{src: resp.Body, b: b, events: isEventStream(resp)}
		return modify(resp)
	}
}

// firstEvent reads the stream resp of the current attempt up to the end
// of its first event (with a data payload) under the attempt's clocks,
// and gives resp its body back whole: what was read, then the rest. An
// attempt whose stream began (its headers, SSE comments) but sent no
// event when first_token (or call) passes has no answer yet: the error
// returned is then the bound's, and the attempt is retried or moves on
// as one whose headers came late does, never passed on as a stream that
// ends with the error. A read that fails otherwise (the stream cut before
// its first event) is kept in the body, after what was read, and nil
// returned: the stream is passed on as it came. Nothing is read when
// the call has no first-token clock or resp is no event stream.
func (b *passBound) firstEvent(resp *http.Response) error {
	if b == nil || !isEventStream(resp) {
		return nil
	}
	// (Under the lock: a hedge's attempt begins beside this one and sets
	// the limits of its model.)
	b.mu.Lock()
	first := b.first
	b.mu.Unlock()
	if first == nil {
		return nil
	}
	src := resp.Body
	w := &watchedBody{src: src, b: b, events: true}
	var buf []byte
	p := make([]byte, 4<<10)
	for {
		n, err := w.Read(p)
		buf = append(buf, p[:n]...)
		if b.begun() || err == nil && len(buf) > maxResponsesEvent {
			break // (an event longer than the gateway reads: passed on as it comes)
		}
		if err != nil {
			_ = src.Close()
			resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf), errorReader{err}))
			if b.cause() != nil {
				return err
			}
			return nil
		}
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), src), src}
	return nil
}

// begun reports whether the current attempt's answer began: its first
// event (its first bytes, for an answer that is no stream) was read.
func (b *passBound) begun() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

// held puts the answer of the current attempt, which the call reads whole
// before it decides to pass it on (a stream of a cascade's model held back
// to be checked), under b's clocks as watch puts an answer passed on: for
// a stream, the first-token clock stops at its first event and the idle
// clock bounds the wait for each next one; for an answer that is no
// stream, the first-token clock stops. (Read whole already: nothing to
// do.)
func (b *passBound) held(resp *http.Response) {
	if b == nil {
		return
	}
	switch resp.Body.(type) {
	case *answerBody, *watchedBody:
		return
	}
	if !isEventStream(resp) {
		b.mu.Lock()
		if b.gap != nil && !b.started {
			b.gap.Stop()
			b.gap = nil
		}
		b.mu.Unlock()
		return
	}
	resp.Body = &watchedBody{src: resp.Body, b: b, events: true}
}

// waiting starts the idle clock before a read of the answer's body, once
// its first event came (before it, the first-token clock runs from the
// send), with what it has left since the last event: only the time spent
// waiting for the upstream counts, not the time the caller takes to read
// what it was given.
func (b *passBound) waiting() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started || b.idle <= 0 || b.actx == nil || b.actx.Err() != nil {
		return
	}
	b.waitStart = time.Now()
	if b.gap == nil {
		cancel, cause := b.acancel, b.idleCause
		b.gap = time.AfterFunc(b.left, func() { cancel(cause) })
		return
	}
	b.gap.Reset(b.left)
}

// read stops the idle clock after a read of the answer's body; event says
// the read completed an event (for an answer that is no stream: gave
// bytes), which stops the first-token clock, or gives the idle clock its
// whole limit again.
func (b *passBound) read(event bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		if event && b.gap != nil {
			b.gap.Stop()
			b.gap = nil // the first-token clock; the idle one is made next
		}
		b.started, b.left = event, b.idle
		return
	}
	if b.gap != nil {
		b.gap.Stop()
	}
	if event {
		b.left = b.idle
	} else if !b.waitStart.IsZero() {
		b.left = max(b.left-time.Since(b.waitStart), 0)
	}
	b.waitStart = time.Time{}
}

// watchedBody is an answer's body read under b's clocks; a read that a
// bound ended fails with that bound's *middleware.DeadlineError. The
// clocks count the events of an event stream (events), else bytes.
type watchedBody struct {
	src    io.ReadCloser
	b      *passBound
	events bool
	scan   eventScan
}

func (w *watchedBody) Read(p []byte) (int, error) {
	w.b.waiting()
	n, err := w.src.Read(p)
	event := n > 0
	if w.events {
		event = w.scan.events(p[:n])
	}
	w.b.read(event)
	if err != nil && err != io.EOF {
		if c := w.b.cause(); c != nil {
			err = c
		}
	}
	return n, err
}

func (w *watchedBody) Close() error { return w.src.Close() }

// eventScan follows an event stream's lines (text/event-stream: lines
// ended by CRLF, LF or CR; an event ended by a blank line) to tell the
// events with a data payload — a data field with a value — from what
// keeps a connection alive without one (comments, blank lines, other
// fields alone).
type eventScan struct {
	state   uint8 // where the current line is: scanName, scanSpace, scanValue, scanRest
	name    int8  // how much of "data" the line's field name matched (-1: not "data")
	inLine  bool  // the current line has begun
	payload bool  // the current event has a data payload
	cr      bool  // the last byte was a CR (a LF after it ends the same line)
}

const (
	scanName  = iota // the field's name, up to ':'
	scanSpace        // after "data:": the optional space before the value
	scanValue        // the data field's value
	scanRest         // the rest of a line that says nothing more (a comment, another field)
)

// events scans p, the stream's next bytes, and reports whether an event
// with a data payload ended in them.
func (s *eventScan) events(p []byte) bool {
	ended := false
	for _, c := range p {
		if c == '\n' && s.cr {
			s.cr = false
			continue // the LF of a CRLF
		}
		s.cr = c == '\r'
		if c == '\n' || c == '\r' {
			if !s.inLine { // a blank line: the event's end
				ended = ended || s.payload
				s.payload = false
			}
			s.inLine, s.state, s.name = false, scanName, 0
			continue
		}
		s.inLine = true
		switch s.state {
		case scanName:
			switch {
			case c == ':' && s.name == 4:
				s.state = scanSpace
			case c == ':':
				s.state = scanRest // a comment (no name), or another field
			case s.name >= 0 && s.name < 4 && c == "data"[s.name]:
				s.name++
			default:
				s.name = -1
			}
		case scanSpace:
			s.state = scanValue
			if c != ' ' {
				s.payload, s.state = true, scanRest
			}
		case scanValue:
			s.payload, s.state = true, scanRest
		}
	}
	return ended
}
