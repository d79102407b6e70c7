package e2e

// A langchaingo stream malformed at its first chunk is billed.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLangchaingoMalformedFirstChunkIsBilled: a stream (status 200) whose
// first chunk is malformed (a content that is no string) fails through the
// langchaingo adapter with ErrMalformed, and the attempt is billed an
// estimate of its input, flagged, as the go-openai transport bills the same
// stream: the provider produced, and bills, the call (it was billed $0).
func TestLangchaingoMalformedFirstChunkIsBilled(t *testing.T) {
	body := "data: {\"id\":\"u\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":5},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n"
	c := wiregen.Case{N: 1, Stream: true, Wire: wiregen.Wire{Stream: true, ContentType: "text/event-stream", Body: []byte(body), Done: true}}
	srv := &wiregen.Server{}
	srv.Set(c.Wire)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	obs := new(recorder) // the calls' facts: obs.callFacts()
	p := policies.Default()
	p.Fallback.Retry.MaxAttempts = 1
	chain := llmwrap.MustBuild(p, llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
	if err != nil {
		t.Fatal(err)
	}
	got := lcCall(context.Background(), twlc.New(twlc.Models{"gpt-4o-mini": inner}, chain), c, "x")
	facts := obs.callFacts()
	if !errors.Is(got.err, middleware.ErrMalformed) {
		t.Errorf("read %+v, %v; want ErrMalformed", got.choices, got.err)
	}
	if len(facts) != 1 || len(facts[0].Attempts) == 0 {
		t.Fatalf("calls %+v", facts)
	}
	if a := facts[0].Attempts[len(facts[0].Attempts)-1]; !a.Estimated || a.Usage.InputTokens <= 0 {
		t.Errorf("billed %+v (estimated %t, cost %d pico); want an estimate of its input, flagged", a.Usage, a.Estimated, facts[0].CostPico)
	}
}
