package llmwrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestRunBudgetSurvivesARenameOnReload: a run's ledger is one per run, not
// per policy name: a reload mid-run that only renames the team's policy
// keeps the run's spend (before, it started over and the run spent its
// limit a second time).
func TestRunBudgetSurvivesARenameOnReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := func(name string) string {
		return "version: 1\nname: " + name + "\n" +
			"budget:\n  request: {max_output_tokens: 100}\n  run: {max_usd: 0.003}\n"
	}
	file := filepath.Join(dir, "devops.yaml")
	if err := os.WriteFile(file, []byte(policy("devops")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, _ := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "agent")
	preg, srv, ask := registryAsker(t, dir, ctx)
	for i := range 2 {
		if err := ask(); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if err := os.WriteFile(file, []byte(policy("devops-team")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := preg.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := ask(); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("third call of the run after a reload that renamed the policy: err = %v, want the run budget exceeded; the upstream was called %d times", err, srv.Count())
	}
}
