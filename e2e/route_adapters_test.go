package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/tools"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

var diskTools = []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
	Name: "check_disk", Description: "Check disk usage",
	Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}, "required": []string{"path"}},
}}}

// Stage routing through the go-openai adapter: tool selection on the
// cheap model, result analysis and the final answer on the strong one,
// explained in the run report and in RouteDecided events.
func TestStageRoutingThroughGoOpenAI(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("The disk is 95% full; /var/log is the culprit."))
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`)))
	ev := &events{}
	client := goClient(t, srv, mustPolicy(t, stagePolicy), llmwrap.WithObserver(ev))

	ctx, run := middleware.StartRun(context.Background(), "go-openai")
	msgs := []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space. Sort it out."}}
	resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs, Tools: diskTools})
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, resp.Choices[0].Message,
		goopenai.ChatCompletionMessage{Role: "tool", ToolCallID: "c1", Content: "Disk Usage: 95% (CRITICAL)"})
	resp, err = client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs, Tools: diskTools})
	if err != nil {
		t.Fatal(err)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("upstream models %s", got)
	}
	calls := run.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	if c := calls[0]; c.Model != "gpt-4o-mini" || c.Stage != middleware.StageToolSelection || c.Rule != `rule 1 "cheap-tool-selection": stage=tool_selection` {
		t.Errorf("call 1: %s %s %q", c.Model, c.Stage, c.Rule)
	}
	if c := calls[1]; c.Model != "gpt-4o" || c.Stage != middleware.StageResultAnalysis || !c.Final || c.Rule != `default "gpt-4o": no rule matched` {
		t.Errorf("call 2: %s %s %q", c.Model, c.Stage, c.Rule)
	}
	if !strings.Contains(observe.Report(run), `rule 1 "cheap-tool-selection": stage=tool_selection`) {
		t.Errorf("report:\n%s", observe.Report(run))
	}
	rd := ev.routes()
	if len(rd) != 2 || rd[0].From != "gpt-4o" || rd[0].To != "gpt-4o-mini" || rd[0].Stage != middleware.StageToolSelection || rd[1].Stage != middleware.StageResultAnalysis {
		t.Errorf("route events %+v", rd)
	}
}

// Plain chat — a request offering no tools — is never tool selection: with
// the default policy (cheap model for tool selection, no default model) a
// caller gets the model it asked for — gpt-4o, gpt-4o-mini, a model of
// another server the catalog does not know — on the first call of a run,
// on later calls and outside a run, and the report's stage agrees.
func TestPlainChatIsNotToolSelection(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("Paris."))
	client := goClient(t, srv, policies.Default())
	ctx, run := middleware.StartRun(context.Background(), "chat")
	asked := []string{"gpt-4o", "gpt-4o-mini", "llama3.1:8b"}
	for i, c := range []context.Context{ctx, ctx, context.Background()} {
		if _, err := client.CreateChatCompletion(c, goopenai.ChatCompletionRequest{Model: asked[i],
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("Capital of France? (%d)", i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := join(upstreamModels(srv)); got != strings.Join(asked, ",") {
		t.Fatalf("upstream models %s, want %v", got, asked)
	}
	for _, c := range run.Calls() {
		if c.Stage != middleware.StageFinalAnswer || !c.Final || c.Rule != "" {
			t.Errorf("call %d: stage %s final %v rule %q", c.Seq, c.Stage, c.Final, c.Rule)
		}
	}
	if rep := observe.Report(run); strings.Contains(rep, "tool_selection") {
		t.Errorf("report:\n%s", rep)
	}
}

// Stage routing through the langchaingo adapter with the OpenAI-functions
// agent: the agent's tool-selection call goes to the cheap model, the
// analysis of the tool result to the strong one.
func TestStageRoutingThroughLangchaingoFunctionsAgent(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("Disk was 95% full; cleaned."))
	srv.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"__arg1":"/"}`)))
	llm := lcModel(t, srv, mustPolicy(t, stagePolicy))
	agent := agents.NewOpenAIFunctionsAgent(llm, []tools.Tool{devopsTool{"check_disk", "Check disk usage", "Disk Usage: 95% (CRITICAL)"}})
	exec := agents.NewExecutor(agent, agents.WithMaxIterations(5))

	ctx, run := middleware.StartRun(context.Background(), "functions-agent")
	out, err := chains.Run(ctx, exec, "I'm out of disk space. Sort it out.")
	if err != nil {
		t.Fatal(err)
	}
	if out != "Disk was 95% full; cleaned." {
		t.Fatalf("answer %q", out)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("upstream models %s\n%s", got, observe.Report(run))
	}
	calls := run.Calls()
	if calls[0].Stage != middleware.StageToolSelection || calls[0].Final || calls[1].Stage != middleware.StageResultAnalysis || !calls[1].Final {
		t.Errorf("stages %s (final %v), %s (final %v)", calls[0].Stage, calls[0].Final, calls[1].Stage, calls[1].Final)
	}
}

// Stage routing through the langchaingo adapter with the one-shot (ReAct)
// agent, whose every call is one user message: the scratchpad's
// Observation tells result analysis from tool selection.
func TestStageRoutingThroughLangchaingoOneShotAgent(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastContains("Observation: Disk Usage")).
		Reply(openaitest.Text("Thought: I now know the final answer\nFinal Answer: /var/log filled the disk."))
	srv.On().Reply(openaitest.Text("Thought: I should look at the disk\nAction: check_disk\nAction Input: /"))
	llm := lcModel(t, srv, mustPolicy(t, stagePolicy))
	agent := agents.NewOneShotAgent(llm, []tools.Tool{devopsTool{"check_disk", "Check disk usage", "Disk Usage: 95% (CRITICAL)"}})
	exec := agents.NewExecutor(agent, agents.WithMaxIterations(5))

	ctx, run := middleware.StartRun(context.Background(), "one-shot")
	out, err := chains.Run(ctx, exec, "I'm out of disk space. Sort it out.")
	if err != nil {
		t.Fatal(err)
	}
	if out != "/var/log filled the disk." {
		t.Fatalf("answer %q", out)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini,gpt-4o" {
		t.Fatalf("upstream models %s\n%s", got, observe.Report(run))
	}
	if r := run.Calls()[1].Rule; r != `default "gpt-4o": no rule matched` {
		t.Errorf("second call rule %q", r)
	}
}

const cascadePolicy = `version: 1
routing:
  cascade:
    models: [gpt-4o-mini, gpt-4o]
`

// The cascade escalates when the cheap model's tool-call arguments are not
// valid JSON, or do not match the tool's schema; both calls are billed.
func TestCascadeEscalatesOnInvalidToolJSON(t *testing.T) {
	for _, bad := range []string{`{"path": "/`, `{"dir":"/"}`} {
		t.Run(bad, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			u := &openaitest.Usage{PromptTokens: 100, CompletionTokens: 10}
			cheap := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", bad))
			cheap.Usage = u
			strong := openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`))
			strong.Usage = u
			srv.On(openaitest.Model("gpt-4o-mini")).Reply(cheap)
			srv.On(openaitest.Model("gpt-4o")).Reply(strong)
			ev := &events{}
			client := goClient(t, srv, mustPolicy(t, cascadePolicy), llmwrap.WithObserver(ev))
			ctx, run := middleware.StartRun(context.Background(), "cascade")
			resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}, Tools: diskTools})
			if err != nil {
				t.Fatal(err)
			}
			if args := resp.Choices[0].Message.ToolCalls[0].Function.Arguments; args != `{"path":"/"}` {
				t.Fatalf("caller got arguments %s", args)
			}
			if got := join(upstreamModels(srv)); got != "gpt-4o-mini,gpt-4o" {
				t.Fatalf("upstream models %s", got)
			}
			// Both calls are billed and counted.
			one := middleware.Usage{InputTokens: 100, OutputTokens: 10}
			want := one.Add(one)
			pricer := llmwrap.Pricer(mustPolicy(t, cascadePolicy))
			c1, _ := pricer.Cost("gpt-4o-mini", one)
			c2, _ := pricer.Cost("gpt-4o", one)
			wantCost := c1 + c2
			c := run.Calls()[0]
			if c.Usage.Counts() != want || c.CostPico != wantCost || c.Model != "gpt-4o" {
				t.Errorf("record: model %s usage %+v cost %d, want usage %+v cost %d", c.Model, c.Usage, c.CostPico, want, wantCost)
			}
			if !strings.Contains(c.Rule, "cascade: gpt-4o-mini valid_tool_json failed → gpt-4o") || len(c.Notes) != 1 {
				t.Errorf("rule %q notes %q", c.Rule, c.Notes)
			}
			if rd := ev.routes(); len(rd) != 1 || rd[0].From != "gpt-4o-mini" || rd[0].To != "gpt-4o" {
				t.Errorf("route events %+v", rd)
			}
		})
	}
}

// A valid answer of the cheap model is accepted: one call, no escalation.
func TestCascadeAcceptsAValidAnswer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`)))
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("strong"))
	client := goClient(t, srv, mustPolicy(t, cascadePolicy))
	ctx, run := middleware.StartRun(context.Background(), "cascade")
	if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}, Tools: diskTools}); err != nil {
		t.Fatal(err)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini" {
		t.Fatalf("upstream models %s", got)
	}
	if c := run.Calls()[0]; c.Model != "gpt-4o-mini" || len(c.Notes) != 0 {
		t.Fatalf("record %+v", c)
	}
}

// A custom check registered in code escalates too; a streaming caller sees
// only the accepted answer.
func TestCascadeCustomCheckAndStreaming(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Text("I don't know."))
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text("The disk is 95% full."))
	noShrug := func(_ *middleware.Request, resp *middleware.Response) error {
		if strings.Contains(resp.Message.Content, "don't know") {
			return errors.New("a shrug")
		}
		return nil
	}
	client := goClient(t, srv, mustPolicy(t, cascadePolicy), llmwrap.WithCascadeCheck("no-shrug", noShrug))
	ctx, run := middleware.StartRun(context.Background(), "cascade")
	got, err := streamText(ctx, client, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "how full is the disk?"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got != "The disk is 95% full." {
		t.Fatalf("streamed %q", got)
	}
	if c := run.Calls()[0]; !strings.Contains(c.Rule, "no-shrug failed") {
		t.Fatalf("rule %q", c.Rule)
	}
}

func streamText(ctx context.Context, client *goopenai.Client, req goopenai.ChatCompletionRequest) (string, error) {
	s, err := client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return "", err
	}
	defer s.Close()
	var b strings.Builder
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		for _, c := range r.Choices {
			b.WriteString(c.Delta.Content)
		}
	}
}

const regenPolicy = `version: 1
routing:
  default: gpt-4o
  rules:
    - name: cheap-tool-selection
      when: {stage: tool_selection}
      model: gpt-4o-mini
  regenerate_final:
    enabled: true
`

// The cheap model, asked to pick a tool, answers the user directly: the
// strong model regenerates the answer without tools, and the streaming
// caller receives exactly one final answer, the strong model's.
func TestRegenerationStreamsOneFinalAnswerFromTheStrongModel(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "cheap draft answer", ChunkSize: 3})
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "Strong answer: clean /var/log.", ChunkSize: 3})
	client := goClient(t, srv, mustPolicy(t, regenPolicy))
	ctx, run := middleware.StartRun(context.Background(), "regen")
	got, err := streamText(ctx, client, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space."}}, Tools: diskTools})
	if err != nil {
		t.Fatal(err)
	}
	if got != "Strong answer: clean /var/log." {
		t.Fatalf("streamed %q", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Chat.Model != "gpt-4o-mini" || reqs[1].Chat.Model != "gpt-4o" || len(reqs[1].Chat.Tools) != 0 {
		t.Fatalf("upstream: %s, tools of the regeneration %d", join(upstreamModels(srv)), len(reqs[len(reqs)-1].Chat.Tools))
	}
	c := run.Calls()[0]
	if c.Model != "gpt-4o" || !strings.Contains(c.Rule, "regenerated the final answer of gpt-4o-mini with gpt-4o") {
		t.Fatalf("record %s %q", c.Model, c.Rule)
	}
	if c.Usage.InputTokens != int64(openaitest.PromptTokens(reqs[0].Chat)+openaitest.PromptTokens(reqs[1].Chat)) {
		t.Fatalf("usage %+v does not count both calls", c.Usage)
	}
}

// Through langchaingo with a streaming func: the caller's func sees the
// strong model's answer once, and a cheap tool call is passed through
// unchanged (no regeneration).
func TestRegenerationThroughLangchaingoStreaming(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini"), openaitest.LastContains("disk")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`)))
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "cheap draft", ChunkSize: 2})
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "Hello from the strong model.", ChunkSize: 2})
	llm := lcModel(t, srv, mustPolicy(t, regenPolicy))
	tool := llms.Tool{Type: "function", Function: &llms.FunctionDefinition{Name: "check_disk", Description: "disk",
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}}}}

	var streamed strings.Builder
	sf := llms.WithStreamingFunc(func(_ context.Context, b []byte) error { streamed.Write(b); return nil })
	out, err := llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "say hello")},
		llms.WithTools([]llms.Tool{tool}), sf)
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != "Hello from the strong model." || out.Choices[0].Content != "Hello from the strong model." {
		t.Fatalf("streamed %q, content %q", streamed.String(), out.Choices[0].Content)
	}

	srv.Reset()
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{"path":"/"}`)))
	out, err = llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "check the disk")},
		llms.WithTools([]llms.Tool{tool}), llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if tc := out.Choices[0].ToolCalls; len(tc) != 1 || tc[0].FunctionCall.Name != "check_disk" || tc[0].FunctionCall.Arguments != `{"path":"/"}` {
		t.Fatalf("tool calls %+v", tc)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini" {
		t.Fatalf("upstream %s", got)
	}
}

// A context_length_exceeded error ends on the larger-window model (the
// fallback layer escalates it), and an estimate over the routed model's
// window is routed there before the call, with the reason.
func TestLargerWindow(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.ContextLengthExceeded(128000, 130000))
	srv.On(openaitest.Model("gpt-4.1-mini")).Reply(openaitest.Text("fits"))
	p := mustPolicy(t, `version: 1
models:
  tiny: {provider: openai, input_per_1m: 0.1, output_per_1m: 0.1, context_window: 50}
routing:
  larger_window: [gpt-4.1-mini]
`)
	client := goClient(t, srv, p)
	ctx, run := middleware.StartRun(context.Background(), "window")
	resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "a long log"}}})
	if err != nil || resp.Choices[0].Message.Content != "fits" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o-mini,gpt-4.1-mini" {
		t.Fatalf("upstream %s", got)
	}
	if m := run.Calls()[0].Model; m != "gpt-4.1-mini" {
		t.Fatalf("answered by %s", m)
	}

	srv.Reset()
	srv.On(openaitest.Model("gpt-4.1-mini")).Reply(openaitest.Text("fits"))
	if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "tiny",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: strings.Repeat("log line ", 40)}}}); err != nil {
		t.Fatal(err)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4.1-mini" {
		t.Fatalf("upstream %s", got)
	}
	if r := run.Calls()[1].Rule; !strings.Contains(r, "> tiny window 50") {
		t.Fatalf("rule %q\n%s", r, observe.Report(run))
	}
}

// A team plugs its own classifier; the decision is recorded and explained.
func TestCustomRouter(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	mine := route.RouterFunc(func(_ context.Context, q *route.Query) (route.Decision, bool) {
		if strings.Contains(q.Request.LastUserText(), "urgent") {
			return route.Decision{Model: "gpt-4.1", Rule: "classifier: urgent"}, true
		}
		return route.Decision{}, false
	})
	client := goClient(t, srv, mustPolicy(t, "version: 1\n"), llmwrap.WithRouter(mine))
	ctx, run := middleware.StartRun(context.Background(), "custom")
	for _, text := range []string{"urgent: prod is down", "hello"} {
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: text}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := join(upstreamModels(srv)); got != "gpt-4.1,gpt-4o-mini" {
		t.Fatalf("upstream %s", got)
	}
	if r := run.Calls()[0].Rule; r != "classifier: urgent" {
		t.Fatalf("rule %q", r)
	}
}

// A budget_below rule switches the model once the run crosses the
// threshold, through the real client.
func TestBudgetFractionSwitchesModelMidRun(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 15000, CompletionTokens: 5000}})
	p := mustPolicy(t, `version: 1
budget:
  run: {max_tokens: 100000}
routing:
  default: gpt-4o
  rules:
    - name: low-budget
      when: {budget_below: {fraction: 0.5}}
      model: gpt-4o-mini
`)
	client := goClient(t, srv, p)
	ctx, run := middleware.StartRun(context.Background(), "budget")
	for range 4 {
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "next step"}}}); err != nil {
			t.Fatal(err)
		}
	}
	// 20k tokens a call: 100%, 80%, 60% left → strong; 40% left → mini.
	if got := join(upstreamModels(srv)); got != "gpt-4o,gpt-4o,gpt-4o,gpt-4o-mini" {
		t.Fatalf("upstream %s\n%s", got, observe.Report(run))
	}
	if r := run.Calls()[3].Rule; r != `rule 1 "low-budget": run budget remaining 0.40 < 0.5` {
		t.Fatalf("rule %q", r)
	}
}

// TestDefaultPolicyFallsBackOnlyToTheCheaperModel: under the embedded
// default policy a caller of gpt-4o whose call fails (quota, after its
// retries) is answered by gpt-4o-mini, the seed's chain; a caller of
// gpt-4o-mini whose call fails gets the error, never an answer of gpt-4o
// at its prices.
func TestDefaultPolicyFallsBackOnlyToTheCheaperModel(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.InsufficientQuota())
	srv.On(openaitest.Model("gpt-4o-mini"), openaitest.LastContains("fail")).Reply(openaitest.InsufficientQuota())
	srv.On().Reply(openaitest.Text("ok"))
	client := goClient(t, srv, policies.Default())
	msg := func(s string) []goopenai.ChatCompletionMessage {
		return []goopenai.ChatCompletionMessage{{Role: "user", Content: s}}
	}
	resp, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msg("hello")})
	if err != nil || resp.Choices[0].Message.Content != "ok" {
		t.Fatalf("a caller of gpt-4o: %+v, %v", resp, err)
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o,gpt-4o-mini" {
		t.Fatalf("upstream models %s, want gpt-4o then gpt-4o-mini", got)
	}
	_, err = client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msg("please fail")})
	if err == nil {
		t.Fatal("a failing caller of gpt-4o-mini got an answer")
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o,gpt-4o-mini,gpt-4o-mini" {
		t.Fatalf("upstream models %s: the caller of gpt-4o-mini was moved to gpt-4o", got)
	}
}
