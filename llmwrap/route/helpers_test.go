package route_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	lcopenai "github.com/tmc/langchaingo/llms/openai"
	"go.uber.org/goleak"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustPolicy(t testing.TB, yaml string) *policies.Policy {
	t.Helper()
	p, err := policies.LoadBytes([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// events records the events of a chain; safe for concurrent use.
type events struct {
	mu  sync.Mutex
	all []middleware.Event
}

func (e *events) Observe(_ context.Context, ev middleware.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) routes() []middleware.RouteDecided {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []middleware.RouteDecided
	for _, ev := range e.all {
		if r, ok := ev.(middleware.RouteDecided); ok {
			out = append(out, r)
		}
	}
	return out
}

// goClient is a real go-openai client whose HTTP client runs the policy's
// chain, talking to srv in memory.
func goClient(t testing.TB, srv *openaitest.Server, p *policies.Policy, opts ...llmwrap.Option) *goopenai.Client {
	t.Helper()
	chain, err := llmwrap.Build(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	return goopenai.NewClientWithConfig(cfg)
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
