package llmwrap_test

import (
	"context"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

const teamBudgetPolicy = `version: 1
budget:
  request: {max_output_tokens: 64}
  team: {period: monthly, max_usd: 0.005}
routing:
  default: gpt-4o
  rules:
    - name: save-money
      when: {budget_below: {scope: team, fraction: 0.5}}
      model: gpt-4o-mini
`

// A budget_below rule of the team scope reads the ledger the budget layer
// charges, and a chain rebuilt with the same State (a registry reload)
// keeps that ledger: the money spent before the rebuild still counts.
func TestTeamBudgetRoutingSharesTheLedgerAcrossRebuilds(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text(strings.Repeat("disk ok ", 25))) // 50 output tokens
	p, err := policies.LoadBytes([]byte(teamBudgetPolicy), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state := llmwrap.NewState()
	newClient := func() *goopenai.Client {
		chain, err := llmwrap.Build(p, llmwrap.WithState(state))
		if err != nil {
			t.Fatal(err)
		}
		cfg := goopenai.DefaultConfig("test")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
		return goopenai.NewClientWithConfig(cfg)
	}
	ctx := middleware.WithTeam(context.Background(), "devops")
	call := func(c *goopenai.Client) string {
		resp, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "status?"}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Model
	}
	first := newClient()
	strong := 0
	for call(first) == "gpt-4o" {
		strong++
		if strong > 20 {
			t.Fatal("the router never switched to the cheap model")
		}
	}
	// Each strong call costs about $0.0005 of $0.005: the switch comes once
	// less than half is left, not before.
	if strong < 4 {
		t.Fatalf("switched after %d strong calls, too early", strong)
	}
	// A rebuilt chain (same State) starts from the same ledger.
	if got := call(newClient()); got != "gpt-4o-mini" {
		t.Fatalf("after a rebuild the first call went to %s: the ledger was lost", got)
	}
	// Without the State a rebuild starts from an empty ledger.
	chain := llmwrap.MustBuild(p)
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	if got := call(goopenai.NewClientWithConfig(cfg)); got != "gpt-4o" {
		t.Fatalf("a fresh chain routed to %s", got)
	}
}

const runBudgetPolicy = `version: 1
budget:
  request: {max_output_tokens: 64}
  run: {max_usd: 0.005}
routing:
  default: gpt-4o
  rules:
    - name: save-money
      when: {budget_below: {scope: run, fraction: 0.5}}
      model: gpt-4o-mini
`

// A budget_below rule of the run scope reads a shared run's ledger in the
// budget store (middleware.OpenSharedRun): a run whose calls alternate
// between two replicas (two chains on one store) switches to the cheap
// model after as many strong calls as a run served by one replica, and as
// a run of this process (whose spend the router reads from its records).
func TestSharedRunBudgetRoutingReadsTheRunLedger(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text(strings.Repeat("disk ok ", 25))) // 50 output tokens
	p, err := policies.LoadBytes([]byte(runBudgetPolicy), "team.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// strongCalls counts the calls of one run routed to gpt-4o, the i-th
	// call going to replica i % replicas.
	strongCalls := func(replicas int, runID string, shared bool) int {
		store, runs := budget.NewMemoryStore(), &middlewaretest.RunStore{}
		var clients []*goopenai.Client
		var ctxs []context.Context
		for range replicas {
			chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store))
			if err != nil {
				t.Fatal(err)
			}
			cfg := goopenai.DefaultConfig("test")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
			clients = append(clients, goopenai.NewClientWithConfig(cfg))
			if !shared { // a run of this process: the router reads its records
				ctx, _ := middleware.StartRun(context.Background(), runID)
				ctxs = append(ctxs, ctx)
				continue
			}
			ctxs = append(ctxs, middleware.WithRun(context.Background(), middleware.OpenSharedRun(runID, "t/"+runID, runs)))
		}
		for i := range 20 {
			resp, err := clients[i%replicas].CreateChatCompletion(ctxs[i%replicas], goopenai.ChatCompletionRequest{Model: "gpt-4o",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "status?"}}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Model != "gpt-4o" {
				return i
			}
		}
		t.Fatal("the router never switched to the cheap model")
		return 0
	}
	local, one, two := strongCalls(1, "local", false), strongCalls(1, "one", true), strongCalls(2, "two", true)
	if one < 4 || two != one || local != one {
		t.Fatalf("strong calls before the switch: %d in a run of this process, %d in a shared run on one replica, %d on two; want the same (at least 4)", local, one, two)
	}
}
