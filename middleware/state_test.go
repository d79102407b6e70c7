package middleware_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

type keyA struct{ name string }
type keyB struct{ name string }

// A value is created once per key, whoever asks first, and a key's type
// and the value's type together name it: keys of two packages (two types)
// or one key read as two types never collide.
func TestRunValueAndCallMemo(t *testing.T) {
	t.Parallel()
	_, run := middleware.StartRun(context.Background(), "r")
	ci := &middleware.CallInfo{}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			p := middleware.RunValue(run, keyA{"x"}, func() *int { n := i; return &n })
			if q := middleware.RunValue(run, keyA{"x"}, func() *int { t.Error("created twice"); return nil }); q != p {
				t.Error("two values for one key")
			}
			c := middleware.CallMemo(ci, keyA{"x"}, func() int64 { return int64(i) })
			if d := middleware.CallMemo(ci, keyA{"x"}, func() int64 { t.Error("computed twice"); return -1 }); d != c {
				t.Error("two values for one key")
			}
		})
	}
	wg.Wait()
	if s := middleware.RunValue(run, keyB{"x"}, func() string { return "b" }); s != "b" {
		t.Errorf("another key type got %q", s)
	}
	if s := middleware.RunValue(run, keyA{"x"}, func() string { return "as string" }); s != "as string" {
		t.Errorf("the same key read as another type got %q", s)
	}
	if v := middleware.CallMemo[keyA, int](nil, keyA{"x"}, func() int { return 7 }); v != 7 {
		t.Errorf("nil CallInfo: %d", v)
	}
}
