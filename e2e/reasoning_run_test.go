package e2e

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	lcopenai "github.com/tmc/langchaingo/llms/openai"
	"github.com/tmc/langchaingo/tools"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Under the embedded default policy a run's deadline (limits.run_timeout)
// outlasts the longest call the same policy lets a reasoning model make
// (10m): an o3 call that thinks 6 minutes inside a run, after a call of
// another model, is answered, through go-openai as through a langchaingo
// agent, and the run records every call as answered.
func TestDefaultRunLetsAReasoningCallThink(t *testing.T) {
	t.Run("go-openai", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			srv.On(openaitest.Model("o3")).Reply(openaitest.Reply{Content: "the plan", Latency: 6 * time.Minute})
			srv.On().Reply(openaitest.Reply{Content: "the facts", Latency: 20 * time.Second})
			c := goClient(t, srv, policies.Default())
			ctx, run := middleware.StartRun(context.Background(), "think")
			start := time.Now()
			for _, m := range []string{"gpt-4o-mini", "o3"} {
				resp, err := c.CreateChatCompletion(ctx, hangChatReq(m, false))
				if err != nil || len(resp.Choices) == 0 {
					t.Fatalf("%s call %v into the run: %+v, %v", m, time.Since(start), resp, err)
				}
			}
			if el := time.Since(start); el != 6*time.Minute+20*time.Second {
				t.Errorf("the run took %v, want 6m20s", el)
			}
			if n := srv.Count(); n != 2 {
				t.Errorf("%d upstream requests, want 2 (one a call, none cut and retried)", n)
			}
			calls := run.Calls()
			if len(calls) != 2 || calls[0].Err != nil || calls[1].Err != nil {
				t.Errorf("run records %+v, want two answered calls", calls)
			}
		})
	})
	t.Run("langchaingo agent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			srv.On(openaitest.LastContains("Observation: Disk Usage")).
				Reply(openaitest.Reply{Content: "Thought: I now know the final answer\nFinal Answer: /var/log filled the disk.", Latency: 2 * time.Minute})
			srv.On().Reply(openaitest.Reply{Content: "Thought: I should look at the disk\nAction: check_disk\nAction Input: /", Latency: 6 * time.Minute})
			chain, err := llmwrap.Build(policies.Default())
			if err != nil {
				t.Fatal(err)
			}
			inner, err := lcopenai.New(lcopenai.WithModel("o3"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL(srv.URL),
				lcopenai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"o3": inner}, chain)
			agent := agents.NewOneShotAgent(llm, []tools.Tool{devopsTool{"check_disk", "Check disk usage", "Disk Usage: 95% (CRITICAL)"}})
			exec := agents.NewExecutor(agent, agents.WithMaxIterations(5))
			ctx, run := middleware.StartRun(context.Background(), "think-agent")
			start := time.Now()
			out, err := chains.Run(ctx, exec, "I'm out of disk space. Sort it out.")
			if err != nil || out != "/var/log filled the disk." {
				t.Fatalf("the agent's run ended after %v with %q, %v (%d upstream requests)", time.Since(start), out, err, srv.Count())
			}
			if el := time.Since(start); el != 8*time.Minute {
				t.Errorf("the run took %v, want 8m", el)
			}
			if n := srv.Count(); n != 2 {
				t.Errorf("%d upstream requests, want 2", n)
			}
			calls := run.Calls()
			if len(calls) != 2 || calls[0].Err != nil || calls[1].Err != nil {
				t.Errorf("run records %+v, want two answered calls", calls)
			}
		})
	})
}
