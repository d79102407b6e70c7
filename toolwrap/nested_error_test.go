package toolwrap_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// A tool whose error is a *toolwrap.Error of another call (a sub-agent
// that runs its own executor and returns a failed call's error) fails as
// its own call: the model reads the name of the tool it called, and the
// error carries the call's id (before: "tool lookup failed: no such
// host" for a call of "agent", with the inner call's id, and an inner
// timeout said "timed out after 0s" of the outer tool).
func TestToolReturningAnotherCallsErrorFailsAsItsOwnCall(t *testing.T) {
	t.Parallel()
	for name, inner := range map[string]*toolwrap.Error{
		"failed":    {Tool: "lookup", CallID: "inner_1", Err: errors.New("no such host")},
		"timed out": {Tool: "lookup", CallID: "inner_1", Timeout: time.Second, Err: toolwrap.ErrTimeout},
	} {
		for _, fail := range []bool{false, true} {
			ex, err := toolwrap.New([]toolwrap.Tool{{Name: "agent", Call: func(context.Context, string) (string, error) { return "", inner }}},
				toolwrap.Config{FailOnError: fail})
			if err != nil {
				t.Fatal(err)
			}
			res, err := ex.Execute(t.Context(), []middleware.ToolCall{{ID: "call_1", Name: "agent", Arguments: "{}"}})
			var te *toolwrap.Error
			if !errors.As(res[0].Err, &te) || te.CallID != "call_1" || te.Tool != "agent" {
				t.Errorf("%s: the call's error is %#v, not call_1's of agent", name, res[0].Err)
			}
			if want := "tool agent failed: " + inner.Error(); res[0].Content != want {
				t.Errorf("%s: the model reads %q, want %q", name, res[0].Content, want)
			}
			if !errors.Is(res[0].Err, inner) {
				t.Errorf("%s: %v does not match the tool's error", name, res[0].Err)
			}
			if fail && (!errors.As(err, &te) || te.CallID != "call_1") {
				t.Errorf("%s: FailOnError returned %v, not call_1's error", name, err)
			}
		}
	}
}
