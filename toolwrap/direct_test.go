package toolwrap_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// A turn whose calls all start at once under one timeout: a tool that
// ignores its context is given up on at the timeout, the others answer,
// every call is recorded once, and the stuck tool's goroutine ends when it
// returns (goleak, TestMain).
func TestParallelSharedTimeoutAbandonsStuckTool(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	returned := make(chan struct{})
	tools := []toolwrap.Tool{
		{Name: "fast", Call: func(context.Context, string) (string, error) { return "ok", nil }},
		{Name: "stuck", Call: func(context.Context, string) (string, error) {
			defer close(returned)
			<-release // ignores its context
			return "late", nil
		}},
		{Name: "polite", Call: func(ctx context.Context, _ string) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}},
	}
	ex, err := toolwrap.New(tools, toolwrap.Config{MaxParallel: 8, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, run := middleware.StartRun(t.Context(), "direct")
	calls := []middleware.ToolCall{{ID: "1", Name: "fast"}, {ID: "2", Name: "stuck"}, {ID: "3", Name: "polite"}, {ID: "4", Name: "nope"}}
	start := time.Now()
	res, err := ex.Execute(ctx, calls)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Execute took %v", d)
	}
	if res[0].Content != "ok" || res[0].Err != nil {
		t.Errorf("fast: %+v", res[0])
	}
	for _, i := range []int{1, 2} {
		var te *toolwrap.Error
		if !errors.Is(res[i].Err, toolwrap.ErrTimeout) || !errors.As(res[i].Err, &te) || te.Timeout != 50*time.Millisecond ||
			te.Tool != calls[i].Name || res[i].CallID != calls[i].ID {
			t.Errorf("call %d: %+v", i, res[i])
		}
	}
	if !errors.Is(res[3].Err, toolwrap.ErrUnknownTool) {
		t.Errorf("unknown tool: %+v", res[3])
	}
	close(release)
	<-returned
	if n := len(run.Tools()); n != len(calls) {
		t.Errorf("recorded %d calls, want %d", n, len(calls))
	}
}
