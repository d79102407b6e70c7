package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// tierServer is an OpenAI-compatible server that bills like OpenAI's
// processing tiers: every answer reports 1,000 prompt and 100 completion
// tokens and names the tier answer returns for the request's service_tier
// ("" for none: the member is left out, as other servers do). Streams
// name the tier in every chunk but the usage chunk (also left out by some
// servers).
func tierServer(t *testing.T, calls *atomic.Int64, answer func(asked string) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Stream      bool   `json:"stream"`
			ServiceTier string `json:"service_tier"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tier := ""
		if a := answer(req.ServiceTier); a != "" {
			tier = fmt.Sprintf(`,"service_tier":%q`, a)
		}
		usage := `{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}`
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-5"%s,"choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],"usage":%s}`, tier, usage)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\"%s,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"done\"},\"finish_reason\":null}]}\n\n", tier)
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\"%s,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", tier)
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\",\"choices\":[],\"usage\":%s}\n\ndata: [DONE]\n\n", usage)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestServiceTierIsBilledAtItsRates: a call is billed at the rates of the
// processing tier the provider's answer names — priority twice the
// standard price of gpt-5, flex half — else at the one the request asked
// for, streamed or not; the Meter's cost and the team ledger agree with
// the provider's price list to the micro-dollar; and the budget reserves a
// call at its tier's rates, so a priority call the budget cannot afford is
// refused before the provider is called, where a standard one fits.
func TestServiceTierIsBilledAtItsRates(t *testing.T) {
	// 1,000 input and 100 output tokens of gpt-5, per its price list.
	const standard, priority, flex = 2_250_000_000, 4_500_000_000, 1_125_000_000 // pico-dollars
	for _, tt := range []struct {
		name    string
		asked   string
		answer  func(asked string) string
		stream  bool
		wantPic int64
	}{
		{"standard, answer names default", "", func(string) string { return "default" }, false, standard},
		{"priority asked and answered", "priority", func(a string) string { return a }, false, priority},
		{"priority streamed, usage chunk without the tier", "priority", func(a string) string { return a }, true, priority},
		{"flex asked, answer names none", "flex", func(string) string { return "" }, false, flex},
		{"flex streamed, no chunk names it", "flex", func(string) string { return "" }, true, flex},
		{"auto asked, the project's priority answered", "auto", func(string) string { return "priority" }, false, priority},
		{"priority asked, the answer says default", "priority", func(string) string { return "default" }, false, standard},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := tierServer(t, &calls, tt.answer)
			store := budget.NewMemoryStore()
			p := &policies.Policy{Version: 1, Name: "tiers", Budget: policies.Budget{
				Team: policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.Dollar},
			}}
			var cost atomic.Int64
			obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if f, ok := e.(middleware.CallFinished); ok {
					cost.Add(f.Facts.CostPico)
				}
			})
			chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs),
				llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			cfg := goopenai.DefaultConfig("test-key")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = oaiadapter.NewHTTPClient(chain)
			client := goopenai.NewClientWithConfig(cfg)
			ctx := middleware.WithTeam(context.Background(), "sre")
			req := goopenai.ChatCompletionRequest{Model: "gpt-5", MaxCompletionTokens: 200, ServiceTier: goopenai.ServiceTier(tt.asked),
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}
			if tt.stream {
				req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
				drainStream(t, client, ctx, req)
			} else if _, err := client.CreateChatCompletion(ctx, req); err != nil {
				t.Fatal(err)
			}
			if got := cost.Load(); got != tt.wantPic {
				t.Errorf("the call cost %s, want %s", policies.PicoUSD(got), policies.PicoUSD(tt.wantPic))
			}
			b, err := llmwrap.NewBudget(p, budget.WithStore(store))
			if err != nil {
				t.Fatal(err)
			}
			rem, err := b.Remaining(context.Background(), "sre")
			if err != nil {
				t.Fatal(err)
			}
			if want := policies.PicoUSD(tt.wantPic).Ceil().Micro(); rem.Used.USDMicros != want || !rem.Reserved.IsZero() {
				t.Errorf("team ledger spent %d micro-USD (reserved %+v), want %d", rem.Used.USDMicros, rem.Reserved, want)
			}
		})
	}

	t.Run("reserved at the tier's rates", func(t *testing.T) {
		var calls atomic.Int64
		srv := tierServer(t, &calls, func(a string) string { return a })
		// A run budget of $0.0045: a short prompt and 400 output tokens of
		// gpt-5 are reserved at ≈ $0.0040 at the standard $10/1M, at
		// ≈ $0.0080 at priority's $20/1M, which fits 223 output tokens:
		// fewer than the 400 the policy calls useful.
		p := &policies.Policy{Version: 1, Name: "tiers", Budget: policies.Budget{
			Run:             policies.RunBudget{MaxUSD: 4_500},
			MinOutputTokens: 400,
		}}
		chain := llmwrap.MustBuild(p, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = oaiadapter.NewHTTPClient(chain)
		client := goopenai.NewClientWithConfig(cfg)
		for _, tier := range []string{"priority", ""} {
			ctx, _ := middleware.StartRun(context.Background(), "run-"+tier)
			_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-5", MaxCompletionTokens: 400,
				ServiceTier: goopenai.ServiceTier(tier), Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}})
			switch {
			case tier == "priority" && !errors.Is(err, budget.ErrExceeded):
				t.Errorf("priority call: err %v, want a budget refusal", err)
			case tier == "" && err != nil:
				t.Errorf("standard call: %v", err)
			}
		}
		if calls.Load() != 1 {
			t.Errorf("the provider was called %d times, want once (the standard call)", calls.Load())
		}
	})
}

// TestUnpricedServiceTierIsWarnedOnce: an answer that names a service
// premium tier the catalog has no rates for on its model (gpt-5 billed
// at "ultrafast") is priced at 2.5 times the model's standard rates — the
// catalog's dearest tier, never below what the provider may bill (before,
// at the standard rates: a priority the catalog lacks was billed half its
// price) — and the logger says so once for the model and tier, not once
// per call.
func TestUnpricedServiceTierIsWarnedOnce(t *testing.T) {
	// 1,000 input and 100 output tokens of gpt-5 at 2.5 times its
	// standard $1.25/$10 per 1M (its priority is twice them), pico-dollars:
	// a tier the catalog does not price is never billed below what the
	// provider may bill.
	const standard = 1000*3_125_000 + 100*25_000_000
	var calls atomic.Int64
	srv := tierServer(t, &calls, func(string) string { return "ultrafast" })
	var logs bytes.Buffer // (the handler serializes its writes; read after the calls)
	var cost atomic.Int64
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			cost.Add(f.Facts.CostPico)
		}
	})
	p := &policies.Policy{Version: 1, Name: "tiers", Budget: policies.Budget{
		Team: policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.Dollar},
	}}
	chain := llmwrap.MustBuild(p, llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = oaiadapter.NewHTTPClient(chain)
	client := goopenai.NewClientWithConfig(cfg)
	ctx := middleware.WithTeam(context.Background(), "sre")
	const n = 3
	for range n {
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-5", MaxCompletionTokens: 200,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := cost.Load(); got != n*standard {
		t.Errorf("%d calls cost %s, want %s (2.5 times the standard rates)", n, policies.PicoUSD(got), policies.PicoUSD(n*standard))
	}
	var warnings int
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Level, Msg, Model string
			Tier              string `json:"service_tier"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Contains(rec.Msg, "service tier the catalog has no price for") {
			warnings++
			if rec.Level != "WARN" || rec.Model != "gpt-5" || rec.Tier != "ultrafast" {
				t.Errorf("warning %s", line)
			}
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings of the unpriced tier over %d calls, want 1:\n%s", warnings, n, logs.String())
	}
}

// TestOtherProvidersStandardTierIsTheStandardRates: Groq answers
// "service_tier": "on_demand" for every call that names no tier, Vertex
// (through OpenRouter) "standard": their standard tier, billed at the
// model's standard rates without a warning, as "default" is — not at 2.5
// times them, as a premium tier the catalog has no rates for is.
func TestOtherProvidersStandardTierIsTheStandardRates(t *testing.T) {
	// 1,000 input and 100 output tokens of gpt-5 at $1.25/$10 per 1M.
	const standard = 1000*1_250_000 + 100*10_000_000
	for _, tier := range []string{"on_demand", "standard"} {
		t.Run(tier, func(t *testing.T) {
			var calls atomic.Int64
			srv := tierServer(t, &calls, func(string) string { return tier })
			var logs bytes.Buffer
			var cost atomic.Int64
			obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if f, ok := e.(middleware.CallFinished); ok {
					cost.Add(f.Facts.CostPico)
				}
			})
			chain := llmwrap.MustBuild(&policies.Policy{Version: 1, Name: "tiers"}, llmwrap.WithObserver(obs),
				llmwrap.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			cfg := goopenai.DefaultConfig("test-key")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = oaiadapter.NewHTTPClient(chain)
			client := goopenai.NewClientWithConfig(cfg)
			if _, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-5", MaxCompletionTokens: 200,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}); err != nil {
				t.Fatal(err)
			}
			if got := cost.Load(); got != standard {
				t.Errorf("a call answered at %q cost %s, want %s (the standard rates)", tier, policies.PicoUSD(got), policies.PicoUSD(standard))
			}
			if strings.Contains(logs.String(), "no price for") {
				t.Errorf("a warning of the standard tier %q:\n%s", tier, logs.String())
			}
		})
	}
}
