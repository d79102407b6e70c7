package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// env is what both agents of one scenario share: the policy, the chain
// and the provider.
type env struct {
	out     io.Writer
	mu      sync.Mutex // serialises output: tools run in parallel
	policy  *policies.Policy
	chain   middleware.Middleware
	baseURL string
	apiKey  string
	base    http.RoundTripper // how requests reach the provider
	srv     *openaitest.Server
}

func newEnv(out io.Writer, cfg config, p *policies.Policy, obs middleware.Observer) (*env, error) {
	e := &env{out: out, policy: p, apiKey: cfg.apiKey, baseURL: cfg.baseURL, base: http.DefaultTransport}
	if e.apiKey == "" {
		e.srv = newScriptedServer()
		e.apiKey, e.baseURL, e.base = "scripted", e.srv.URL, e.srv.Transport()
	} else if e.baseURL == "" {
		e.baseURL = "https://api.openai.com/v1"
	}
	var err error
	e.chain, err = llmwrap.Build(e.policy, llmwrap.WithObserver(middleware.ObserverFunc(e.printCall)), llmwrap.WithObserver(obs))
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) printf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.out, format, args...)
}

// runAgent runs the task with the agent of mode in a run named id.
func (e *env) runAgent(ctx context.Context, mode, id, task string) error {
	switch mode {
	case "langchaingo":
		return e.runLangchaingo(ctx, id, task)
	case "openai":
		return e.runGoOpenAI(ctx, id, task)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func (e *env) close() {
	if e.srv != nil {
		e.srv.Close()
	}
}

// printCall prints one line per finished LLM call.
func (e *env) printCall(ctx context.Context, ev middleware.Event) {
	f, ok := ev.(middleware.CallFinished)
	if !ok {
		return
	}
	status := "ok"
	switch {
	case f.Err != nil:
		status = "error: " + f.Err.Error()
	case f.Facts.Cache == middleware.CacheHit:
		status = "cache hit, saved " + middleware.FormatPico(f.Facts.SavedPico)
	case len(f.Facts.ToolCalls) > 0:
		status = "→ " + strings.Join(f.Facts.ToolCalls, ", ")
	case f.Facts.Final:
		status = "→ answer"
	}
	for _, n := range f.Facts.Notes {
		status += " (" + n + ")"
	}
	e.printf("  call %d  %-12s %-16s %5d in %4d out  %s  %6s  %s\n", f.Facts.Seq, f.Facts.Model, f.Facts.Stage,
		f.Usage.InputTokens, f.Usage.OutputTokens, middleware.FormatPico(f.Facts.CostPico),
		f.Latency.Round(time.Millisecond), status)
}

// printTool prints one line per finished tool call (read_artifact
// included): the executor emits them to the run context's observer.
func (e *env) printTool(_ context.Context, ev middleware.Event) {
	f, ok := ev.(middleware.ToolFinished)
	if !ok {
		return
	}
	status := fmt.Sprintf("%d bytes", f.Bytes)
	if f.Err != nil {
		status = "error: " + f.Err.Error()
	}
	e.printf("    tool %-13s → %-12s %6s\n", f.Name, status, f.Duration.Round(time.Millisecond))
}

// runLangchaingo runs the task as a langchaingo OpenAI-functions agent whose
// llms.Model is wrapped by tokenwise.
func (e *env) runLangchaingo(ctx context.Context, id, task string) error {
	models := twlc.Models{}
	for _, name := range []string{"gpt-4o", "gpt-4o-mini"} {
		m, err := lcopenai.New(lcopenai.WithModel(name), lcopenai.WithToken(e.apiKey), lcopenai.WithBaseURL(e.baseURL),
			lcopenai.WithHTTPClient(&http.Client{Transport: e.base}))
		if err != nil {
			return err
		}
		models[name] = m
	}
	llm := twlc.New(models, e.chain, twlc.WithDefaultModel(e.defaultModel()))
	ex, err := e.toolExecutor()
	if err != nil {
		return err
	}
	// The agent offers the executor's tools (read_artifact included); the
	// ParallelAgent runs one turn's actions at once for the sequential Executor.
	agent := agents.NewOpenAIFunctionsAgent(llm, twlc.Tools(ex))
	exec := agents.NewExecutor(twlc.NewParallelAgent(agent, ex), agents.WithMaxIterations(10))

	ctx, run := middleware.StartRun(middleware.WithObserver(ctx, middleware.ObserverFunc(e.printTool)), id)
	e.printf("\n== %s: langchaingo agent: %q\n", id, task)
	answer, err := chains.Run(ctx, exec, task)
	if err != nil {
		return err
	}
	e.printf("answer: %s\n\n%s", answer, observe.Report(run))
	return nil
}

// runGoOpenAI runs the task as a plain go-openai tool loop. The only
// tokenwise line is the HTTP client in the config.
func (e *env) runGoOpenAI(ctx context.Context, id, task string) error {
	cfg := goopenai.DefaultConfig(e.apiKey)
	cfg.BaseURL = e.baseURL
	cfg.HTTPClient = twopenai.NewHTTPClient(e.chain, twopenai.WithBaseTransport(e.base))
	client := goopenai.NewClientWithConfig(cfg)

	ex, err := e.toolExecutor()
	if err != nil {
		return err
	}
	defs := twopenai.ToolDefinitions(ex)
	msgs := []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: task}}

	ctx, run := middleware.StartRun(middleware.WithObserver(ctx, middleware.ObserverFunc(e.printTool)), id)
	e.printf("\n== %s: go-openai loop: %q\n", id, task)
	for {
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model: e.defaultModel(), Messages: msgs, Tools: defs,
		})
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 {
			return errors.New("the provider returned no choice")
		}
		msg := resp.Choices[0].Message
		msgs = append(msgs, msg)
		if len(msg.ToolCalls) == 0 {
			e.printf("answer: %s\n\n%s", msg.Content, observe.Report(run))
			return nil
		}
		// One turn's tool calls run in parallel, results in call order.
		toolMsgs, err := twopenai.ExecuteToolCalls(ctx, ex, msg.ToolCalls)
		if err != nil {
			return err
		}
		msgs = append(msgs, toolMsgs...)
	}
}

func (e *env) defaultModel() string {
	if e.policy.Routing.Default != "" {
		return e.policy.Routing.Default
	}
	return "gpt-4o"
}

var _ llms.Model = (*twlc.Model)(nil)
