package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

// TestMixedWorkloadFiguresAgree: after a randomised workload of cache
// hits and misses, budget refusals, retries, fallbacks, cut and malformed
// answers, streams and tool calls through go-openai, every figure agrees:
// the attempts billed the provider's usage sum to the provider's bill; the
// run's totals, its models' costs, the CallFinished events, the team
// ledger, the OpenTelemetry metrics (cost, in total and per model, token
// usage, durations, cache lookups and savings, retries, fallbacks) and the
// JSON report say the same.
func TestMixedWorkloadFiguresAgree(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	defer srv.Close()
	replies := map[int]openaitest.Reply{}
	on := func(r openaitest.Reply, m ...openaitest.Matcher) {
		rule := srv.On(m...)
		rule.Reply(r)
		replies[len(replies)] = r
	}
	on(openaitest.Unavailable(), openaitest.Model("gpt-4o"), openaitest.LastContains("[[fail]]"))
	on(openaitest.Malformed(), openaitest.Model("gpt-4o"), openaitest.LastContains("[[malformed]]"))
	on(openaitest.CutAfter(2), openaitest.Model("gpt-4o"), openaitest.LastContains("[[cut]]"))
	on(openaitest.ToolCalls(openaitest.Call("", "check_disk", `{"host":"web-1"}`)), openaitest.LastContains("[[tool]]"))
	on(openaitest.Reply{Content: "The disk on web-1 is 42% full; nothing to do.", ChunkSize: 8})

	p := mustPolicy(t, `version: 1
cache: {enabled: true, deterministic_only: false}
fallback: {models: [gpt-4o-mini], retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}}
budget:
  team: {period: monthly, max_usd: 100}
  request: {max_input_tokens: 400}
`)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	obs, err := twotel.New(twotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	store := budget.NewMemoryStore()
	chain, err := llmwrap.Build(p, llmwrap.WithObserver(middleware.Observers(obs, rec)), llmwrap.WithBudgetStore(store))
	if err != nil {
		t.Fatal(err)
	}
	client := goOpenAI(t, srv, chain, srv.Transport())
	ctx, run := middleware.StartRun(middleware.WithTeam(context.Background(), "sre"), "mixed")
	r := rand.New(rand.NewPCG(7, 9))
	var refused, failed int
	for i := range 80 {
		text := fmt.Sprintf("Check host web-%d please.", i)
		switch k := r.IntN(8); k {
		case 0:
			text = "How full is the disk?" // repeated: hits
		case 1:
			text += " [[fail]]"
		case 2:
			text += " [[malformed]]"
		case 3:
			text += " [[cut]]"
		case 4:
			text += " [[tool]]"
		case 5:
			text = strings.Repeat("log line ", 400) // over max_input_tokens: refused
		}
		req := goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: text}}}
		var err error
		if r.IntN(2) == 0 {
			req.Stream, req.StreamOptions = true, &goopenai.StreamOptions{IncludeUsage: true}
			s, serr := client.CreateChatCompletionStream(ctx, req)
			err = serr
			if serr == nil {
				for {
					if _, err = s.Recv(); err != nil {
						break
					}
				}
				s.Close()
				if errors.Is(err, io.EOF) {
					err = nil
				}
			}
		} else {
			_, err = client.CreateChatCompletion(ctx, req)
		}
		if err != nil {
			failed++
			if strings.Contains(err.Error(), "budget") {
				refused++
			}
		}
	}
	if refused == 0 || failed == refused {
		t.Fatalf("%d failures, %d refusals: want both refusals and other failures", failed, refused)
	}

	tot := run.Totals()
	calls := run.Calls()
	// The provider's bill: the usage of every request it answered whole.
	var bill middleware.Usage
	for _, rq := range srv.Requests() {
		rp := replies[rq.Rule]
		if rq.Rule < 0 {
			t.Fatalf("request %d unanswered", rq.Seq)
		}
		if rp.Error != nil || rp.Status >= 400 || rp.Fault.Kind != 0 || rp.Body != nil {
			continue
		}
		u := openaitest.UsageFor(rq.Chat, rp)
		bill.InputTokens += int64(u.PromptTokens)
		bill.OutputTokens += int64(u.CompletionTokens)
	}
	var billed, est middleware.Usage
	var finishedCost, attemptsCost int64
	for _, f := range rec.finished() {
		finishedCost += f.Facts.CostPico
	}
	var retries int
	for _, c := range calls {
		retries += len(c.Retries)
		for _, a := range c.Attempts {
			attemptsCost += a.CostPico
			if a.Estimated {
				est = est.Add(a.Usage)
			} else {
				billed = billed.Add(a.Usage)
			}
		}
	}
	if billed.InputTokens != bill.InputTokens || billed.OutputTokens != bill.OutputTokens {
		t.Errorf("billed %d in / %d out (provider-counted attempts), the provider's bill %d / %d", billed.InputTokens, billed.OutputTokens, bill.InputTokens, bill.OutputTokens)
	}
	if tot.Usage.InputTokens != billed.InputTokens+est.InputTokens || tot.Usage.OutputTokens != billed.OutputTokens+est.OutputTokens {
		t.Errorf("run totals %+v, attempts %+v + estimated %+v", tot.Usage, billed, est)
	}
	if tot.CostPico != finishedCost || tot.CostPico != attemptsCost {
		t.Errorf("run cost %d, events %d, attempts %d", tot.CostPico, finishedCost, attemptsCost)
	}
	var byModel int64
	for _, m := range tot.ByModel {
		byModel += m.CostPico
	}
	if byModel != tot.CostPico {
		t.Errorf("models' costs sum to %d, the run's %d", byModel, tot.CostPico)
	}
	// The ledger charges micro-dollars, each settlement rounded up.
	spent := ledgerSpent(t, p, store, "sre")
	if low := (tot.CostPico + 999_999) / 1_000_000; spent < low || spent > low+int64(len(calls)) {
		t.Errorf("ledger spent %d µ$, the run cost %d pico", spent, tot.CostPico)
	}
	// OTel.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	hist := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					k := m.Name
					if v, ok := dp.Attributes.Value(attribute.Key("tokenwise.cache.status")); ok {
						k += "/" + v.AsString()
					}
					if v, ok := dp.Attributes.Value(attribute.Key("gen_ai.response.model")); ok && m.Name == "tokenwise.cost" {
						sums[k+"/"+v.AsString()] += dp.Value
					}
					sums[k] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					k := m.Name
					if v, ok := dp.Attributes.Value(attribute.Key("gen_ai.token.type")); ok {
						k += "/" + v.AsString()
					}
					hist[k] += dp.Sum
					hist[k+"#"] += float64(dp.Count)
				}
			}
		}
	}
	if sums["tokenwise.cost"] != tot.CostPico {
		t.Errorf("tokenwise.cost %d, run %d", sums["tokenwise.cost"], tot.CostPico)
	}
	for name, m := range tot.ByModel {
		if got := sums["tokenwise.cost/"+name]; got != m.CostPico {
			t.Errorf("tokenwise.cost of %s %d, run %d", name, got, m.CostPico)
		}
	}
	if int64(hist["gen_ai.client.token.usage/input"]) != tot.Usage.InputTokens || int64(hist["gen_ai.client.token.usage/output"]) != tot.Usage.OutputTokens {
		t.Errorf("token usage %v/%v, run %+v", hist["gen_ai.client.token.usage/input"], hist["gen_ai.client.token.usage/output"], tot.Usage)
	}
	if int(hist["gen_ai.client.operation.duration#"]) != len(calls) {
		t.Errorf("%v durations, %d calls", hist["gen_ai.client.operation.duration#"], len(calls))
	}
	if int(sums["tokenwise.cache.lookups/hit"]) != tot.CacheHits || sums["tokenwise.cache.saved"] != tot.SavedPico {
		t.Errorf("cache hits %d saved %d, run %d saved %d", sums["tokenwise.cache.lookups/hit"], sums["tokenwise.cache.saved"], tot.CacheHits, tot.SavedPico)
	}
	if int(sums["tokenwise.retries"]) != retries || int(sums["tokenwise.fallbacks"]) != len(rec.fellBack()) {
		t.Errorf("retries %d fallbacks %d, run %d / %d", sums["tokenwise.retries"], sums["tokenwise.fallbacks"], retries, len(rec.fellBack()))
	}
	// The JSON report.
	b, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Input     int64 `json:"input_tokens"`
		Output    int64 `json:"output_tokens"`
		Cost      int64 `json:"cost_usd_pico"`
		CacheHits int   `json:"cache_hits"`
		Calls     []json.RawMessage
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if js.Input != tot.Usage.InputTokens || js.Output != tot.Usage.OutputTokens || js.Cost != tot.CostPico || js.CacheHits != tot.CacheHits || len(js.Calls) != len(calls) {
		t.Errorf("JSON %d in / %d out / %d pico / %d hits / %d calls, run %+v %d %d %d", js.Input, js.Output, js.Cost, js.CacheHits, len(js.Calls), tot.Usage, tot.CostPico, tot.CacheHits, len(calls))
	}
}
