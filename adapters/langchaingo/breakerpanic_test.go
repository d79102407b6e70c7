package langchaingo_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestAPanickingProbeDoesNotWedgeTheBreaker: the caller's StreamingFunc
// panics during the half-open breaker's probe — a panic under the chain,
// which is that call's error (a *middleware.PanicError) — and the
// breaker lets the next call probe the model again, which closes it.
// Before, the probe was never judged: the half-open breaker kept its
// only probe slot taken and refused every later call of the model, for
// good.
func TestAPanickingProbeDoesNotWedgeTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		defer srv.Close()
		srv.On().Reply(openaitest.ServerError()).Times(1)
		srv.On().Reply(openaitest.Text("the disks are fine"))
		p, err := policies.LoadBytes([]byte("version: 1\nfallback:\n  breaker: {consecutive_failures: 1, open_for: 10s}\n"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		inner, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o-mini"),
			openai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
		if err != nil {
			t.Fatal(err)
		}
		llm := twlc.New(twlc.Models{"gpt-4o-mini": inner}, llmwrap.MustBuild(p))
		ctx := context.Background()
		msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "disks?")}

		if _, err := llm.GenerateContent(ctx, msgs); err == nil {
			t.Fatal("the 500 answered")
		}
		if _, err := llm.GenerateContent(ctx, msgs); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("a call after the failure: %v, want the open breaker's refusal", err)
		}
		time.Sleep(11 * time.Second) // past the open period (fake time)
		_, err = llm.GenerateContent(ctx, msgs, llms.WithStreamingFunc(func(context.Context, []byte) error {
			panic("the caller's stream func")
		}))
		if !errors.Is(err, middleware.ErrPanic) {
			t.Fatalf("the probe whose stream func panicked: %v, want a middleware.ErrPanic", err)
		}
		resp, err := llm.GenerateContent(ctx, msgs)
		if err != nil || resp.Choices[0].Content != "the disks are fine" {
			t.Fatalf("the call after the panicking probe: %v, want the answer (the breaker probes again)", err)
		}
		if _, err := llm.GenerateContent(ctx, msgs); err != nil {
			t.Fatalf("a call after a successful probe: %v, want an answer (the breaker closed)", err)
		}
	})
}
