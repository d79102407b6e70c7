package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"
	"go.uber.org/goleak"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// TestMain fails the tests if any goroutine outlives them: every stream's
// chain goroutine must end with its call.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events records the events of a chain. It is safe for concurrent use.
type events struct {
	middlewaretest.Recorder
	mu    sync.Mutex
	taken int // BreakerChanged events already returned by take
}

// take returns the BreakerChanged events recorded since the last take.
func (e *events) take() []middleware.BreakerChanged {
	all := middlewaretest.Of[middleware.BreakerChanged](&e.Recorder)
	e.mu.Lock()
	defer e.mu.Unlock()
	out := all[e.taken:]
	e.taken = len(all)
	return out
}

func (e *events) lookups() []middleware.CacheLookup {
	return middlewaretest.Of[middleware.CacheLookup](&e.Recorder)
}

func (e *events) storeFailures() []middleware.StoreFailed {
	return middlewaretest.Of[middleware.StoreFailed](&e.Recorder)
}

func (e *events) retries() []middleware.Retrying {
	return middlewaretest.Of[middleware.Retrying](&e.Recorder)
}

func (e *events) routes() []middleware.RouteDecided {
	return middlewaretest.Of[middleware.RouteDecided](&e.Recorder)
}

// recorder keeps the events of a chain; safe for concurrent use.
type recorder struct{ middlewaretest.Recorder }

func (r *recorder) finished() []middleware.CallFinished {
	return middlewaretest.Of[middleware.CallFinished](&r.Recorder)
}

// callFacts returns the facts of the calls that finished.
func (r *recorder) callFacts() []middleware.CallFacts {
	var out []middleware.CallFacts
	for _, f := range r.finished() {
		out = append(out, f.Facts)
	}
	return out
}

func (r *recorder) fellBack() []middleware.FellBack {
	return middlewaretest.Of[middleware.FellBack](&r.Recorder)
}

// cachePolicy is a policy with only the cache on, so that the tests do not
// depend on other layers.
func cachePolicy(c policies.Cache) *policies.Policy {
	c.Enabled = true
	return &policies.Policy{Version: policies.Version, Cache: c}
}

func mustPolicy(t testing.TB, yaml string) *policies.Policy {
	t.Helper()
	p, err := policies.LoadBytes([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goOpenAI returns a real go-openai client whose HTTP client runs chain in
// its transport, talking to srv through rt (nil: a real socket transport
// closed at the end of the test).
func goOpenAI(t testing.TB, srv *openaitest.Server, chain middleware.Middleware, rt http.RoundTripper) *goopenai.Client {
	t.Helper()
	if rt == nil {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		rt = base
	}
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(rt))
	return goopenai.NewClientWithConfig(cfg)
}

// goClient is a real go-openai client whose HTTP client runs the policy's
// chain, talking to srv in memory.
func goClient(t testing.TB, srv *openaitest.Server, p *policies.Policy, opts ...llmwrap.Option) *goopenai.Client {
	t.Helper()
	chain, err := llmwrap.Build(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return goOpenAI(t, srv, chain, srv.Transport())
}

// langchaingo returns the tokenwise langchaingo Model over langchaingo's
// real openai client talking to srv.
func langchaingo(t testing.TB, srv *openaitest.Server, chain middleware.Middleware, model string) *twlc.Model {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	inner, err := lcopenai.New(lcopenai.WithBaseURL(srv.URL), lcopenai.WithToken("test"), lcopenai.WithModel(model),
		lcopenai.WithHTTPClient(&http.Client{Transport: base}))
	if err != nil {
		t.Fatal(err)
	}
	return twlc.New(twlc.Models{model: inner}, chain)
}

// lcModel is a tokenwise-wrapped langchaingo model over two real
// langchaingo openai backends (gpt-4o, gpt-4o-mini) talking to srv.
func lcModel(t testing.TB, srv *openaitest.Server, p *policies.Policy, opts ...llmwrap.Option) *twlc.Model {
	t.Helper()
	chain, err := llmwrap.Build(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	models := twlc.Models{}
	for _, name := range []string{"gpt-4o", "gpt-4o-mini"} {
		m, err := lcopenai.New(lcopenai.WithModel(name), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL(srv.URL),
			lcopenai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
		if err != nil {
			t.Fatal(err)
		}
		models[name] = m
	}
	return twlc.New(models, chain, twlc.WithDefaultModel("gpt-4o"))
}

func human(text string) llms.MessageContent { return llms.TextParts(llms.ChatMessageTypeHuman, text) }

// upstreamModels lists the model of every request the server received.
func upstreamModels(srv *openaitest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, r.Chat.Model)
	}
	return out
}

func join(s []string) string { return strings.Join(s, ",") }

// devopsTool is a langchaingo tool of the seed's DevOps agent.
type devopsTool struct{ name, desc, result string }

func (d devopsTool) Name() string        { return d.name }
func (d devopsTool) Description() string { return d.desc }
func (d devopsTool) Call(context.Context, string) (string, error) {
	return d.result, nil
}

const stagePolicy = `version: 1
routing:
  default: gpt-4o
  rules:
    - name: cheap-tool-selection
      when: {stage: tool_selection}
      model: gpt-4o-mini
`

func pass(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return next.Handle(ctx, req)
	})
}

func clientFor(srv *openaitest.Server, httpClient goopenai.HTTPDoer) *goopenai.Client {
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	if httpClient != nil {
		cfg.HTTPClient = httpClient
	}
	return goopenai.NewClientWithConfig(cfg)
}

// sreRequest is an SRE agent's request with one tool.
func sreRequest(stream bool) goopenai.ChatCompletionRequest {
	return goopenai.ChatCompletionRequest{
		Model:  "gpt-4o-mini",
		Stream: stream,
		Messages: []goopenai.ChatCompletionMessage{
			{Role: goopenai.ChatMessageRoleSystem, Content: "You are an SRE assistant."},
			{Role: goopenai.ChatMessageRoleUser, Content: "Check the disks of web-1 and web-2."},
		},
		Tools: []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: "check_disk", Description: "Disk usage of a host",
			Parameters: json.RawMessage(`{"type":"object","properties":{"host":{"type":"string"}},"required":["host"]}`),
		}}},
	}
}

// routeTo is a middleware that changes the model, as a router does.
func routeTo(model string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := req.Clone()
			r.Model = model
			return next.Handle(ctx, r)
		})
	}
}

type overBudget struct{ Limit int64 }

func (e *overBudget) Error() string        { return "budget: run limit reached" }
func (e *overBudget) Is(target error) bool { return target == middleware.ErrBudget }

func refuse(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return nil, &overBudget{Limit: 100}
	})
}

// drainStream streams req with go-openai's client and reads it to its
// end, failing t on any error but the end.
func drainStream(t *testing.T, client *goopenai.Client, ctx context.Context, req goopenai.ChatCompletionRequest) {
	t.Helper()
	s, err := client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for {
		if _, err := s.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return
		}
	}
}
