package llmwrap_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestTeamBudgetSurvivesARenameOnReload: a team's ledger is keyed on the
// team, not on the policy's name: field, so that an edit of devops.yaml
// that only fixes its name ("devops" to "devops-team") keeps counting the
// team's daily spend on reload (keyed on the name, it started over at $0:
// the team spent its limit a second time in the same day). README:
// "Budgets ... survive reloads"; a budget is never overshot.
func TestTeamBudgetSurvivesARenameOnReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Each call is billed 100 in + 100 out of gpt-4o = $0.00125.
	policy := func(name string) string {
		return "version: 1\nname: " + name + "\n" +
			"budget:\n  request: {max_output_tokens: 100}\n  team: {period: daily, max_usd: 0.003}\n"
	}
	file := filepath.Join(dir, "devops.yaml")
	if err := os.WriteFile(file, []byte(policy("devops")), 0o644); err != nil {
		t.Fatal(err)
	}
	preg, srv, ask := registryAsker(t, dir, middleware.WithTeam(context.Background(), "devops"))
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
	// $0.0025 spent of $0.003 today: the third call's worst case does not fit.
	if err := ask(); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("third call after a reload that renamed the policy: err = %v, want the team budget exceeded; the upstream was called %d times", err, srv.Count())
	}
}

// TestTeamBudgetSurvivesItsOwnFile: a team that ran under the default
// policy (it had no file) and is given a file of its own by a reload keeps
// counting what it spent today under the default policy: its ledger is
// keyed on the team, not on the policy that holds it.
func TestTeamBudgetSurvivesItsOwnFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	budgetYAML := "budget:\n  request: {max_output_tokens: 100}\n  team: {period: daily, max_usd: 0.003}\n"
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\nname: default\n"+budgetYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	preg, srv, ask := registryAsker(t, dir, middleware.WithTeam(context.Background(), "payments"))
	for i := range 2 {
		if err := ask(); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "payments.yaml"), []byte("version: 1\nname: payments\n"+budgetYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := preg.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := ask(); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("third call after the team got its own file: err = %v, want the team budget exceeded; the upstream was called %d times", err, srv.Count())
	}
}

// registryAsker returns the policies registry of dir, the scripted
// server, and ask: a go-openai call of gpt-4o with ctx through an
// llmwrap.Registry over the policies, each answered with 100 input and
// 100 output tokens ($0.00125).
func registryAsker(t *testing.T, dir string, ctx context.Context) (*policies.Registry, *openaitest.Server, func() error) {
	t.Helper()
	preg, err := policies.NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := llmwrap.NewRegistry(preg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 100}})
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware())
	client := goopenai.NewClientWithConfig(cfg)
	return preg, srv, func() error {
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "how full is the disk?"}}})
		return err
	}
}
