package gateway_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/policies"
)

// defaultPolicyGateway serves a gateway whose every team runs the embedded
// default policy, in front of upstreamURL; it returns the gateway's base
// URL.
func defaultPolicyGateway(t testing.TB, upstreamURL string) string {
	t.Helper()
	cfg := writeFiles(t, upstreamURL, map[string]string{"default.yaml": string(policies.DefaultYAML())}, "")
	c, err := gateway.LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(c, gateway.WithPolicyWatch(false), gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(g.Handler())
	t.Cleanup(func() { ts.Close(); g.Close() })
	return ts.URL + "/v1"
}

// wireGateway returns a server of answers, its URL for go-openai, and
// go-openai through the gateway (the default policy) in front of it.
func wireGateway(t *testing.T) (srv *wiregen.Server, url string, tw *goopenai.Client) {
	t.Helper()
	t.Setenv(upstreamEnv, upstreamKey)
	srv = &wiregen.Server{}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = defaultPolicyGateway(t, ts.URL+"/v1")
	return srv, ts.URL + "/v1", goopenai.NewClientWithConfig(cfg)
}

// TestGoOpenAIReadsTheSameThroughTheGatewaySweep: for the named servers'
// shapes (wiregen.Vendors) and for generated answers in the shapes real
// servers send (internal/wiregen; TOKENWISE_WIRE_SEEDS of them, else 300,
// 30 with -short), go-openai through the gateway reads
// what go-openai alone reads, or a typed error on a stream without [DONE];
// and the second identical call (a cache hit) reads the same.
func TestGoOpenAIReadsTheSameThroughTheGatewaySweep(t *testing.T) {
	n := uint64(300)
	if testing.Short() {
		n = 30
	}
	if v, err := strconv.ParseUint(os.Getenv("TOKENWISE_WIRE_SEEDS"), 10, 64); err == nil {
		n = v
	}
	srv, url, tw := wireGateway(t)
	for _, v := range wiregen.Vendors {
		t.Run(v.Name, func(t *testing.T) {
			srv, url, tw := srv, url, tw
			if v.WantErr { // a gateway of its own: a failure opens no breaker for the next
				srv, url, tw = wireGateway(t)
			}
			wiregen.Differential(t, srv, url, tw, v.Case())
		})
	}
	for s := range n {
		c := wiregen.NewCase(s)
		t.Run(fmt.Sprint(s), func(t *testing.T) { wiregen.Differential(t, srv, url, tw, c) })
	}
}
