package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// A shared run's ledger (X-Run-Id with Redis) is the run's, not its
// policy's: a reload of both replicas that only renames the team's policy
// (name: devops -> devops-team) mid-run keeps what the run spent, and the
// call past the run's budget is refused on either replica (before, the
// ledger was keyed on the policy's name, and the run spent its budget a
// second time).
func TestSharedRunBudgetSurvivesARenameOnReload(t *testing.T) {
	const limit = 500
	pol := fmt.Sprintf("budget:\n  run: {max_tokens: %d}\n  min_output_tokens: 100", limit)
	a, b, up, c, prefix := runReplicas(t, pol, time.Hour)
	reply := openaitest.Text("ok")
	reply.Usage = &openaitest.Usage{PromptTokens: 100, CompletionTokens: 100}
	up.Default(reply)
	body := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat("question ", 100) + `"}]}`
	// Two calls of 200 tokens, one on each replica: 400 of the run's 500.
	for i, e := range []*env{a, b} {
		if status, code := e.call(t, devopsKey, "renamed", body); status != 200 {
			t.Fatalf("call %d: %d %q, want 200", i+1, status, code)
		}
	}
	// The team's policy is renamed; both replicas reload it.
	file := filepath.Join(a.dir, "policies", "devops.yaml")
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(old), "name: devops\n", "name: devops-team\n", 1)
	if renamed == string(old) {
		t.Fatalf("no name to rename in %q", old)
	}
	if err := os.WriteFile(file, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*env{a, b} {
		if err := e.srv.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range []*env{a, b} {
		if status, code := e.call(t, devopsKey, "renamed", body); status != 429 || code != "budget_exceeded" {
			t.Fatalf("call of the run on replica %d after the rename: %d %q, want 429 budget_exceeded (400 of %d tokens spent); the upstream was called %d times",
				i+1, status, code, limit, up.Count())
		}
	}
	if n := up.Count(); n != 2 {
		t.Fatalf("the upstream was called %d times, want 2", n)
	}
	// One ledger of the run holds its spend, whatever its policy's name.
	bal, err := twredis.NewBudgetStore(c).Balance(context.Background(), prefix+":budget::run:devops/renamed", budget.Window{}, time.Now())
	if err != nil || bal.Used.Tokens != 400 || !bal.Reserved.IsZero() {
		t.Fatalf("the run's ledger: %+v (%v), want 400 tokens used", bal, err)
	}
}
