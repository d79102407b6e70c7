package middleware_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Ended never waits for a context whose Deadline says when it ends: the
// contexts the layers pass it (the standard library's, middleware's lazy
// and extendable deadlines, extended or made real or not, a
// WithoutDeadline over any of them, children of each) answer at once,
// before their deadline, at it and after it, in fake time: its wait of up
// to a second is only for a context whose Deadline is earlier than its
// end.
func TestEndedAnswersAtOnceForTheLayersContexts(t *testing.T) {
	t.Parallel()
	cause := errors.New("run deadline")
	type mk func(context.Context) context.Context
	// The standard library's contexts' cancels, called as each bubble ends.
	var cancels []context.CancelFunc
	makers := map[string]mk{
		"std": func(p context.Context) context.Context {
			c, cancel := context.WithTimeout(p, 10*time.Second)
			cancels = append(cancels, cancel)
			return c
		},
		"lazy": func(p context.Context) context.Context {
			return middleware.WithDeadline(p, time.Now().Add(10*time.Second), cause)
		},
		"lazy made real": func(p context.Context) context.Context {
			d := middleware.WithDeadline(p, time.Now().Add(10*time.Second), cause)
			_ = d.Done()
			return d
		},
		"extendable": func(p context.Context) context.Context {
			return middleware.WithExtendableDeadline(p, time.Now(), 10*time.Second, cause)
		},
		"extendable made real, extended": func(p context.Context) context.Context {
			d := middleware.WithExtendableDeadline(p, time.Now(), 5*time.Second, cause)
			_ = d.Done()
			d.Extend(10*time.Second, cause)
			return d
		},
		"extendable extended": func(p context.Context) context.Context {
			d := middleware.WithExtendableDeadline(p, time.Now(), 5*time.Second, cause)
			d.Extend(10*time.Second, cause)
			return d
		},
	}
	wraps := map[string]mk{
		"itself":          func(c context.Context) context.Context { return c },
		"WithoutDeadline": middleware.WithoutDeadline,
		"std child, later": func(c context.Context) context.Context {
			k, cancel := context.WithTimeout(c, time.Hour)
			cancels = append(cancels, cancel)
			return k
		},
		"lazy child, later": func(c context.Context) context.Context {
			return middleware.WithDeadline(c, time.Now().Add(time.Hour), cause)
		},
	}
	for name, m := range makers {
		for wname, w := range wraps {
			synctest.Test(t, func(t *testing.T) {
				cancels = cancels[:0]
				ctx := w(m(context.Background()))
				defer func() {
					for _, c := range cancels {
						c()
					}
				}()
				t0 := time.Now()
				for _, at := range []time.Duration{0, 5 * time.Second, 10 * time.Second, 11 * time.Second} {
					time.Sleep(time.Until(t0.Add(at)))
					start := time.Now()
					ended := middleware.Ended(ctx)
					if waited := time.Since(start); waited != 0 {
						t.Fatalf("%s under %s, %v in: Ended waited %v", name, wname, at, waited)
					}
					if ended && ctx.Err() == nil {
						t.Fatalf("%s under %s: Ended, but Err is nil", name, wname)
					}
				}
			})
		}
	}
}
