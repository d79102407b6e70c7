package ctxval_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
)

type key struct{}
type otherKey struct{}

// A Ctx answers as context.WithValue(parent, key{}, &Val) does: its own
// key with the pointer to its value, every other key, the deadline, Done,
// Err and Cause from its parent.
func TestCtxIsWithValue(t *testing.T) {
	parent, cancel := context.WithDeadlineCause(context.WithValue(context.Background(), otherKey{}, "o"),
		time.Now().Add(time.Hour), errors.New("cause"))
	c := &ctxval.Ctx[key, int]{Context: parent, Val: 7}
	ref := context.WithValue(parent, key{}, &c.Val)
	if p, ok := c.Value(key{}).(*int); !ok || p != &c.Val || *p != 7 || ref.Value(key{}) != c.Value(key{}) {
		t.Fatalf("Value(key) = %v", c.Value(key{}))
	}
	if c.Value(otherKey{}) != "o" || c.Value("missing") != nil {
		t.Fatal("the parent's values are not answered")
	}
	d1, ok1 := c.Deadline()
	d2, ok2 := ref.Deadline()
	if d1 != d2 || ok1 != ok2 {
		t.Fatal("deadline differs")
	}
	cancel()
	<-c.Done()
	if c.Err() != ref.Err() || context.Cause(c) != context.Cause(ref) {
		t.Fatalf("Err %v / %v, Cause %v / %v", c.Err(), ref.Err(), context.Cause(c), context.Cause(ref))
	}
}
