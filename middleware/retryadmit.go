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

// AdmitRetry asks the admission of ctx ([WithRetryAdmission]) whether the
// call may be retried: nil when it may (or ctx has none), else why not.
func AdmitRetry(ctx context.Context) error {
	if admit, _ := ctx.Value(retryAdmitKey{}).(func(context.Context) error); admit != nil {
		return admit(ctx)
	}
	return nil
}
