package e2e

// What the wire audit found about billing a malformed answer.

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestMalformedAnswerAfter2xxIsBilled: a plain answer of status 200 whose
// body is not valid JSON fails with ErrMalformed (typed), and the Meter
// bills the attempt its estimate, flagged: the provider produced, and
// bills, the answer (middleware.AnswerMalformedError).
func TestMalformedAnswerAfter2xxIsBilled(t *testing.T) {
	srv := &wiregen.Server{}
	srv.Set(wiregen.Wire{ContentType: "application/json", Body: []byte(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}, garbage}`)})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	obs := new(recorder) // the calls' facts: obs.callFacts()
	p := policies.Default()
	p.Fallback.Retry.MaxAttempts = 1
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = ts.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
	if got := wiregen.Call(context.Background(), goopenai.NewClientWithConfig(cfg), wiregen.Case{}.Request("x")); got.Err == nil {
		t.Fatalf("a malformed answer read as %v", got.Answer)
	}
	facts := obs.callFacts()
	if len(facts) != 1 || len(facts[0].Attempts) != 1 {
		t.Fatalf("calls %+v", facts)
	}
	if a := facts[0].Attempts[0]; !a.Estimated || a.CostPico == 0 {
		t.Errorf("the attempt billed %+v (%d pico, estimated %t) for an answer the provider produced", a.Usage, a.CostPico, a.Estimated)
	}
}
