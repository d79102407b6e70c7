package e2e

// Money exactness against the provider's bill: each test computes the bill
// independently from OpenAI's public prices.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// billingChain is a chain of p with a memory budget store, summing the
// calls' reported costs in cost.
func billingChain(p *policies.Policy, store budget.Store, cost *atomic.Int64) middleware.Middleware {
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			cost.Add(f.Facts.CostPico)
		}
	})
	return llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs),
		llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
}

// billingClient is go-openai over billingChain on srv.
func billingClient(p *policies.Policy, srv *openaitest.Server, store budget.Store, cost *atomic.Int64) *goopenai.Client {
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(billingChain(p, store, cost), twopenai.WithBaseTransport(srv.Transport()))
	return goopenai.NewClientWithConfig(cfg)
}

// ledgerSpent is what the team ledger of p in store charged team (in
// micro-dollars); it fails the test when reservations are left.
func ledgerSpent(t *testing.T, p *policies.Policy, store budget.Store, team string) int64 {
	t.Helper()
	b, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	rem, err := b.Remaining(context.Background(), team)
	if err != nil {
		t.Fatal(err)
	}
	if !rem.Reserved.IsZero() {
		t.Errorf("reservations left: %+v", rem.Reserved)
	}
	return rem.Used.USDMicros
}

// dailyTeamPolicy is a policy of a $100 daily team budget.
func dailyTeamPolicy() *policies.Policy {
	return &policies.Policy{Version: 1, Name: "billing", Budget: policies.Budget{
		Team: policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: 100 * policies.Dollar},
	}}
}

// TestLangchaingoAudioTokensAtAudioRates: an audio answer through
// langchaingo's openai backend wrapped by the langchaingo adapter. The
// backend reports the audio counts (GenerationInfo PromptAudioTokens,
// CompletionAudioTokens), which the adapter bills at the audio rates —
// $0.0410, not the $0.0050 of the same tokens at the text rates.
func TestLangchaingoAudioTokensAtAudioRates(t *testing.T) {
	const model = "gpt-4o-audio-preview"
	body := `{"id":"c1","object":"chat.completion","created":1,"model":"` + model + `","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":500,"completion_tokens":400,"total_tokens":900,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":300},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":350}}}`
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Body: []byte(body)})
	p := dailyTeamPolicy()
	store := budget.NewMemoryStore()
	var cost atomic.Int64
	inner, err := lcopenai.New(lcopenai.WithModel(model), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
		lcopenai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{model: inner}, billingChain(p, store, &cost))
	ctx := middleware.WithTeam(context.Background(), "sre")
	if _, err := llm.GenerateContent(ctx, []llms.MessageContent{human("hi")}, llms.WithMaxTokens(1000)); err != nil {
		t.Fatal(err)
	}
	const want = 200*2_500_000 + 300*40_000_000 + 50*10_000_000 + 350*80_000_000
	if got := cost.Load(); got != want {
		t.Errorf("reported %s, the provider bills %s", policies.PicoUSD(got), policies.PicoUSD(want))
	}
	if got := ledgerSpent(t, p, store, "sre"); got != policies.PicoUSD(want).Ceil().Micro() {
		t.Errorf("ledger %d µ$, the provider bills %s", got, policies.PicoUSD(want))
	}
}

// TestCutStreamOfNChoicesBillsEveryChoice: a stream with n = 3 is cut
// after all three choices streamed their text. The provider bills the
// output of the three choices. Cut after its usage chunk, the call is
// billed that usage (which counts every choice); cut before it, the
// estimate that replaces the missing usage (Meter and budget ledger alike)
// counts every choice's text, not the first choice's alone.
func TestCutStreamOfNChoicesBillsEveryChoice(t *testing.T) {
	long := strings.Repeat("All disks are healthy and below their thresholds. ", 20) // 1,000 bytes
	// Streamed in 7 chunks per choice (the role, 5 of 200 bytes, the
	// finish), then the usage chunk.
	const chunks = 3 * 7
	// The tokens of the three choices' text (the provider's count of it:
	// o200k_base, exact for gpt-4o).
	exact := 3 * tokens.New().Text("gpt-4o", long) * 10_000_000 // pico-USD at gpt-4o's $10/1M
	for _, tt := range []struct {
		name    string
		after   int   // chunks sent before the cut
		atLeast int64 // pico-USD
	}{
		// openaitest reports ceil(bytes/4) tokens per choice: 3 × 250
		// tokens at $10/1M = $0.0075.
		{"after the usage chunk", 1_000, 750 * 10_000_000},
		{"before the usage chunk", chunks, exact},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Reply{Content: long, ChunkSize: 200,
				Alternatives: []openaitest.Reply{{Content: long}, {Content: long}},
				Fault:        openaitest.Fault{Kind: openaitest.FaultCut, After: tt.after}})
			p := dailyTeamPolicy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			client := billingClient(p, srv, store, &cost)
			ctx := middleware.WithTeam(context.Background(), "sre")
			s, err := client.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", N: 3, MaxCompletionTokens: 1_000,
				StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
				Messages:      []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
			if err != nil {
				t.Fatal(err)
			}
			got := map[int]int{}
			for {
				c, err := s.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) {
						t.Fatal("the cut stream ended cleanly")
					}
					break
				}
				for _, ch := range c.Choices {
					got[ch.Index] += len(ch.Delta.Content)
				}
			}
			s.Close()
			if got[0] != len(long) || got[1] != len(long) || got[2] != len(long) {
				t.Fatalf("streamed %v bytes per choice, want %d each", got, len(long))
			}
			if c := cost.Load(); c < tt.atLeast {
				t.Errorf("the cut n=3 stream was billed %s; its three choices' output alone costs at least %s", policies.PicoUSD(c), policies.PicoUSD(tt.atLeast))
			}
			if m := ledgerSpent(t, p, store, "sre"); m < policies.PicoUSD(tt.atLeast).Ceil().Micro() {
				t.Errorf("the team ledger charged %d µ$ for the cut n=3 stream, want at least %d", m, policies.PicoUSD(tt.atLeast).Ceil().Micro())
			}
		})
	}
}

// TestEstimatedUsageIsFlagged: a stream whose provider sends no usage
// although asked for it (a vLLM or proxy that drops stream_options) is
// billed an estimate, and says so: its attempt is Estimated, and the run
// report marks the call and counts it. A call billed the provider's usage
// is not flagged.
func TestEstimatedUsageIsFlagged(t *testing.T) {
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "All good.", Usage: &openaitest.Usage{PromptTokens: 20, CompletionTokens: 3}},
		openaitest.Reply{Raw: [][]byte{
			[]byte(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"All good."},"finish_reason":null}]}` + "\n\n"),
			[]byte(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"),
			[]byte("data: [DONE]\n\n"),
		}})
	p := dailyTeamPolicy()
	var facts []middleware.CallFacts
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			facts = append(facts, f.Facts)
		}
	})
	chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(budget.NewMemoryStore()), llmwrap.WithObserver(obs),
		llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(middleware.WithTeam(context.Background(), "sre"), "r1")
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 50,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
		Messages:      []goopenai.ChatCompletionMessage{{Role: "user", Content: "How are the disks?"}}}
	for range 2 {
		drainStream(t, client, ctx, req)
	}
	if len(facts) != 2 || len(facts[0].Attempts) != 1 || len(facts[1].Attempts) != 1 {
		t.Fatalf("calls %+v", facts)
	}
	if billed := facts[0].Attempts[0]; billed.Estimated || billed.Usage.InputTokens != 20 || facts[0].UsageEstimated() {
		t.Errorf("the call billed the provider's usage: %+v", billed)
	}
	if est := facts[1].Attempts[0]; !est.Estimated || est.CostPico == 0 || !facts[1].UsageEstimated() {
		t.Errorf("the call the provider reported no usage for: %+v, want billed and flagged an estimate", est)
	}
	b, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Calls []struct {
			Estimated bool `json:"usage_estimated"`
		} `json:"calls"`
		EstimatedCalls int   `json:"estimated_calls"`
		EstimatedPico  int64 `json:"estimated_usd_pico"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Calls) != 2 || rep.Calls[0].Estimated || !rep.Calls[1].Estimated || rep.EstimatedCalls != 1 || rep.EstimatedPico != facts[1].CostPico {
		t.Errorf("the report does not say which call was billed an estimate:\n%s", b)
	}
}

// TestCutJSONAnswerIsBilled: a non-streaming answer whose body is cut
// after the provider's 200 (the provider produced and billed the whole
// answer) is billed — at least its input, as a cut stream's or a
// timed-out attempt's is — not $0, flagged as an estimate; the team
// ledger charges what the report bills, whether a retry follows or the
// cut attempt is the call's last.
func TestCutJSONAnswerIsBilled(t *testing.T) {
	prompt := strings.Repeat("Check the disks. ", 200)
	cut := openaitest.Reply{Content: strings.Repeat("x", 4000), Fault: openaitest.Fault{Kind: openaitest.FaultCut}}
	t.Run("retried", func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(cut, openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 1_000, CompletionTokens: 10}})
		p := dailyTeamPolicy()
		p.Fallback.Retry = policies.Retry{MaxAttempts: 2, BaseDelay: policies.Duration(1)}
		store := budget.NewMemoryStore()
		var cost atomic.Int64
		var attempts []middleware.Attempt
		obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if f, ok := e.(middleware.CallFinished); ok {
				cost.Add(f.Facts.CostPico)
				attempts = f.Facts.Attempts
			}
		})
		chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = "http://openai.test/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
		client := goopenai.NewClientWithConfig(cfg)
		ctx := middleware.WithTeam(context.Background(), "sre")
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}}); err != nil {
			t.Fatal(err)
		}
		if srv.Count() != 2 {
			t.Fatalf("%d requests, want 2", srv.Count())
		}
		for i, a := range attempts {
			t.Logf("attempt %d: %s err=%v usage=%+v cost=%s estimated=%v", i+1, a.Model, a.Err, a.Usage, policies.PicoUSD(a.CostPico), a.Estimated)
		}
		const answer = 1_000*2_500_000 + 10*10_000_000
		if c := cost.Load(); c <= answer {
			t.Errorf("the call cost %s: the second answer's bill alone; the cut first answer (billed by the provider) cost nothing", policies.PicoUSD(c))
		}
		if m := ledgerSpent(t, p, store, "sre"); m <= policies.PicoUSD(answer).Ceil().Micro() {
			t.Errorf("the ledger charged %d µ$: the second answer alone", m)
		}
		if len(attempts) != 2 || !attempts[0].Estimated || attempts[0].Usage.OutputTokens == 0 || attempts[1].Estimated {
			t.Errorf("attempts %+v: want the cut one billed an estimate of its input and the output read, flagged", attempts)
		}
		if m, want := ledgerSpent(t, p, store, "sre"), policies.PicoUSD(cost.Load()).Ceil().Micro(); m != want {
			t.Errorf("the ledger charged %d µ$, the report bills %s", m, policies.PicoUSD(cost.Load()))
		}
	})
	t.Run("the call's last attempt", func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(cut)
		p := dailyTeamPolicy()
		store := budget.NewMemoryStore()
		var cost atomic.Int64
		client := billingClient(p, srv, store, &cost)
		ctx := middleware.WithTeam(context.Background(), "sre")
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}})
		if err == nil || srv.Count() != 1 {
			t.Fatalf("%d requests, err %v: want the cut answer's error", srv.Count(), err)
		}
		// Its input alone: ≥ 600 tokens of gpt-4o at $2.50/1M.
		if c := cost.Load(); c < 600*2_500_000 {
			t.Errorf("the cut answer was billed %s", policies.PicoUSD(c))
		}
		if m, want := ledgerSpent(t, p, store, "sre"), policies.PicoUSD(cost.Load()).Ceil().Micro(); m != want {
			t.Errorf("the ledger charged %d µ$, the report bills %s", m, policies.PicoUSD(cost.Load()))
		}
	})
	t.Run("langchaingo through NewTransport", func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(cut)
		p := dailyTeamPolicy()
		store := budget.NewMemoryStore()
		var cost atomic.Int64
		inner, err := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
			lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
		if err != nil {
			t.Fatal(err)
		}
		llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
		ctx := middleware.WithTeam(context.Background(), "sre")
		if _, err := llm.GenerateContent(ctx, []llms.MessageContent{human(prompt)}, llms.WithMaxTokens(2000)); !errors.Is(err, middleware.ErrNetwork) {
			t.Fatalf("err %v, want the cut answer's network error", err)
		}
		if c := cost.Load(); c < 600*2_500_000 {
			t.Errorf("the cut answer was billed %s", policies.PicoUSD(c))
		}
		if m, want := ledgerSpent(t, p, store, "sre"), policies.PicoUSD(cost.Load()).Ceil().Micro(); m != want {
			t.Errorf("the ledger charged %d µ$, the report bills %s", m, policies.PicoUSD(cost.Load()))
		}
	})
}

// TestLangchaingoCutStreamOfNChoicesBillsEveryChoice: as
// TestCutStreamOfNChoicesBillsEveryChoice, through langchaingo's openai
// backend wrapped by the langchaingo adapter with twlc.NewTransport. The
// backend reads only the first choice of each chunk; the transport keeps
// what the others streamed, so the estimate of a stream of n = 3 cut
// before its usage chunk counts the three choices' text (before, the
// first choice's alone: a third of the bill), in the report and the
// ledger alike.
func TestLangchaingoCutStreamOfNChoicesBillsEveryChoice(t *testing.T) {
	long := strings.Repeat("All disks are healthy and below their thresholds. ", 20) // 1,000 bytes
	exact := 3 * tokens.New().Text("gpt-4o", long) * 10_000_000                      // pico-USD at gpt-4o's $10/1M
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: long, ChunkSize: 200,
		Alternatives: []openaitest.Reply{{Content: long}, {Content: long}},
		Fault:        openaitest.Fault{Kind: openaitest.FaultCut, After: 3 * 7}})
	p := dailyTeamPolicy()
	store := budget.NewMemoryStore()
	var cost atomic.Int64
	inner, err := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
		lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
	ctx := middleware.WithTeam(context.Background(), "sre")
	streamed := 0
	_, err = llm.GenerateContent(ctx, []llms.MessageContent{human("hi")}, llms.WithN(3), llms.WithMaxTokens(1_000),
		llms.WithStreamingFunc(func(_ context.Context, b []byte) error { streamed += len(b); return nil }))
	if !errors.Is(err, middleware.ErrStreamCut) {
		t.Fatalf("err %v, want the cut stream's", err)
	}
	if streamed != len(long) {
		t.Fatalf("streamed %d bytes to the caller, want the first choice's %d", streamed, len(long))
	}
	if c := cost.Load(); c < exact {
		t.Errorf("the cut n=3 stream was billed %s; its three choices' output alone costs at least %s", policies.PicoUSD(c), policies.PicoUSD(exact))
	}
	if m, want := ledgerSpent(t, p, store, "sre"), policies.PicoUSD(cost.Load()).Ceil().Micro(); m != want {
		t.Errorf("the ledger charged %d µ$, the report bills %s", m, policies.PicoUSD(cost.Load()))
	}
}
