package route_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// tenRules is a 10-rule policy whose rules all miss the benchmark request
// but the last, so that every condition kind is evaluated.
const tenRules = `version: 1
budget:
  run: {max_usd: 5}
routing:
  default: gpt-4o
  rules:
    - {name: r1, when: {stage: result_analysis}, model: gpt-4o}
    - {name: r2, when: {team: finance}, model: gpt-4.1}
    - {name: r3, when: {keywords: [deploy, rollback, migrate]}, model: gpt-4.1}
    - {name: r4, when: {keywords: [incident, outage], keywords_in: conversation}, model: gpt-4.1}
    - {name: r5, when: {regex: '(?i)\bINC-\d{4,}\b'}, model: gpt-4.1-mini}
    - {name: r6, when: {min_input_tokens: 100000}, model: gpt-4.1}
    - {name: r7, when: {has_tools: false}, model: gpt-4o-mini}
    - {name: r8, when: {budget_below: {fraction: 0.1}}, model: gpt-4o-mini}
    - {name: r9, when: {keywords: [analyse, plan, fix], max_input_tokens: 50}, model: gpt-4o}
    - {name: r10, when: {stage: tool_selection, keywords: [check, status, disk]}, model: gpt-4o-mini}
`

func benchRequest() *middleware.Request {
	req := &middleware.Request{Model: "gpt-4o", Tools: []middleware.Tool{{Name: "check_disk", Description: "Check disk usage",
		Parameters: []byte(`{"type":"object","properties":{"path":{"type":"string"}}}`)}}}
	req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleSystem, Content: "You are a careful SRE assistant. Use the tools."})
	for i := range 4 {
		req.Messages = append(req.Messages,
			middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf("Earlier question %d about the web tier and its logs.", i)},
			middleware.Message{Role: middleware.RoleAssistant, Content: fmt.Sprintf("Earlier answer %d: all looks fine on the web tier.", i)})
	}
	req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleUser, Content: "I'm out of disk space on web-3. Check the disk and sort it out."})
	return req
}

// BenchmarkRouteDecision is one routing decision of a 10-rule policy on a
// 10-message request, inside an instrumented call whose input estimate the
// budget layer already made (tokens.ForCall memoises it per call).
func BenchmarkRouteDecision(b *testing.B) {
	p := mustPolicy(b, tenRules)
	est := tokens.New()
	rules, err := llmwrap.NewRules(p, route.WithRulesEstimator(route.EstimatorFunc(func(ctx context.Context, model string, req *middleware.Request) int64 {
		return tokens.ForCall(ctx, est, model, req)
	})))
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest()
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	ctx = middleware.WithCallInfo(ctx, &middleware.CallInfo{})
	tokens.ForCall(ctx, est, req.Model, req) // the budget's count of this call
	if d, _ := rules.Route(ctx, route.NewQuery(ctx, req)); d.Model != "gpt-4o-mini" || d.Rule != `rule 10 "r10": stage=tool_selection, keyword "check"` {
		b.Fatalf("decision %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		rules.Route(ctx, route.NewQuery(ctx, req))
	}
}

// BenchmarkRouteDecisionColdEstimate is the same decision in a fresh call:
// the router makes the call's estimate itself (per-message counts are
// cached across calls by the estimator).
func BenchmarkRouteDecisionColdEstimate(b *testing.B) {
	p := mustPolicy(b, tenRules)
	est := tokens.New()
	rules, err := llmwrap.NewRules(p, route.WithRulesEstimator(route.EstimatorFunc(func(ctx context.Context, model string, req *middleware.Request) int64 {
		return tokens.ForCall(ctx, est, model, req)
	})))
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest()
	base, _ := middleware.StartRun(context.Background(), "bench")
	b.ReportAllocs()
	for b.Loop() {
		ctx := middleware.WithCallInfo(base, &middleware.CallInfo{})
		rules.Route(ctx, route.NewQuery(ctx, req))
	}
}
