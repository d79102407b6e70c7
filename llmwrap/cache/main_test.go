package cache_test

import (
	"net/http"
	"testing"

	"github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cachePolicy is a policy with only the cache on, so that the tests do not
// depend on other layers.
func cachePolicy(c policies.Cache) *policies.Policy {
	c.Enabled = true
	return &policies.Policy{Version: policies.Version, Cache: c}
}

// events records the events of a chain. It is safe for concurrent use.
type events struct{ middlewaretest.Recorder }

func (e *events) lookups() []middleware.CacheLookup {
	return middlewaretest.Of[middleware.CacheLookup](&e.Recorder)
}

func (e *events) storeFailures() []middleware.StoreFailed {
	return middlewaretest.Of[middleware.StoreFailed](&e.Recorder)
}

// goOpenAI returns a real go-openai client whose HTTP client runs chain in
// its transport, talking to srv through rt (nil: a real socket transport
// closed at the end of the test).
func goOpenAI(t testing.TB, srv *openaitest.Server, chain middleware.Middleware, rt http.RoundTripper) *openai.Client {
	t.Helper()
	if rt == nil {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		rt = base
	}
	cfg := openai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(rt))
	return openai.NewClientWithConfig(cfg)
}
