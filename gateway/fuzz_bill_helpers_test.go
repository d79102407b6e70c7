package gateway_test

import (
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tokenwise/tokenwise/internal/wiregen"
)

// startBillGateway starts a scripted upstream (its connection errors kept
// quiet) and a fuzz gateway over it with the fuzz policies: the bill fuzz
// targets' fixture.
func startBillGateway(f *testing.F) (*rawUpstream, *fuzzGateway) {
	f.Setenv(upstreamEnv, upstreamKey)
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Cleanup(ts.Close)
	return up, startFuzzGateway(f, ts.URL+"/v1", fuzzUpstreamPolicies, "")
}

// billClient returns an openai-go client of the devops team calling g
// over HTTP, or in process through Server.Transport when inProcess is set.
func billClient(g *fuzzGateway, inProcess bool) openai.Client {
	opts := []option.RequestOption{option.WithAPIKey(devopsKey), option.WithMaxRetries(0)}
	if inProcess {
		opts = append(opts, option.WithBaseURL("http://tokenwise.invalid/v1/"),
			option.WithHTTPClient(&http.Client{Transport: g.srv.Transport()}))
	} else {
		opts = append(opts, option.WithBaseURL(g.url+"/v1/"), option.WithHTTPClient(g.client))
	}
	return openai.NewClient(opts...)
}

// checkBillSpend asserts the devops team's spend on g (whole: nothing
// negative, held or in flight): after a hostile usage at most 3·2^50
// micro-dollars, otherwise the bills' sum wantSum rounded up once.
func checkBillSpend(t *testing.T, g *fuzzGateway, wantSum *big.Rat, hostile bool) {
	t.Helper()
	sp := g.spend(t, devopsKey)
	if hostile {
		if sp.spent > 3<<50 {
			t.Fatalf("after a usage of 2^62 tokens the team spent %d micro-dollars", sp.spent)
		}
		return
	}
	if upTo := wiregen.MicroUp(wantSum); sp.spent != upTo {
		t.Fatalf("the team spent %d micro-dollars, the upstream's bills sum to %s pico-dollars (%d micro-dollars rounded up)\ngateway log:\n%s",
			sp.spent, wantSum.FloatString(0), upTo, g.logs.String())
	}
}
