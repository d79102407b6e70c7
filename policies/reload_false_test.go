package policies_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

// TestReloadAppliesAnExplicitFalse: an edit that only sets a switch whose
// default is true to false (cache.streams, rate_limits.learn_from_provider)
// is a change: the reload puts it in force and reports the team updated,
// and the edit back to the default is one too. Before, the registry
// compared policies by their explained values, where false reads as
// unset, took the edit for no change and kept the old policy in force.
func TestReloadAppliesAnExplicitFalse(t *testing.T) {
	dir := t.TempDir()
	const base = "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\nrate_limits:\n  models: {gpt-4o: {rpm: 60}}\n"
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "devops.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	reg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	var updated [][]string
	defer reg.Subscribe(func(c policies.Change) { updated = append(updated, c.Updated) })()
	write("version: 1\nname: devops\ncache: {enabled: true, ttl: 1h, streams: false}\nrate_limits:\n  models: {gpt-4o: {rpm: 60}}\n  learn_from_provider: false\n")
	if err := reg.Reload(); err != nil {
		t.Fatal(err)
	}
	p := reg.Policy("devops")
	if p.Cache.CachesStreams() || p.RateLimits.IsLearning() {
		t.Fatalf("after the reload: caches streams %v, learns from the provider %v; want both false as the file says",
			p.Cache.CachesStreams(), p.RateLimits.IsLearning())
	}
	write(base)
	if err := reg.Reload(); err != nil {
		t.Fatal(err)
	}
	if p := reg.Policy("devops"); !p.Cache.CachesStreams() || !p.RateLimits.IsLearning() {
		t.Fatal("after the edit back: the defaults (true) are not in force")
	}
	if len(updated) != 2 || len(updated[0]) != 1 || len(updated[1]) != 1 {
		t.Fatalf("reloads reported updated teams %v, want [[devops] [devops]]", updated)
	}
}
