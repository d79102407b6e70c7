package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestTimedOutLastAttemptIsSettledAsBilled: a call whose last (here only)
// attempt times out in flight is billed its estimated input by the Meter
// (the provider usually bills a prompt it processed), marked Estimated;
// the team ledger charges the same, not nothing — through go-openai and
// through langchaingo. (Fake time: synctest.)
func TestTimedOutLastAttemptIsSettledAsBilled(t *testing.T) {
	prompt := strings.Repeat("Check the disks. ", 200)
	policy := func() *policies.Policy {
		p := dailyTeamPolicy()
		p.Timeouts.Call = policies.Duration(10 * time.Second)
		return p
	}
	check := func(t *testing.T, p *policies.Policy, store budget.Store, cost *atomic.Int64, err error) {
		t.Helper()
		if !errors.Is(err, middleware.ErrTimeout) {
			t.Fatalf("err %v, want a timeout", err)
		}
		// Its input: ≥ 600 tokens of gpt-4o at $2.50/1M.
		if c := cost.Load(); c < 600*2_500_000 {
			t.Errorf("the timed-out attempt was billed %s", policies.PicoUSD(c))
		}
		if m, want := ledgerSpent(t, p, store, "sre"), policies.PicoUSD(cost.Load()).Ceil().Micro(); m != want {
			t.Errorf("the ledger charged %d µ$, the report bills %s", m, policies.PicoUSD(cost.Load()))
		}
	}
	t.Run("go-openai", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Reply{Content: "ok", Fault: openaitest.Fault{Kind: openaitest.FaultStall}})
			p := policy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			client := billingClient(p, srv, store, &cost)
			ctx := middleware.WithTeam(context.Background(), "sre")
			_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}})
			check(t, p, store, &cost, err)
		})
	})
	t.Run("langchaingo", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Reply{Content: "ok", Fault: openaitest.Fault{Kind: openaitest.FaultStall}})
			p := policy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			inner, err := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
				lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
			ctx := middleware.WithTeam(context.Background(), "sre")
			_, err = llm.GenerateContent(ctx, []llms.MessageContent{human(prompt)}, llms.WithMaxTokens(2000))
			check(t, p, store, &cost, err)
		})
	})
}

// TestAttemptThatNeverReachedTheProviderIsNotBilled: an upstream that
// cannot be reached (its connections hang, as when a firewall drops them)
// times every attempt out before its request is written. The provider
// never had the requests and bills nothing: neither do the report and the
// ledger, so an outage does not drain the team's budget with charges no
// provider made — through go-openai and through langchaingo (with
// NewTransport). (Fake time: synctest.)
func TestAttemptThatNeverReachedTheProviderIsNotBilled(t *testing.T) {
	prompt := strings.Repeat("Check the disks. ", 200)
	policy := func() *policies.Policy {
		p := dailyTeamPolicy()
		p.Timeouts.Call = policies.Duration(10 * time.Second)
		return p
	}
	// unreachable dials until the dial's context ends, or the test does:
	// net/http may go on dialing for its pool after the call gave up (and
	// the langchaingo adapter gives up on a call at its deadline without
	// waiting for it), and a synctest bubble ends only when its
	// goroutines do.
	unreachable := func() (base *http.Transport, end func()) {
		ended := make(chan struct{})
		base = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-ended:
				return nil, errors.New("unreachable")
			}
		}}
		return base, func() {
			close(ended)
			base.CloseIdleConnections()
			synctest.Wait()
		}
	}
	check := func(t *testing.T, p *policies.Policy, store budget.Store, cost *atomic.Int64, err error) {
		t.Helper()
		if !errors.Is(err, middleware.ErrTimeout) {
			t.Fatalf("err %v, want a timeout", err)
		}
		if c := cost.Load(); c != 0 {
			t.Errorf("attempts that never reached the provider were billed %s", policies.PicoUSD(c))
		}
		if m := ledgerSpent(t, p, store, "sre"); m != 0 {
			t.Errorf("the ledger charged %d µ$ for requests never sent", m)
		}
	}
	t.Run("go-openai", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := policy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			base, end := unreachable()
			defer end()
			cfg := goopenai.DefaultConfig("test-key")
			cfg.BaseURL = "http://openai.test/v1"
			cfg.HTTPClient = twopenai.NewHTTPClient(billingChain(p, store, &cost), twopenai.WithBaseTransport(base))
			ctx := middleware.WithTeam(context.Background(), "sre")
			_, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}})
			check(t, p, store, &cost, err)
		})
	})
	t.Run("langchaingo", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := policy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			base, end := unreachable()
			defer end()
			inner, err := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
				lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
			ctx := middleware.WithTeam(context.Background(), "sre")
			_, err = llm.GenerateContent(ctx, []llms.MessageContent{human(prompt)}, llms.WithMaxTokens(2000))
			check(t, p, store, &cost, err)
		})
	})
}
