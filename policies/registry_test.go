package policies_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/policies"
)

func teamPolicy(maxCalls int) string {
	return fmt.Sprintf("version: 1\nlimits: {max_calls: %d}\n", maxCalls)
}

// watched starts a registry on dir with a watch in place and returns it
// with a function that blocks until a reload gives team maxCalls. It waits
// on the registry's own reload notifications, never on the clock: the
// watch is in place when StartWatch returns, and the test's deadline is
// the only bound.
func watched(t *testing.T, dir string) (*policies.Registry, func(team string, maxCalls int)) {
	t.Helper()
	reg, err := policies.NewRegistry(dir, policies.WithDebounce(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan policies.Change, 64)
	cancelSub := reg.Subscribe(func(c policies.Change) {
		select {
		case changes <- c:
		default: // the test reads the registry itself; a full channel only drops a wake-up
		}
	})
	ctx, stop := context.WithCancel(context.Background())
	wait, err := reg.StartWatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		wait()
		cancelSub()
	})
	return reg, func(team string, maxCalls int) {
		t.Helper()
		for reg.Policy(team).Limits.MaxCalls != maxCalls {
			select {
			case <-changes:
			case <-t.Context().Done():
				t.Fatalf("no reload gave %s max_calls %d", team, maxCalls)
			}
		}
	}
}

// A Kubernetes ConfigMap volume: the visible files are symlinks through
// ..data, a symlink to a ..<timestamp> directory; an update writes a new
// directory and swaps ..data atomically. No visible file changes, yet the
// registry must reload.
func TestReloadOnConfigMapSymlinkSwap(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after watched's cleanup: registered first, runs last
	dir := t.TempDir()
	version := func(name string, maxCalls int) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for file, body := range map[string]string{"default.yaml": teamPolicy(10), "devops.yaml": teamPolicy(maxCalls)} {
			if err := os.WriteFile(filepath.Join(d, file), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap := func(target string) { // what kubelet's atomic writer does
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_04_10_00_00.000000001", 1)
	swap("..2026_12_04_10_00_00.000000001")
	for _, f := range []string{"default.yaml", "devops.yaml"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	reg, waitFor := watched(t, dir)
	if got := reg.Policy("devops").Limits.MaxCalls; got != 1 {
		t.Fatalf("devops max_calls %d at start", got)
	}
	if names := reg.Names(); len(names) != 2 {
		t.Fatalf("teams %v: the ..data and ..<timestamp> entries are not teams", names)
	}
	for i, maxCalls := range []int{3, 7} {
		ts := fmt.Sprintf("..2026_12_04_10_0%d_00.000000001", i+1)
		version(ts, maxCalls)
		swap(ts)
		waitFor("devops", maxCalls)
	}
}

// Editors save in ways that never write the policy file in place: vim
// renames the old file away and writes a new one; others write a temporary
// file and rename it over the policy. Each is one reload.
func TestReloadOnEditorSaves(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after watched's cleanup: registered first, runs last
	dir := t.TempDir()
	devops := filepath.Join(dir, "devops.yaml")
	for file, body := range map[string]string{"default.yaml": teamPolicy(10), "devops.yaml": teamPolicy(1)} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg, waitFor := watched(t, dir)
	// Write a temporary file, rename it over the policy (VS Code, JetBrains, sed -i).
	tmp := filepath.Join(dir, ".devops.yaml.tmp1234")
	if err := os.WriteFile(tmp, []byte(teamPolicy(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, devops); err != nil {
		t.Fatal(err)
	}
	waitFor("devops", 2)
	// vim's backupcopy=no: rename the file to a backup, write a new one, delete the backup.
	if err := os.Rename(devops, devops+"~"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(devops, []byte(teamPolicy(4)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(devops + "~"); err != nil {
		t.Fatal(err)
	}
	waitFor("devops", 4)
	// In place (nano, echo >).
	if err := os.WriteFile(devops, []byte(teamPolicy(5)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("devops", 5)
	if names := reg.Names(); len(names) != 2 {
		t.Errorf("teams %v: backups and temporary files are not teams", names)
	}
}

// TestReloadOnEditOfBaseInSubdirectory: a team extends a base in a
// subdirectory of the policy directory (bases that are not teams sit
// there). Editing the base reloads the team, and so does editing a base
// in another subdirectory the team starts extending after a reload.
func TestReloadOnEditOfBaseInSubdirectory(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after watched's cleanup: registered first, runs last
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bases/common.yaml", teamPolicy(5))
	write("shared/deep/other.yaml", teamPolicy(20))
	write("devops.yaml", "version: 1\nextends: bases/common.yaml\n")
	reg, waitFor := watched(t, dir)
	if got := reg.Policy("devops").Limits.MaxCalls; got != 5 {
		t.Fatalf("max_calls %d, want 5", got)
	}
	write("bases/common.yaml", teamPolicy(7))
	waitFor("devops", 7)
	// The team now extends a base in another subdirectory: watched from
	// the reload that read it on.
	write("devops.yaml", "version: 1\nextends: shared/deep/other.yaml\n")
	waitFor("devops", 20)
	write("shared/deep/other.yaml", teamPolicy(21))
	waitFor("devops", 21)
	if names := reg.Names(); len(names) != 1 {
		t.Errorf("teams %v: bases in subdirectories are not teams", names)
	}
}
