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

// TestReloadWarnsWhenATeamsLedgerMoves: a team's budget ledger is keyed
// on its policy's name:, so a reload that renames the policy of a team
// with a team budget, or gives a team that ran under the default policy a
// file of its own, starts the team's spend of the period over under
// another ledger. The reload says so, naming the team and both names; a
// reload that keeps the name, or a team without a team budget, says
// nothing of it.
func TestReloadWarnsWhenATeamsLedgerMoves(t *testing.T) {
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
	write("quiet.yaml", "version: 1\nname: quiet\n")
	logs := &lockedBuf{}
	reg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}

	write("devops.yaml", team("devops")+"limits: {max_calls: 9}\n") // same name
	write("quiet.yaml", "version: 1\nname: quiet-team\n")           // no team budget
	if err := reg.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "ledger") {
		t.Fatalf("a reload that moved no ledger warned:\n%s", logs)
	}

	write("devops.yaml", team("devops-team"))
	write("payments.yaml", team("payments"))
	if err := reg.Reload(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{
		"team=devops", "name_before=devops", "name_now=devops-team", "starts over",
		"team=payments", "name_before=default", "name_now=payments", "under the default policy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the reload's warnings lack %q:\n%s", want, out)
		}
	}
}
