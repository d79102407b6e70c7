package e2e

// Repros of what the wire audit found and did not fix, skipped.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestMalformedAnswerAfter2xxIsBilled: a plain answer of status 200 whose
// body is not valid JSON fails with ErrMalformed (typed), but the Meter
// bills the attempt $0, not flagged as an estimate: only an answer cut
// mid-body (AnswerCutError) is billed after its 2xx status, while the
// provider produced, and bills, this one too.
func TestMalformedAnswerAfter2xxIsBilled(t *testing.T) {
	t.Skip("unfixed: a malformed 2xx answer is billed $0 (the Meter bills only AnswerCutError after a 2xx status)")
	srv := &wiregen.Server{}
	srv.Set(wiregen.Wire{ContentType: "application/json", Body: []byte(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}, garbage}`)})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var mu sync.Mutex
	var facts []middleware.CallFacts
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			mu.Lock()
			facts = append(facts, f.Facts)
			mu.Unlock()
		}
	})
	p := policies.Default()
	p.Fallback.Retry.MaxAttempts = 1
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = ts.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
	if got := wiregen.Call(context.Background(), goopenai.NewClientWithConfig(cfg), wiregen.Case{}.Request("x")); got.Err == nil {
		t.Fatalf("a malformed answer read as %v", got.Answer)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(facts) != 1 || len(facts[0].Attempts) != 1 {
		t.Fatalf("calls %+v", facts)
	}
	if a := facts[0].Attempts[0]; !a.Estimated || a.CostPico == 0 {
		t.Errorf("the attempt billed %+v (%d pico, estimated %t) for an answer the provider produced", a.Usage, a.CostPico, a.Estimated)
	}
}

// TestLangchaingoUndecodableAnswersAreBilled: the shapes langchaingo's
// backend cannot decode (usage counts as floats, 12.0; created as a
// string) fail through the adapter with ErrMalformed, and are billed $0,
// unflagged — a plain answer, and a stream that fails on its first chunk
// — or an estimate where the provider reported its count (a stream of
// float counts); the go-openai transport bills the provider's count (it
// reads 12.0 as 12).
func TestLangchaingoUndecodableAnswersAreBilled(t *testing.T) {
	t.Skip("unfixed: answers langchaingo's backend cannot decode are billed $0 through the adapter, not the provider's count")
	for _, v := range wiregen.Vendors {
		if !lcUnbilled[v.Name] {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			c := v.Case()
			srv := &wiregen.Server{}
			srv.Set(c.Wire)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			var mu sync.Mutex
			var facts []middleware.CallFacts
			obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if f, ok := e.(middleware.CallFinished); ok {
					mu.Lock()
					facts = append(facts, f.Facts)
					mu.Unlock()
				}
			})
			chain := llmwrap.MustBuild(policies.Default(), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
			if err != nil {
				t.Fatal(err)
			}
			got := lcCall(context.Background(), twlc.New(twlc.Models{"gpt-4o-mini": inner}, chain), c, v.Name)
			if got.err != nil && !wiregenTyped(got.err) {
				t.Errorf("untyped error %T: %v", got.err, got.err)
			}
			mu.Lock()
			defer mu.Unlock()
			checkBill(t, v, facts)
		})
	}
}

// wiregenTyped reports whether err is one a caller can act on (as
// wiregen's differential asks).
func wiregenTyped(err error) bool {
	var pe *middleware.ProviderError
	return errors.As(err, &pe)
}
