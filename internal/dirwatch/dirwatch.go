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
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
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
			}
		}
	}()
	return func() { <-done }, nil
}

// ConfigMapSwap reports whether an event on name (a base name) is a
// Kubernetes ConfigMap volume's update: it creates a new ..<timestamp>
// directory and swaps the ..data symlink the visible files point through.
func ConfigMapSwap(name string) bool { return strings.HasPrefix(name, "..") && name != ".." }
