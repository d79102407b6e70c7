package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayChatNoChoicesAnswerChargedItsUsage: a chat call (go-openai)
// through the gateway, answered upstream by a gpt-4o 200 without choices
// that counts 100,000 input and 1,000 output tokens, which the provider
// bills 260,000 µ$ ($2.50/M input, $10/M output). The client gets an
// error, never a success, and the team's ledger and the run's report
// charge the answer's usage, not an estimate. (Fake time: synctest.)
func TestGatewayChatNoChoicesAnswerChargedItsUsage(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":100000,"completion_tokens":1000,"total_tokens":101000}}`)
		})
		e := retryEnv(t, "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n", up)
		cfg := goopenai.DefaultConfig(devopsKey)
		cfg.BaseURL = e.url + "/v1"
		cfg.HTTPClient = &http.Client{Transport: runIDTransport{id: "nochoices", base: e.client.Transport}}
		resp, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}, MaxCompletionTokens: 2000,
		})
		var ae *goopenai.APIError
		if err == nil || !errors.As(err, &ae) {
			t.Fatalf("resp %+v, err %v: want the gateway's error", resp, err)
		}
		synctest.Wait()
		if sp := e.spend(t); sp.SpentUSD != "0.260000" || sp.SpentTokens != 101_000 || sp.ReservedUSD != "0.000000" {
			t.Errorf("spend %+v: want the answer's 101,000 tokens, $0.26, nothing held", sp)
		}
		if rep := pipeRunReport(t, e, "nochoices"); rep.InputTokens != 100_000 || rep.OutputTokens != 1000 ||
			rep.CostPico != 260_000*1_000_000 || rep.EstimatedCalls != 0 {
			t.Errorf("run report %+v: want 100,000 input and 1,000 output tokens, 260,000 µ$, no estimate", rep)
		}
	})
}

// runIDTransport names the run of every request it sends (gateway.RunIDHeader).
type runIDTransport struct {
	id   string
	base http.RoundTripper
}

func (t runIDTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(gateway.RunIDHeader, t.id)
	return t.base.RoundTrip(r)
}
