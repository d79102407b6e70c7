package middleware

import "context"

type attemptNoteKey struct{}

// AttemptNoter keeps a per-call record of the provider attempts sent
// below it by layers that send several for one call (retry, fallback): a
// budget composed by hand above them, which no [Meter] under it tells of
// each attempt, reads that record when it settles, and admits each
// attempt more before it is sent. A layer answers Value(key) with its
// AttemptNoter when [IsAttemptNoteKey](key) holds, in the context it calls
// the layers below with.
type AttemptNoter interface {
	// NoteAttempt records one attempt sent below: req as sent, how it
	// ended (resp, err), and where a Meter under it recorded it: in ci,
	// from its since-th attempt on (none when ci.AttemptCount() is
	// still since: the noter bills it by the Meter's rule,
	// [AttemptUsage]).
	NoteAttempt(ctx context.Context, req *Request, resp *Response, err error, ci *CallInfo, since int)
	// Noted returns how many attempts were noted so far, of hedged
	// attempts or of the others as ctx is one or not ([HedgedAttempt]: a
	// hedge runs beside the call's attempt): a layer above another that
	// notes (a fallback above a retry) notes none of its own.
	Noted(ctx context.Context) int
	// AdmitAttempt admits req, about to be sent as another attempt of
	// the call (a fallback to another model, a hedge), beside what the
	// call holds: nil when it may be sent, else why not (a budget's
	// *ExceededError).
	AdmitAttempt(ctx context.Context, req *Request) error
}

// IsAttemptNoteKey reports whether key is the one [NoteAttempt] and
// [AdmitAttempt] look up an [AttemptNoter] with.
func IsAttemptNoteKey(key any) bool {
	_, ok := key.(attemptNoteKey)
	return ok
}

// AttemptMark is where a call's attempt records stood before an attempt
// ([MarkAttempt]).
type AttemptMark struct {
	noter    AttemptNoter
	ci       *CallInfo
	recorded int // attempts the Meter had recorded in ci
	noted    int // attempts noter had been told of
}

// MarkAttempt returns where the attempt records of ctx's call stand, before
// an attempt a retry or fallback layer sends: [NoteAttempt] then tells the
// call's [AttemptNoter] of it. Without a noter it costs one lookup.
func MarkAttempt(ctx context.Context) AttemptMark {
	n, _ := ctx.Value(attemptNoteKey{}).(AttemptNoter)
	if n == nil {
		return AttemptMark{}
	}
	ci := CallInfoFrom(ctx)
	return AttemptMark{noter: n, ci: ci, recorded: ci.AttemptCount(), noted: n.Noted(ctx)}
}

// NoteAttempt tells the [AttemptNoter] of ctx's call (a budget above the
// layer) of the attempt that ended with resp and err since m, unless a
// layer below already did: with what a [Meter] recorded of it, else
// unmetered.
func NoteAttempt(ctx context.Context, m AttemptMark, req *Request, resp *Response, err error) {
	if m.noter == nil || m.noter.Noted(ctx) > m.noted {
		return
	}
	m.noter.NoteAttempt(ctx, req, resp, err, m.ci, m.recorded)
}

// NoteAttemptTo passes a note, of an attempt sent under ctx, on to the
// AttemptNoter above carries (the layer above the one that received it),
// if any.
func NoteAttemptTo(above, ctx context.Context, req *Request, resp *Response, err error, ci *CallInfo, since int) {
	if n, _ := above.Value(attemptNoteKey{}).(AttemptNoter); n != nil {
		n.NoteAttempt(ctx, req, resp, err, ci, since)
	}
}

// AdmitAttempt asks the [AttemptNoter] of ctx's call (a budget above the
// layer) whether req may be sent as another attempt of the call: nil when
// it may (or ctx has none), else why not.
func AdmitAttempt(ctx context.Context, req *Request) error {
	if n, _ := ctx.Value(attemptNoteKey{}).(AttemptNoter); n != nil {
		return n.AdmitAttempt(ctx, req)
	}
	return nil
}

// AttemptUsage returns what a provider attempt for req that ended with
// resp and err is billed, by the [Meter]'s rule: the model that answered
// (the requested one when the answer names none), the answer's usage,
// else what fill estimates for an attempt the provider billed without
// saying (marked estimated), at the service tier the answer or req names.
func AttemptUsage(req *Request, resp *Response, err error, fill UsageFunc) (model string, u Usage, estimated bool) {
	model = req.Model
	switch {
	case resp != nil && resp.FromCache:
		return model, Usage{}, false
	case resp != nil:
		if resp.Model != "" {
			model = resp.Model
		}
		u = resp.Usage
		if u.IsZero() || u.Implausible() {
			u = fill(req, resp, err)
			estimated = !u.IsZero()
		} else if err != nil {
			if out := fill(req, resp, err).OutputTokens; out > u.OutputTokens {
				u.OutputTokens = out
				estimated = true
			}
		}
	case UnansweredBilled(err):
		u = fill(req, nil, err)
		estimated = !u.IsZero()
	default:
		if _, billed := AnswerBilled(err); billed {
			u = fill(req, nil, err)
			estimated = !u.IsZero()
		}
	}
	return model, u.WithServiceTier(req), estimated
}
