package route_test

import (
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
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

// upstreamModels lists the model of every request the server received.
func upstreamModels(srv *openaitest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, r.Chat.Model)
	}
	return out
}

func join(s []string) string { return strings.Join(s, ",") }
