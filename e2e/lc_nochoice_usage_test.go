package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLangchaingoNoChoicesAnswerChargedItsUsage: a gpt-4o 200 answer
// without choices that counts 100,000 input and 1,000 output tokens is
// billed 260,000 µ$ by the provider. Through langchaingo's openai client
// wrapped by twlc.New, its HTTP client twlc.NewTransport (over the bare
// transport, or over the go-openai adapter's NewTransport), the call is
// still a malformed answer's typed error, and the report and the team
// ledger charge the answer's usage: 260,000 µ$ (before, an estimate of
// 28 µ$). Streamed (chunks without choices, then the usage and [DONE]),
// the call is an empty answer or a malformed one, charged the same.
func TestLangchaingoNoChoicesAnswerChargedItsUsage(t *testing.T) {
	const (
		plain  = `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":100000,"completion_tokens":1000,"total_tokens":101000}}`
		stream = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[]}\n\n" +
			"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":100000,\"completion_tokens\":1000,\"total_tokens\":101000}}\n\n" +
			"data: [DONE]\n\n"
		wantPico = int64(260_000) * 1_000_000 // 100,000 × $2.50/M + 1,000 × $10/M
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(stream))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(plain))
	}))
	defer srv.Close()
	for _, way := range []struct {
		name string
		rt   func() http.RoundTripper
	}{
		{"twlc.NewTransport", func() http.RoundTripper { return twlc.NewTransport(srv.Client().Transport) }},
		{"twlc.NewTransport over the go-openai transport", func() http.RoundTripper {
			return twlc.NewTransport(twopenai.NewTransport(nil, twopenai.WithBaseTransport(srv.Client().Transport)))
		}},
	} {
		for _, streamed := range []bool{false, true} {
			name := way.name + "/plain"
			if streamed {
				name = way.name + "/streamed"
			}
			t.Run(name, func(t *testing.T) {
				p := dailyTeamPolicy()
				store := budget.NewMemoryStore()
				var cost atomic.Int64
				inner, err := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("k"), lcopenai.WithBaseURL(srv.URL+"/v1"),
					lcopenai.WithHTTPClient(&http.Client{Transport: way.rt()}))
				if err != nil {
					t.Fatal(err)
				}
				llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
				opts := []llms.CallOption{llms.WithMaxTokens(2000)}
				if streamed {
					opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
				}
				resp, err := llm.GenerateContent(middleware.WithTeam(context.Background(), "sre"), []llms.MessageContent{human("Check the disks.")}, opts...)
				var pe *middleware.ProviderError
				switch {
				case streamed && err == nil:
					// A stream of chunks without choices, its usage and
					// [DONE]: an empty answer, which the client reads as
					// one; billed as the provider bills it.
					if len(resp.Choices) != 1 || resp.Choices[0].Content != "" {
						t.Errorf("resp %+v: want one empty choice", resp)
					}
				case !errors.Is(err, middleware.ErrMalformed) || !errors.As(err, &pe):
					t.Fatalf("resp %+v, err %v: want a malformed answer's typed error", resp, err)
				}
				if c := cost.Load(); c != wantPico {
					t.Errorf("the answer without choices was charged %s, the provider bills %s", policies.PicoUSD(c), policies.PicoUSD(wantPico))
				}
				if m := ledgerSpent(t, p, store, "sre"); m != wantPico/1_000_000 {
					t.Errorf("the ledger charged %d µ$, the provider bills %d µ$", m, wantPico/1_000_000)
				}
			})
		}
	}
}
