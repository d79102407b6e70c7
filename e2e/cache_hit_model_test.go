package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

// A cache hit is reported under the model whose answer it served, the one
// its saving is priced at: a tool-selection call for gpt-4o that routing
// sent to gpt-4o-mini, asked again, is a gpt-4o-mini hit that saved
// gpt-4o-mini's price of the answer — not a gpt-4o call that saved
// gpt-4o-mini's price. Through the real go-openai client.
func TestCacheHitIsReportedUnderTheModelThatAnswered(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	call := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`))
	call.Usage = &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 100}
	srv.On(openaitest.LastRole("user")).Reply(call)
	p := mustPolicy(t, stagePolicy+"cache: {enabled: true, ttl: 1h, max_entries: 100}\n")
	cheap, _ := llmwrap.Pricer(p).Cost("gpt-4o-mini", middleware.Usage{InputTokens: 1000, OutputTokens: 100})
	client := goClient(t, srv, p)
	ctx, run := middleware.StartRun(context.Background(), "hit-model")
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space."}}, Tools: diskTools}
	for range 2 {
		if _, err := client.CreateChatCompletion(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini" {
		t.Fatalf("upstream models %s, want gpt-4o-mini once", got)
	}
	calls := run.Calls()
	if len(calls) != 2 || calls[1].Cache != middleware.CacheHit || calls[1].SavedPico != cheap {
		t.Fatalf("calls %+v", calls)
	}
	if calls[1].Model != "gpt-4o-mini" || calls[1].RequestedModel != "gpt-4o" {
		t.Errorf("the hit: model %q, requested %q; want gpt-4o-mini (its answer's), gpt-4o", calls[1].Model, calls[1].RequestedModel)
	}
	tot := run.Totals()
	if m := tot.ByModel["gpt-4o-mini"]; m.Calls != 2 || m.CacheHits != 1 || m.SavedPico != cheap {
		t.Errorf("gpt-4o-mini's totals %+v, want 2 calls, 1 hit that saved %d", m, cheap)
	}
	if m, ok := tot.ByModel["gpt-4o"]; ok {
		t.Errorf("gpt-4o answered nothing, yet has totals %+v", m)
	}
	if rep := observe.Report(run); !strings.Contains(rep, "gpt-4o-mini: 2 calls (1 from the cache, saved "+middleware.FormatPico(cheap)+")") {
		t.Errorf("report:\n%s", rep)
	}
}

// The JSON report's totals per model have what the text report's have: a
// model's cache hits and what they saved, which add up to the run's.
func TestReportJSONHasEachModelsCacheHits(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	call := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`))
	call.Usage = &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 100}
	srv.On(openaitest.LastRole("user")).Reply(call)
	p := mustPolicy(t, stagePolicy+"cache: {enabled: true, ttl: 1h, max_entries: 100}\n")
	cheap, _ := llmwrap.Pricer(p).Cost("gpt-4o-mini", middleware.Usage{InputTokens: 1000, OutputTokens: 100})
	client := goClient(t, srv, p)
	ctx, run := middleware.StartRun(context.Background(), "hit-json")
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space."}}, Tools: diskTools}
	for range 3 {
		if _, err := client.CreateChatCompletion(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	js, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Saved     int64 `json:"saved_usd_pico"`
		CacheHits int   `json:"cache_hits"`
		ByModel   map[string]struct {
			Calls     int   `json:"calls"`
			CacheHits int   `json:"cache_hits"`
			Saved     int64 `json:"saved_usd_pico"`
		} `json:"by_model"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.ByModel["gpt-4o-mini"]
	if doc.CacheHits != 2 || doc.Saved != 2*cheap || m.Calls != 3 || m.CacheHits != 2 || m.Saved != 2*cheap {
		t.Errorf("want 2 hits that saved %d, all gpt-4o-mini's of its 3 calls; JSON report: %s", 2*cheap, js)
	}
}
