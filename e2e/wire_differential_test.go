package e2e

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// wireSeeds is the number of generated answers a sweep plays:
// TOKENWISE_WIRE_SEEDS when set, else 300 (30 with -short).
func wireSeeds(t *testing.T) uint64 {
	if n, err := strconv.ParseUint(os.Getenv("TOKENWISE_WIRE_SEEDS"), 10, 64); err == nil {
		return n
	}
	if testing.Short() {
		return 30
	}
	return 300
}

var defaultChain = sync.OnceValue(func() middleware.Middleware { return llmwrap.MustBuild(policies.Default()) })

// transportDifferential returns a server of generated answers and go-openai
// through the transport with the default policy, in front of it.
func transportDifferential(t testing.TB) (srv *wiregen.Server, url string, tw *goopenai.Client) {
	return transportDifferentialOf(t, defaultChain())
}

// transportDifferentialOf is transportDifferential with chain.
func transportDifferentialOf(t testing.TB, chain middleware.Middleware) (srv *wiregen.Server, url string, tw *goopenai.Client) {
	srv = &wiregen.Server{}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = ts.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(base))
	return srv, ts.URL, goopenai.NewClientWithConfig(cfg)
}

// FuzzGoOpenAIReadsTheSameThroughTheTransport: for a valid answer generated
// in any shape real servers send (internal/wiregen), go-openai through the
// transport with the default policy reads what go-openai alone reads
// (content, reasoning, refusal, tool calls, finish reasons, usage when
// asked for), or a typed error on a stream without [DONE]; and the second
// identical call (a cache hit) reads the same.
func FuzzGoOpenAIReadsTheSameThroughTheTransport(f *testing.F) {
	for s := range uint64(64) {
		f.Add(s)
	}
	srv, url, tw := transportDifferential(f)
	f.Fuzz(func(t *testing.T, seed uint64) {
		wiregen.Differential(t, srv, url, tw, wiregen.NewCase(seed))
	})
}

// TestGoOpenAIReadsTheSameThroughTheTransportSweep is the fuzz target's
// property over the named servers' shapes (wiregen.Vendors; a failure
// among them read as a typed error, never cached), each through a chain
// of its own (a failure opens no breaker for the next), then over
// wireSeeds seeds after its corpus.
func TestGoOpenAIReadsTheSameThroughTheTransportSweep(t *testing.T) {
	for _, v := range wiregen.Vendors {
		t.Run(v.Name, func(t *testing.T) {
			srv, url, tw := transportDifferentialOf(t, llmwrap.MustBuild(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
			wiregen.Differential(t, srv, url, tw, v.Case())
		})
	}
	srv, url, tw := transportDifferential(t)
	for s := range wireSeeds(t) {
		c := wiregen.NewCase(64 + s)
		t.Run(fmt.Sprint(c.Seed), func(t *testing.T) { wiregen.Differential(t, srv, url, tw, c) })
	}
}
