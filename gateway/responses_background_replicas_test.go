package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// TestBackgroundResponseSeenDoneOnAnotherReplicaIsChargedItsUsage: two
// gateway replicas share one real Redis. A background response created
// through replica A is held there; the client polls replica B, which sees
// it completed. A, when its hold ends (here: it closes; else run_idle
// later), settles it at the usage B saw — 15 tokens — not at its
// reservation (16,384 output tokens and its input), as it did before.
// A response B saw done that A does not hold changes nothing; nor does a
// poll that shows the response still running.
func TestBackgroundResponseSeenDoneOnAnotherReplicaIsChargedItsUsage(t *testing.T) {
	rdb, prefix := testRedis(t)
	up := &backgroundUpstream{state: map[string]string{}}
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n  store: {kind: redis, key_prefix: " + prefix + "}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, "http://upstream.invalid/v1", pols, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\nlimits: {run_idle: 10m}\n")
	replica := func() (*gateway.Server, openai.Client) {
		cfg, err := gateway.LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		gw, err := gateway.New(cfg, gateway.WithBaseTransport(openaitest.NewTransport(up)), gateway.WithRedisClient(rdb),
			gateway.WithPolicyWatch(false), gateway.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		return gw, openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
			option.WithHTTPClient(&http.Client{Transport: gw.Transport()}), option.WithMaxRetries(0))
	}
	a, ca := replica()
	b, cb := replica()
	defer b.Close()
	ctx := context.Background()
	spend := func() gateway.Spend {
		t.Helper()
		var s gateway.Spend
		if err := cb.Get(ctx, "spend", nil, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	r, err := ca.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
	if err != nil || r.Status != "queued" {
		t.Fatalf("a background call through A: %+v %v", r, err)
	}
	if s := spend(); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
		t.Fatalf("spend after the call: %+v, want its reservation held (seen from B)", s)
	}
	up.set(r.ID, "in_progress", "null")
	if got, err := cb.Responses.Get(ctx, r.ID, responses.ResponseGetParams{}); err != nil || got.Status != "in_progress" {
		t.Fatalf("poll through B: %+v %v", got, err)
	}
	up.set(r.ID, "completed", `{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}`)
	if got, err := cb.Responses.Get(ctx, r.ID, responses.ResponseGetParams{}); err != nil || got.Status != "completed" || got.Usage.TotalTokens != 15 {
		t.Fatalf("poll through B: %+v %v", got, err)
	}
	if s := spend(); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
		t.Errorf("spend after B saw it done: %+v, want it still held by A", s)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if s := spend(); s.SpentTokens != 15 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Errorf("spend after A's hold ended: %+v, want the 15 tokens B saw, nothing held", s)
	}
}
