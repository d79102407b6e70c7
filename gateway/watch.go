package gateway

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileDebounce is how long the watch of the gateway file waits after an
// event for more (an editor's save is several) before it reloads.
const fileDebounce = 100 * time.Millisecond

// watchFile follows the gateway file: a change to it (written in place,
// or replaced by a rename as editors and Kubernetes ConfigMap volumes do:
// its directory is watched) reloads its keys, as SIGHUP does, so a key
// added is accepted and a key removed refused without a restart. It
// returns once the watch is in place; stop ends it and waits for it.
func (s *Server) watchFile(path string) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
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
				name := filepath.Base(ev.Name)
				if ev.Op == fsnotify.Chmod || name != base && !(strings.HasPrefix(name, "..") && name != "..") {
					continue
				}
				timer.Reset(fileDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.logger.Warn("tokenwise/gateway: gateway file watcher error", "file", path, "err", err)
			case <-timer.C:
				_ = s.reloadFile() // logged
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
