package gateway

import (
	"context"
	"testing"
)

// TestStoredNoteIsItsCallsContext pins the chat call's storedNote as one
// allocation that is also its context (it was three: the note, the
// closure of its check and a context.WithValue), and that the context it
// is behaves as the one below it with the note as its storedKey value.
func TestStoredNoteIsItsCallsContext(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), other{}, "v"))
	s := &Server{}
	if n := testing.AllocsPerRun(100, func() { noteSink = withStoredNote(parent, s, "devops") }); n != 1 {
		t.Errorf("withStoredNote: %v allocations, want 1", n)
	}
	note := withStoredNote(parent, s, "devops")
	var ctx context.Context = note
	if got, _ := ctx.Value(storedKey{}).(*storedNote); got != note {
		t.Errorf("Value(storedKey{}) = %v, want the note", got)
	}
	if got := ctx.Value(other{}); got != "v" {
		t.Errorf("Value(other{}) = %v, want the parent's v", got)
	}
	if ctx.Done() != parent.Done() {
		t.Error("Done is not the parent's")
	}
	// A context below the note still finds the stored note, and ends
	// with the parent's.
	child, stop := context.WithCancel(ctx)
	defer stop()
	if got, _ := child.Value(storedKey{}).(*storedNote); got != note {
		t.Errorf("a child's Value(storedKey{}) = %v, want the note", got)
	}
	cancel()
	<-child.Done()
	if child.Err() != context.Canceled || ctx.Err() != context.Canceled {
		t.Errorf("after the parent's cancel: child %v, note %v", child.Err(), ctx.Err())
	}
	// A note without a Server checks nothing.
	if err := (&storedNote{}).check(t.Context(), nil); err != nil {
		t.Errorf("check without a Server: %v", err)
	}
}

// noteSink keeps what an allocation test makes from being optimized away.
var noteSink *storedNote
