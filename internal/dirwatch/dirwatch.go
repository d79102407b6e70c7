// Package dirwatch is the one debounced directory watch of tokenwise, an
// internal helper: the policy registry's hot reload and the gateway file's
// reload both run on it.
package dirwatch

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Start puts a watch on dir and returns once it is in place, so that every
// change made after it returns is seen. The directory is watched, not the
// files, so that saves by writing a temporary file and renaming it over the
// watched one count. A goroutine then calls changed once a burst of events
// on base names that trigger accepts (chmod events never count) has been
// followed by debounce without another, and onErr with the watcher's
// errors, until ctx is done; wait blocks until that goroutine has exited.
func Start(ctx context.Context, dir string, debounce time.Duration, trigger func(base string) bool, changed func(), onErr func(error)) (wait func(), err error) {
	return StartDirs(ctx, dir, nil, debounce, trigger, changed, onErr)
}

// StartDirs is Start that also watches the directories extra returns
// (fsnotify watches are not recursive: a policy's base in a subdirectory
// is in one of them). extra is called before StartDirs returns and again
// after each call of changed, and changed is called once more after a
// directory is added (a change made while it was not yet watched would be
// missed otherwise); directories it no longer returns stop being
// watched, and one that cannot be watched (it does not exist yet, say) is
// skipped until a later call returns it again. extra may be nil.
func StartDirs(ctx context.Context, dir string, extra func() []string, debounce time.Duration, trigger func(base string) bool, changed func(), onErr func(error)) (wait func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	top := filepath.Clean(dir)
	watched := map[string]bool{}
	// watchExtra brings the watches in line with extra and reports
	// whether it added one.
	watchExtra := func() (added bool) {
		if extra == nil {
			return false
		}
		want := map[string]bool{}
		for _, d := range extra() {
			d = filepath.Clean(d)
			if d == top {
				continue
			}
			want[d] = true
			// Added again each time: a directory removed and created
			// anew lost its watch with it. Adding a watched one is a no-op.
			if w.Add(d) == nil {
				added = added || !watched[d]
				watched[d] = true
			} else {
				delete(watched, d)
			}
		}
		for d := range watched {
			if !want[d] {
				_ = w.Remove(d) // fails for a directory already gone, whose watch went with it
				delete(watched, d)
			}
		}
		return added
	}
	watchExtra()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod || !trigger(filepath.Base(ev.Name)) {
					continue
				}
				timer.Reset(debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				onErr(err)
			case <-timer.C:
				changed()
				if watchExtra() {
					// A file of a directory watched only now may have
					// changed between changed's read and the new watch:
					// look once more.
					timer.Reset(debounce)
				}
			}
		}
	}()
	return func() { <-done }, nil
}

// ConfigMapSwap reports whether an event on name (a base name) is a
// Kubernetes ConfigMap volume's update: it creates a new ..<timestamp>
// directory and swaps the ..data symlink the visible files point through.
func ConfigMapSwap(name string) bool { return strings.HasPrefix(name, "..") && name != ".." }
