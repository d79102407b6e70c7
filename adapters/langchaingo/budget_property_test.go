package langchaingo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLangchaingoRunAndTeamBudgetsUnderConcurrency: agent runs call a
// langchaingo model through twlc concurrently — streams and not, tool
// calls, a 500 or a 429 retried, a model that always fails and falls
// back to the cheaper one — under a run budget in USD and a team budget in
// tokens, with soft limits. At the end every run's ledger and the team's
// hold exactly what the scripted server's answers bill (their usage at the
// catalog's rates), never more than their limits, nothing reserved; no
// call a budget refused got an answer; and each soft limit a ledger
// reached fired once, and none it did not reach.
func TestLangchaingoRunAndTeamBudgetsUnderConcurrency(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { lcBudgetProperty(t, seed) })
	}
}

var lcPico = map[string][2]int64{
	"gpt-4o":      {2_500_000, 10_000_000},
	"gpt-4o-mini": {150_000, 600_000},
}

func lcBudgetProperty(t *testing.T, seed uint64) {
	const maxOut = 40
	srv := openaitest.New()
	type bill struct{ in, out int }
	billed := map[int]bill{}
	rules := 0
	rule := func(marker string, times int, rep openaitest.Reply, ms ...openaitest.Matcher) {
		r := srv.On(append(ms, openaitest.LastContains(marker))...).Reply(rep)
		if times > 0 {
			r.Times(times)
		}
		if rep.Usage != nil && rep.Status == 0 {
			billed[rules] = bill{rep.Usage.PromptTokens, rep.Usage.CompletionTokens}
		}
		rules++
	}
	r := rand.New(rand.NewPCG(seed, 3))
	answer := func() openaitest.Reply {
		k := 1 + r.IntN(maxOut)
		return openaitest.Reply{Content: strings.TrimSpace(strings.Repeat(" ok", k)), Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: k}}
	}
	kinds := []string{"ok", "stream", "tool", "500", "429", "fallback"}
	type call struct{ kind, marker string }
	const runs, perRun = 6, 8
	plan := make([][]call, runs)
	for ri := range runs {
		for ci := range perRun {
			kind, marker := kinds[r.IntN(len(kinds))], fmt.Sprintf("#r%dc%d.", ri, ci)
			switch kind {
			case "ok", "stream":
				rule(marker, 0, answer())
			case "tool":
				k := 10 + r.IntN(maxOut-10)
				rule(marker, 0, openaitest.Reply{ToolCalls: []openaitest.ToolCall{openaitest.Call("", "search", `{"q":"x"}`)},
					Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: k}})
			case "500":
				rule(marker, 1, openaitest.ServerError())
				rule(marker, 0, answer())
			case "429":
				rule(marker, 1, openaitest.RateLimited(0))
				rule(marker, 0, answer())
			case "fallback":
				rule(marker, 0, openaitest.ServerError(), openaitest.Model("gpt-4o"))
				rule(marker, 0, answer(), openaitest.Model("gpt-4o-mini"))
			}
			plan[ri] = append(plan[ri], call{kind, marker})
		}
	}
	p, err := policies.LoadBytes([]byte(fmt.Sprintf(`version: 1
name: prop
budget:
  run: {max_usd: 0.0015}
  team: {period: daily, max_tokens: 800}
  min_output_tokens: %d
  warn_at: [0.5, 0.8, 1.0]
fallback:
  models: [gpt-4o, gpt-4o-mini]
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
`, maxOut)), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type warnKey struct {
		run, scope, unit string
		f                float64
	}
	var mu sync.Mutex
	warned := map[warnKey]int{}
	obs := middleware.ObserverFunc(func(ctx context.Context, e middleware.Event) {
		if w, ok := e.(middleware.BudgetWarning); ok {
			k := warnKey{scope: w.Scope, unit: w.Unit, f: w.Fraction}
			if w.Scope == "run" {
				k.run = middleware.RunFrom(ctx).ID()
			}
			mu.Lock()
			warned[k]++
			mu.Unlock()
		}
	})
	store := budget.NewMemoryStore()
	chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	models := twlc.Models{}
	for _, m := range []string{"gpt-4o", "gpt-4o-mini"} {
		llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel(m),
			openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
		if err != nil {
			t.Fatal(err)
		}
		models[m] = llm
	}
	llm := twlc.New(models, chain, twlc.WithDefaultModel("gpt-4o"))
	ledger, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	team := middleware.WithTeam(context.Background(), "devops")
	tool := llms.Tool{Type: "function", Function: &llms.FunctionDefinition{Name: "search",
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}}}}

	refused := map[string]bool{}
	runOf := map[string]*middleware.Run{}
	var wg sync.WaitGroup
	for ri := range runs {
		ctx, run := middleware.StartRun(team, fmt.Sprintf("run-%d", ri))
		runOf[run.ID()] = run
		wg.Go(func() {
			for _, c := range plan[ri] {
				opts := []llms.CallOption{llms.WithMaxTokens(maxOut)}
				switch c.kind {
				case "stream":
					opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
				case "tool":
					opts = append(opts, llms.WithTools([]llms.Tool{tool}))
				}
				_, err := llm.GenerateContent(ctx, []llms.MessageContent{human("question " + c.marker)}, opts...)
				switch {
				case err == nil:
				case errors.Is(err, budget.ErrExceeded),
					c.kind == "fallback" && errors.Is(err, middleware.ErrUnavailable): // gpt-4o-mini refused
					mu.Lock()
					refused[c.marker] = true
					mu.Unlock()
				default:
					t.Errorf("%s call %s: %v", c.kind, c.marker, err)
				}
			}
		})
	}
	wg.Wait()

	// The oracle: the server's answers, at the catalog's rates.
	runPico := map[string]int64{}
	var teamTokens int64
	answered := map[string]bool{}
	for _, rec := range srv.Requests() {
		b, ok := billed[rec.Rule]
		if !ok || rec.Chat == nil {
			continue
		}
		last := rec.Chat.LastMessage().Content.String()
		var ri int
		if _, err := fmt.Sscanf(last[strings.Index(last, "#r"):], "#r%d", &ri); err != nil {
			t.Fatal(err)
		}
		rates := lcPico[rec.Chat.Model]
		runPico[fmt.Sprintf("run-%d", ri)] += int64(b.in)*rates[0] + int64(b.out)*rates[1]
		teamTokens += int64(b.in + b.out)
		answered[last[strings.Index(last, "#"):]] = true
	}
	for m := range refused {
		if answered[m] {
			t.Errorf("call %s was refused by a budget, and answered by the server", m)
		}
	}
	runLim, teamLim := ledger.Limits()
	fired := func(k warnKey, used, limit int64) {
		want := 0
		if float64(used) >= k.f*float64(limit) {
			want = 1
		}
		if got := warned[k]; got != want {
			t.Errorf("%+v: the soft limit fired %d times at %d of %d, want %d", k, got, used, limit, want)
		}
	}
	for id, run := range runOf {
		bal := ledger.RunBalance(run)
		want := (runPico[id] + 999_999) / 1_000_000
		if bal.Used.USDMicros != want || !bal.Reserved.IsZero() || bal.Used.USDMicros > runLim.USDMicros {
			t.Errorf("%s: ledger used %+v, reserved %+v; want %d µ$ as the server billed, within %d µ$, nothing reserved",
				id, bal.Used, bal.Reserved, want, runLim.USDMicros)
		}
		for _, f := range []float64{0.5, 0.8, 1.0} {
			fired(warnKey{run: id, scope: "run", unit: budget.UnitUSD, f: f}, bal.Used.USDMicros, runLim.USDMicros)
		}
	}
	rem, err := ledger.Remaining(team, "devops")
	if err != nil {
		t.Fatal(err)
	}
	if rem.Used.Tokens != teamTokens || !rem.Reserved.IsZero() || rem.Used.Tokens > teamLim.Tokens {
		t.Errorf("team ledger used %+v, reserved %+v; want %d tokens as the server billed, within %d, nothing reserved",
			rem.Used, rem.Reserved, teamTokens, teamLim.Tokens)
	}
	for _, f := range []float64{0.5, 0.8, 1.0} {
		fired(warnKey{scope: "team:devops", unit: budget.UnitTokens, f: f}, rem.Used.Tokens, teamLim.Tokens)
	}
	if len(refused) == 0 {
		t.Errorf("no call refused: the budgets did not bind")
	}
	t.Logf("%d refused; team %+v; warnings %v", len(refused), rem.Used, warned)
}
