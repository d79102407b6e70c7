package route_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// userReq is an agent's request: user texts, one tool offered.
func userReq(texts ...string) *middleware.Request {
	r := &middleware.Request{Model: "gpt-4o", Tools: []middleware.Tool{{Name: "check_disk"}}}
	for _, s := range texts {
		r.Messages = append(r.Messages, middleware.Message{Role: middleware.RoleUser, Content: s})
	}
	return r
}

func decide(t *testing.T, r route.Router, ctx context.Context, req *middleware.Request) route.Decision {
	t.Helper()
	d, ok := r.Route(ctx, route.NewQuery(ctx, req))
	if !ok {
		return route.Decision{}
	}
	return d
}

// The seed's router matched substrings ("check" in "checkout"); ours
// matches whole words, case-insensitively, in the last user message or the
// whole conversation.
func TestKeywordsMatchWholeWordsOnly(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
routing:
  default: gpt-4o
  rules:
    - name: simple
      when: {keywords: [check, status, "disk space"]}
      model: gpt-4o-mini
    - name: history
      when: {keywords: [deploy], keywords_in: conversation}
      model: gpt-4.1
`)
	rules, err := llmwrap.NewRules(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		texts []string
		model string
		rule  string
	}{
		{[]string{"Check the server"}, "gpt-4o-mini", `rule 1 "simple": keyword "check"`},
		{[]string{"CHECK!"}, "gpt-4o-mini", `rule 1 "simple": keyword "check"`},
		{[]string{"run a check-up"}, "gpt-4o-mini", `rule 1 "simple": keyword "check"`},
		{[]string{"what's the status?"}, "gpt-4o-mini", `rule 1 "simple": keyword "status"`},
		{[]string{"I'm out of Disk  space"}, "gpt-4o", `default "gpt-4o": no rule matched`},
		{[]string{"out of disk space, sort it"}, "gpt-4o-mini", `rule 1 "simple": keyword "disk space"`},
		{[]string{"checkout the repo"}, "gpt-4o", `default "gpt-4o": no rule matched`},
		{[]string{"rechecking", "statuses", "checks"}, "gpt-4o", `default "gpt-4o": no rule matched`},
		{[]string{"Ünicheck ächeck"}, "gpt-4o", `default "gpt-4o": no rule matched`},
		{[]string{"check it", "now analyse it"}, "gpt-4o", `default "gpt-4o": no rule matched`},  // last user only
		{[]string{"deploy v2", "then analyse"}, "gpt-4.1", `rule 2 "history": keyword "deploy"`}, // whole conversation
		{[]string{"redeploy", "then analyse"}, "gpt-4o", `default "gpt-4o": no rule matched`},
	} {
		d := decide(t, rules, ctx, userReq(tc.texts...))
		if d.Model != tc.model || d.Rule != tc.rule {
			t.Errorf("%q: got %s (%s), want %s (%s)", tc.texts, d.Model, d.Rule, tc.model, tc.rule)
		}
	}
}

func TestRegexAndTokenThresholdRules(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
routing:
  default: gpt-4o
  rules:
    - name: ticket
      when: {regex: '(?i)\bINC-\d{4,}\b'}
      model: gpt-4.1-mini
    - name: huge
      when: {min_input_tokens: 1000}
      model: gpt-4.1
    - name: small-with-tools
      when: {max_input_tokens: 50, has_tools: true}
      model: gpt-4o-mini
`)
	var asked []string
	est := route.EstimatorFunc(func(_ context.Context, model string, req *middleware.Request) int64 {
		asked = append(asked, model)
		return int64(len(req.LastUserText()))
	})
	rules, err := llmwrap.NewRules(p, route.WithRulesEstimator(est))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	withTools := func(r *middleware.Request) *middleware.Request {
		r.Tools = []middleware.Tool{{Name: "check_disk"}}
		return r
	}
	noTools := func(r *middleware.Request) *middleware.Request {
		r.Tools = nil
		return r
	}
	// Tools the core does not model, kept as written in Extra: a custom
	// tool, legacy functions.
	extraTools := func(extra string) func(*middleware.Request) *middleware.Request {
		return func(r *middleware.Request) *middleware.Request {
			r.Tools, r.Extra = nil, []byte(extra)
			return r
		}
	}
	custom := extraTools(`{"tools":[{"custom":{"name":"grep"},"type":"custom"}]}`)
	functions := extraTools(`{"functions":[{"name":"check_disk"}]}`)
	emptyTools := extraTools(`{"tools":[]}`)
	for _, tc := range []struct {
		name  string
		req   *middleware.Request
		model string
		rule  string
	}{
		{"regex", userReq("look at inc-12345 please"), "gpt-4.1-mini", `rule 1 "ticket": regex "(?i)\\bINC-\\d{4,}\\b"`},
		{"regex needs the whole id", noTools(userReq("INC-12 " + strings.Repeat("x", 10))), "gpt-4o", `default "gpt-4o": no rule matched`},
		{"min tokens", userReq(strings.Repeat("a", 1000)), "gpt-4.1", `rule 2 "huge": tokens 1000 >= 1000`},
		{"max tokens with tools", withTools(userReq(strings.Repeat("a", 50))), "gpt-4o-mini", `rule 3 "small-with-tools": has_tools=true, tokens 50 <= 50`},
		{"over max", withTools(userReq(strings.Repeat("a", 51))), "gpt-4o", `default "gpt-4o": no rule matched`},
		{"no tools", noTools(userReq("hi")), "gpt-4o", `default "gpt-4o": no rule matched`},
		{"custom tools", custom(userReq(strings.Repeat("a", 50))), "gpt-4o-mini", `rule 3 "small-with-tools": has_tools=true, tokens 50 <= 50`},
		{"legacy functions", functions(userReq(strings.Repeat("a", 50))), "gpt-4o-mini", `rule 3 "small-with-tools": has_tools=true, tokens 50 <= 50`},
		{"an empty tools list", emptyTools(userReq(strings.Repeat("a", 50))), "gpt-4o", `default "gpt-4o": no rule matched`},
	} {
		asked = asked[:0]
		d := decide(t, rules, ctx, tc.req)
		if d.Model != tc.model || d.Rule != tc.rule {
			t.Errorf("%s: got %s (%s), want %s (%s)", tc.name, d.Model, d.Rule, tc.model, tc.rule)
		}
		if len(asked) > 1 {
			t.Errorf("%s: the estimator ran %d times for one decision", tc.name, len(asked))
		}
	}
}

// Stage and team conditions; a rule with no conditions matches everything.
func TestStageAndTeamRules(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
routing:
  rules:
    - when: {stage: result_analysis}
      model: gpt-4o
    - name: ops
      when: {team: ops, stage: tool_selection}
      model: gpt-4o-mini
    - name: rest
      model: gpt-4.1-nano
`)
	rules, err := llmwrap.NewRules(p)
	if err != nil {
		t.Fatal(err)
	}
	toolResult := userReq("check the disk")
	toolResult.Messages = append(toolResult.Messages,
		middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: "1", Name: "check_disk", Arguments: "{}"}}},
		middleware.Message{Role: middleware.RoleTool, ToolCallID: "1", Content: "95%"})
	ctx := context.Background()
	if d := decide(t, rules, ctx, toolResult); d.Model != "gpt-4o" || d.Rule != "rule 1: stage=result_analysis" {
		t.Errorf("tool result: %+v", d)
	}
	if d := decide(t, rules, middleware.WithTeam(ctx, "ops"), userReq("go")); d.Model != "gpt-4o-mini" || d.Rule != `rule 2 "ops": stage=tool_selection, team=ops` {
		t.Errorf("ops: %+v", d)
	}
	if d := decide(t, rules, middleware.WithTeam(ctx, "dev"), userReq("go")); d.Model != "gpt-4.1-nano" || d.Rule != `rule 3 "rest": always` {
		t.Errorf("dev: %+v", d)
	}
	// A declared stage wins over detection.
	if d := decide(t, rules, middleware.WithStage(ctx, middleware.StageResultAnalysis), userReq("go")); d.Model != "gpt-4o" {
		t.Errorf("declared stage: %+v", d)
	}
}

// TestRequestedModelRules: a rule with requested_model matches only calls
// whose caller asked for one of its models (names or path.Match
// patterns), says so in its explanation, and a bad pattern fails the
// policy at load with its line and field; the embedded default policy
// moves tool selection to gpt-4o-mini for callers of gpt-4o and its dated
// snapshots only, never a caller of a cheaper model or of a model its
// server may not serve next to gpt-4o-mini.
func TestRequestedModelRules(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
routing:
  rules:
    - name: strong-to-mini
      when: {stage: tool_selection, requested_model: [gpt-4.1, "gpt-4o-20*"]}
      model: gpt-4o-mini
`)
	rules, err := llmwrap.NewRules(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for model, want := range map[string]string{"gpt-4.1": "gpt-4o-mini", "gpt-4o-2024-08-06": "gpt-4o-mini", "gpt-4o": "", "gpt-4.1-mini": "", "llama3.1:8b": ""} {
		req := userReq("check the disk")
		req.Model = model
		d := decide(t, rules, ctx, req)
		if d.Model != want || want != "" && d.Rule != `rule 1 "strong-to-mini": stage=tool_selection, requested_model=gpt-4.1|gpt-4o-20*` {
			t.Errorf("asked %s: %+v, want %q", model, d, want)
		}
	}

	def, err := llmwrap.NewRules(policies.Default())
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]string{"gpt-4o": "gpt-4o-mini", "gpt-4o-2024-11-20": "gpt-4o-mini", "gpt-4o-mini": "", "gpt-4.1-nano": "", "qwen2.5:7b": "", "openai/gpt-4o": ""} {
		req := userReq("check the disk")
		req.Model = model
		if d := decide(t, def, ctx, req); d.Model != want {
			t.Errorf("default policy, asked %s: %+v, want %q", model, d, want)
		}
	}

	_, err = policies.LoadBytes([]byte("version: 1\nrouting:\n  rules:\n    - when: {requested_model: [gpt-4o, \"gpt-[4\"]}\n      model: gpt-4o-mini\n"), "team.yaml")
	if err == nil || !strings.Contains(err.Error(), "team.yaml:4") || !strings.Contains(err.Error(), "requested_model[1]") {
		t.Fatalf("a bad pattern: %v", err)
	}
}

// A rule on the remaining run budget switches model once the run's spend
// crosses the threshold.
func TestBudgetFractionRuleReadsTheRun(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
budget:
  run: {max_tokens: 1000}
routing:
  default: gpt-4o
  rules:
    - name: save
      when: {budget_below: {fraction: 0.2}}
      model: gpt-4o-mini
`)
	rules, err := llmwrap.NewRules(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, run := middleware.StartRun(context.Background(), "r")
	if d := decide(t, rules, ctx, userReq("go")); d.Model != "gpt-4o" {
		t.Fatalf("fresh run: %+v", d)
	}
	run.Record(middleware.CallRecord{Usage: middleware.Usage{InputTokens: 700, OutputTokens: 100}})
	if d := decide(t, rules, ctx, userReq("go")); d.Model != "gpt-4o" {
		t.Fatalf("80%% spent: %+v", d)
	}
	run.Record(middleware.CallRecord{Usage: middleware.Usage{InputTokens: 1}})
	if d := decide(t, rules, ctx, userReq("go")); d.Model != "gpt-4o-mini" || d.Rule != `rule 1 "save": run budget remaining 0.20 < 0.2` {
		t.Fatalf("past 80%%: %+v", d)
	}
	// Outside a run the run budget is unknown: the rule does not hold.
	if d := decide(t, rules, context.Background(), userReq("go")); d.Model != "gpt-4o" {
		t.Fatalf("no run: %+v", d)
	}
}

// A team-scope condition asks the plugged BudgetReader (the budget layer).
func TestBudgetFractionRuleAsksTheReaderForTeams(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
budget:
  team: {period: monthly, max_usd: 500}
routing:
  default: gpt-4o
  rules:
    - name: month-end
      when: {budget_below: {scope: team, fraction: 0.2}}
      model: gpt-4o-mini
`)
	left := 0.5
	reader := route.BudgetReaderFunc(func(ctx context.Context, scope route.BudgetScope) (float64, bool) {
		return left, scope == route.BudgetScopeTeam && middleware.TeamFrom(ctx) == "devops"
	})
	rules, err := llmwrap.NewRules(p, route.WithRulesBudget(reader))
	if err != nil {
		t.Fatal(err)
	}
	ctx := middleware.WithTeam(context.Background(), "devops")
	if d := decide(t, rules, ctx, userReq("go")); d.Model != "gpt-4o" {
		t.Fatalf("half left: %+v", d)
	}
	left = 0.1
	if d := decide(t, rules, ctx, userReq("go")); d.Model != "gpt-4o-mini" {
		t.Fatalf("10%% left: %+v", d)
	}
}

// Every rule is validated at load time, with the file and line.
func TestInvalidRulesFailAtLoadWithTheirLine(t *testing.T) {
	t.Parallel()
	_, err := policies.LoadBytes([]byte(`version: 1
routing:
  rules:
    - name: bad-regex
      when: {regex: "(unclosed"}
      model: gpt-4o-mini
    - name: impossible
      when: {min_input_tokens: 500, max_input_tokens: 100}
      model: gpt-4o
    - name: unknown
      model: gpt-5-ultra-max
`), "team.yaml")
	var ve *policies.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"team.yaml:5", "invalid regex", "team.yaml:8", "can never match", "team.yaml:11", "unknown model"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestIsFinalAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		resp middleware.Response
		want bool
	}{
		{middleware.Response{Message: middleware.Message{Content: "The disk is fine."}}, true},
		{middleware.Response{Message: middleware.Message{Content: " "}}, false},
		{middleware.Response{Message: middleware.Message{ToolCalls: []middleware.ToolCall{{Name: "x"}}}}, false},
		{middleware.Response{Message: middleware.Message{Content: "Thought: x\nAction: check_disk\nAction Input: /"}}, false},
		{middleware.Response{Message: middleware.Message{Content: "Thought: done\nFinal Answer: 20GB freed"}}, true},
	} {
		if got := route.IsFinalAnswer(&tc.resp); got != tc.want {
			t.Errorf("%q: %v", tc.resp.Message.Content, got)
		}
	}
}

func TestValidToolJSON(t *testing.T) {
	t.Parallel()
	req := &middleware.Request{Tools: []middleware.Tool{{Name: "clean_logs", Parameters: []byte(`{"type":"object",
		"properties":{"path":{"type":"string"},"days":{"type":"integer"},"mode":{"enum":["dry","real"]},"tags":{"type":"array","items":{"type":"string"}}},
		"required":["path"],"additionalProperties":false}`)}}}
	for _, tc := range []struct {
		name, args string
		ok         bool
	}{
		{"clean_logs", `{"path":"/var/log","days":7,"mode":"dry","tags":["a"]}`, true},
		{"clean_logs", `{"path":"/var/log"`, false},
		{"clean_logs", `{"path":"/var/log"} {}`, false},
		{"clean_logs", `["/var/log"]`, false},
		{"clean_logs", `{"days":7}`, false},
		{"clean_logs", `{"path":"/","days":1.5}`, false},
		{"clean_logs", `{"path":"/","mode":"yolo"}`, false},
		{"clean_logs", `{"path":"/","tags":[1]}`, false},
		{"clean_logs", `{"path":"/","extra":true}`, false},
		{"rm_rf", `{}`, false},
	} {
		resp := &middleware.Response{Message: middleware.Message{ToolCalls: []middleware.ToolCall{{Name: tc.name, Arguments: tc.args}}}}
		if err := route.ValidToolJSON(req, resp); (err == nil) != tc.ok {
			t.Errorf("%s %s: err = %v", tc.name, tc.args, err)
		}
	}
}

func TestStrongOnly(t *testing.T) {
	t.Parallel()
	p := policies.Default()
	for model, want := range map[string]string{"": "", "gpt-4o": "gpt-4o"} {
		// "": the policy's default, which the embedded one leaves to the
		// caller's model.
		s := llmwrap.StrongOnly(p, model)
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		if s.Routing.Default != want || len(s.Routing.Rules) != 0 || len(p.Routing.Rules) == 0 {
			t.Fatalf("strong-only routing of %q %+v (original %+v)", model, s.Routing, p.Routing)
		}
	}
}
