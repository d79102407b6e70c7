package gateway

import (
	"context"
	"path/filepath"
	"time"

	"github.com/tokenwise/tokenwise/internal/dirwatch"
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
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := dirwatch.Start(ctx, dir, fileDebounce,
		func(name string) bool { return name == base || dirwatch.ConfigMapSwap(name) },
		func() { _ = s.reloadFile() }, // logged
		func(err error) {
			s.logger.Warn("tokenwise/gateway: gateway file watcher error", "file", path, "err", err)
		})
	if err != nil {
		cancel()
		return nil, err
	}
	return func() { cancel(); wait() }, nil
}
