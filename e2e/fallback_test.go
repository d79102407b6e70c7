package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
)

// streamPolicy is the resilience stack of llmwrap/fallback's stream tests:
// a fallback model, a breaker, one retry and stream timeouts.
const streamPolicy = `version: 1
timeouts: {call: 1m, first_token: 2s, idle: 5s}
fallback:
  models: [gpt-4o, gpt-4o-mini]
  retry: {max_attempts: 2, base_delay: 1ms}
  breaker: {consecutive_failures: 5}
`

// Must show: a stream cut after chunks were delivered returns an error to
// the langchaingo caller, never a normal end, and does not fall back (the
// go-openai caller: llmwrap/fallback's TestCutStreamIsAnErrorForBothClients).
func TestCutStreamIsAnErrorForLangchaingo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.CutAfter(3))
		srv.On().Reply(openaitest.Text("never"))
		rec := &events{}
		mw, err := llmwrap.Build(mustPolicy(t, streamPolicy), llmwrap.WithObserver(rec))
		if err != nil {
			t.Fatal(err)
		}
		llm, err := lcopenai.New(lcopenai.WithToken("sk-test"), lcopenai.WithBaseURL(srv.URL), lcopenai.WithModel("gpt-4o"),
			lcopenai.WithHTTPClient(twopenai.NewTransport(mw, twopenai.WithBaseTransport(srv.Transport()))))
		if err != nil {
			t.Fatal(err)
		}
		var streamed strings.Builder
		_, err = llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")},
			llms.WithStreamingFunc(func(_ context.Context, b []byte) error { streamed.Write(b); return nil }))
		if err == nil || streamed.Len() == 0 {
			t.Fatalf("langchaingo: streamed %q, err %v; want partial text and an error", streamed.String(), err)
		}
		if m := upstreamModels(srv); !slices.Equal(m, []string{"gpt-4o"}) {
			t.Fatalf("requests %v: a cut after the first chunk must not fall back", m)
		}
		fin := rec.finished()
		if len(fin) == 0 {
			t.Fatal("no CallFinished event")
		}
		for _, f := range fin {
			if f.Err == nil {
				t.Errorf("a cut call was recorded as a success: %+v", f)
			}
		}
	})
}
