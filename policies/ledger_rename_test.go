package policies_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestReloadDoesNotMoveATeamsLedger: a team's budget ledger is keyed on
// the team, not on its policy's name (llmwrap/budget), so a reload that
// renames the policy of a team with a team budget, or gives a team that
// ran under the default policy a file of its own, keeps counting the
// team's spend of the period under the same ledger (the spend itself:
// llmwrap.TestTeamBudgetSurvivesARenameOnReload and
// TestTeamBudgetSurvivesItsOwnFile). Earlier versions keyed it on the
// name and warned that the spend started over; no reload warns of it now.
func TestReloadDoesNotMoveATeamsLedger(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	team := func(name string) string {
		return "version: 1\nname: " + name + "\nbudget:\n  team: {period: daily, max_usd: 5}\n"
	}
	write("default.yaml", team("default"))
	write("devops.yaml", team("devops"))
	logs := &lockedBuf{}
	reg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	write("devops.yaml", team("devops-team"))
	write("payments.yaml", team("payments"))
	if err := reg.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "ledger") {
		t.Fatalf("a reload warned of a ledger move:\n%s", logs)
	}
}
