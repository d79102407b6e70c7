package gateway

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// TestObjectOwnersOutliveAStoredResponse: a file, a vector store, an
// assistant… lives upstream until it is deleted, not 30 days as a stored
// response: its team is kept as long (in memory here), so another team
// is refused it on day 31 and after a year, and its own team is not; a
// response's record still ends with its 30 days.
func TestObjectOwnersOutliveAStoredResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		objects, responses := responseOwners{forever: true}, responseOwners{}
		objects.record(ctx, slog.Default(), "devops", "file-1")
		responses.record(ctx, slog.Default(), "devops", "resp_1")
		for _, after := range []time.Duration{31 * 24 * time.Hour, 365 * 24 * time.Hour} {
			time.Sleep(after)
			if ok, err := objects.allowed(ctx, "payments", "file-1"); ok || err != nil {
				t.Errorf("%v after: payments may use devops' file (%v %v), want refused", after, ok, err)
			}
			if mine, err := objects.owns(ctx, "devops", []string{"file-1"}); err != nil || !mine[0] {
				t.Errorf("%v after: devops' file is not its own (%v %v)", after, mine, err)
			}
		}
		if ok, _ := responses.allowed(ctx, "payments", "resp_1"); !ok {
			t.Errorf("a response's record outlived its 30 days")
		}
	})
}
