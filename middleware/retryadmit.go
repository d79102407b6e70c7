package middleware

import "context"

type retryAdmitKey struct{}

// WithRetryAdmission makes the calls made with ctx ask admit before each
// retry of an attempt (a retry layer below calls [AdmitRetry]): the budget
// layer reserves there what the failed attempts were billed (a timed-out
// attempt's input, a cut answer), which its reservation of the call's
// worst case does not cover, and refuses the retry when the ledger cannot
// hold it, so that an attempt more never spends past a limit.
func WithRetryAdmission(ctx context.Context, admit func(context.Context) error) context.Context {
	return context.WithValue(ctx, retryAdmitKey{}, admit)
}

// RetryAdmitter admits the retry of an attempt, as the function given to
// [WithRetryAdmission] does.
type RetryAdmitter interface {
	AdmitRetry(ctx context.Context) error
}

// IsRetryAdmissionKey reports whether key is the one [AdmitRetry] looks up:
// a context type of a layer's own that carries its [RetryAdmitter] — in an
// allocation the layer makes anyway, sparing [WithRetryAdmission]'s —
// answers Value(key) with it.
func IsRetryAdmissionKey(key any) bool {
	_, ok := key.(retryAdmitKey)
	return ok
}

// AdmitRetry asks the admission of ctx ([WithRetryAdmission], or a
// [RetryAdmitter] its context carries) whether the call may be retried:
// nil when it may (or ctx has none), else why not.
func AdmitRetry(ctx context.Context) error {
	switch admit := ctx.Value(retryAdmitKey{}).(type) {
	case func(context.Context) error:
		return admit(ctx)
	case RetryAdmitter:
		return admit.AdmitRetry(ctx)
	}
	return nil
}
