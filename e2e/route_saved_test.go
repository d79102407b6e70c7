package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

// int64Sum returns the sum of the data points of the int64 sum name (a
// counter or an up-down counter) whose attributes have every key=value
// of kv (pairs), and how many points matched.
func int64Sum(t *testing.T, reader *sdkmetric.ManualReader, name string, kv ...string) (int64, int) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var sum int64
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s: %T, not an int64 sum", name, m.Data)
			}
		points:
			for _, dp := range s.DataPoints {
				for i := 0; i+1 < len(kv); i += 2 {
					if v, ok := dp.Attributes.Value(attribute.Key(kv[i])); !ok || v.String() != kv[i+1] {
						continue points
					}
				}
				sum += dp.Value
				n++
			}
		}
	}
	return sum, n
}

// What routing saved is reported with each call, in the run's totals and
// report, and in the OTel metrics: the answer's tokens at the price of the
// model the caller asked for, less what the call cost. Through the real
// go-openai client:
//   - a tool-selection call routed from gpt-4o to gpt-4o-mini saved
//     gpt-4o's price of its 1,000 + 100 tokens less gpt-4o-mini's;
//   - the next call, on the model asked for (the default rule), saved
//     nothing, although its answer names a dated snapshot with a price of
//     its own;
//   - a cascade that escalated from the gpt-4o-mini asked for to gpt-4o
//     cost gpt-4o's whole answer more (both answers were billed);
//   - a call a rule sent to gpt-4o-mini, whose answer the cascade
//     rejected, went back to the gpt-4o asked for: routing cost it
//     gpt-4o-mini's answer;
//   - a cascade that started a call for gpt-4.1 at gpt-4o-mini saved
//     gpt-4.1's price of the answer less gpt-4o-mini's (the cascade's
//     start is a decision in the call's rule).
func TestRoutingSavingsAreReported(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	ot, err := twotel.New(twotel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	u := &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 100}
	one := middleware.Usage{InputTokens: 1000, OutputTokens: 100}
	pricer := llmwrap.Pricer(mustPolicy(t, stagePolicy))
	strong, _ := pricer.Cost("gpt-4o", one)
	cheap, _ := pricer.Cost("gpt-4o-mini", one)
	if strong != 3_500_000_000 || cheap != 210_000_000 {
		t.Fatalf("prices of 1,000 + 100 tokens: gpt-4o %d, gpt-4o-mini %d pico-USD", strong, cheap)
	}

	// Stage routing.
	srv := openaitest.NewServer(t)
	call := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`))
	call.Usage = u
	answer := openaitest.Text("The disk is 95% full.")
	answer.Usage = u
	answer.Model = "gpt-4o-2024-05-13" // a snapshot with a price of its own: $5/M and $15/M
	srv.On(openaitest.LastRole("tool")).Reply(answer)
	srv.On(openaitest.LastRole("user")).Reply(call)
	client := goClient(t, srv, mustPolicy(t, stagePolicy), llmwrap.WithObserver(ot))
	ctx, run := middleware.StartRun(context.Background(), "routed")
	msgs := []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space. Sort it out."}}
	resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs, Tools: diskTools})
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, resp.Choices[0].Message, goopenai.ChatCompletionMessage{Role: "tool", ToolCallID: "c1", Content: "95%"})
	if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs, Tools: diskTools}); err != nil {
		t.Fatal(err)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("upstream models %s", got)
	}
	calls := run.Calls()
	if c := calls[0]; c.RoutingSavedPico != strong-cheap || c.CostPico != cheap {
		t.Errorf("the routed call: saved %d, cost %d; want saved %d, cost %d", c.RoutingSavedPico, c.CostPico, strong-cheap, cheap)
	}
	const snapshot = 6_500_000_000 // 1,000 + 100 tokens at gpt-4o-2024-05-13's price
	if c := calls[1]; c.Routed || c.RoutingSavedPico != 0 || c.CostPico != snapshot {
		t.Errorf("the call on the model asked for: routed %v, saved %d, cost %d; want false, 0, %d", c.Routed, c.RoutingSavedPico, c.CostPico, snapshot)
	}
	if got := run.Totals().RoutingSavedPico; got != strong-cheap {
		t.Errorf("the run's routing saved %d, want %d", got, strong-cheap)
	}
	if rep := observe.Report(run); !strings.Contains(rep, "routing saved: $0.00329 against the models asked for") {
		t.Errorf("report:\n%s", rep)
	}
	js, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Routed int64 `json:"routing_saved_usd_pico"`
		Calls  []struct {
			Routed int64 `json:"routing_saved_usd_pico"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(js, &doc); err != nil || doc.Routed != strong-cheap || len(doc.Calls) != 2 || doc.Calls[0].Routed != strong-cheap || doc.Calls[1].Routed != 0 {
		t.Errorf("JSON report (%v): %s", err, js)
	}

	// A cascade that escalated.
	srv2 := openaitest.NewServer(t)
	bad := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path": "/`))
	bad.Usage = u
	good := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`))
	good.Usage = u
	srv2.On(openaitest.Model("gpt-4o-mini")).Reply(bad)
	srv2.On(openaitest.Model("gpt-4o")).Reply(good)
	client2 := goClient(t, srv2, mustPolicy(t, cascadePolicy), llmwrap.WithObserver(ot))
	ctx2, run2 := middleware.StartRun(context.Background(), "cascade")
	if _, err := client2.CreateChatCompletion(ctx2, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}, Tools: diskTools}); err != nil {
		t.Fatal(err)
	}
	if c := run2.Calls()[0]; c.CostPico != cheap+strong || c.RoutingSavedPico != -strong {
		t.Errorf("the escalated call: cost %d, saved %d; want cost %d, saved %d", c.CostPico, c.RoutingSavedPico, cheap+strong, -strong)
	}
	if rep := observe.Report(run2); !strings.Contains(rep, "routing cost: $0.0035 more than the models asked for") {
		t.Errorf("report:\n%s", rep)
	}

	// A cascade that starts a call for a model it does not list (no rule
	// matched, no default) at its first model decides that model too.
	srv3 := openaitest.NewServer(t)
	srv3.On(openaitest.Model("gpt-4o-mini")).Reply(good)
	client3 := goClient(t, srv3, mustPolicy(t, cascadePolicy), llmwrap.WithObserver(ot))
	ctx3, run3 := middleware.StartRun(context.Background(), "cascade-start")
	if _, err := client3.CreateChatCompletion(ctx3, goopenai.ChatCompletionRequest{Model: "gpt-4.1",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}, Tools: diskTools}); err != nil {
		t.Fatal(err)
	}
	gpt41, _ := pricer.Cost("gpt-4.1", one)
	if c := run3.Calls()[0]; c.Rule != "cascade: starts at gpt-4o-mini" || c.CostPico != cheap || c.RoutingSavedPico != gpt41-cheap {
		t.Errorf("the call the cascade started: rule %q, cost %d, saved %d; want cost %d, saved %d", c.Rule, c.CostPico, c.RoutingSavedPico, cheap, gpt41-cheap)
	}

	// A call routed away and escalated back to the model asked for paid
	// for the rejected answer: routing cost it.
	srv4 := openaitest.NewServer(t)
	srv4.On(openaitest.Model("gpt-4o-mini")).Reply(bad)
	srv4.On(openaitest.Model("gpt-4o")).Reply(good)
	client4 := goClient(t, srv4, mustPolicy(t, stagePolicy+"  cascade:\n    models: [gpt-4o-mini, gpt-4o]\n"))
	ctx4, run4 := middleware.StartRun(context.Background(), "back")
	if _, err := client4.CreateChatCompletion(ctx4, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}, Tools: diskTools}); err != nil {
		t.Fatal(err)
	}
	if c := run4.Calls()[0]; c.Model != "gpt-4o" || !c.Routed || c.RoutingSavedPico != -cheap {
		t.Errorf("the call routed back to gpt-4o: model %s, routed %v, saved %d; want gpt-4o, true, %d", c.Model, c.Routed, c.RoutingSavedPico, -cheap)
	}

	// The metrics: what routing saved by the model asked for, and each
	// decision by requested and chosen model and stage.
	if got, _ := int64Sum(t, reader, "tokenwise.route.saved", "gen_ai.request.model", "gpt-4o"); got != strong-cheap {
		t.Errorf("tokenwise.route.saved for gpt-4o = %d, want %d", got, strong-cheap)
	}
	if got, _ := int64Sum(t, reader, "tokenwise.route.saved", "gen_ai.request.model", "gpt-4o-mini"); got != -strong {
		t.Errorf("tokenwise.route.saved for gpt-4o-mini = %d, want %d", got, -strong)
	}
	if got, _ := int64Sum(t, reader, "tokenwise.route.decisions", "tokenwise.from", "gpt-4o", "tokenwise.to", "gpt-4o-mini", "tokenwise.stage", "tool_selection"); got != 1 {
		t.Errorf("decisions gpt-4o → gpt-4o-mini at tool selection = %d, want 1", got)
	}
	if got, _ := int64Sum(t, reader, "tokenwise.route.decisions", "tokenwise.from", "gpt-4o-mini", "tokenwise.to", "gpt-4o"); got != 1 {
		t.Errorf("the cascade's escalations = %d, want 1", got)
	}
}
