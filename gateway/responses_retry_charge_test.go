package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// stallFirst is an upstream whose first Responses request stalls until
// the gateway gives up on it (all of them when always), and whose others
// are answered with 1,000 input and 100 output tokens; n counts the
// requests.
func stallFirst(n *atomic.Int64, always bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if n.Add(1) == 1 || always {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`)
	})
}

// retryEnv is a gateway in front of up on a pipe listener, inside the
// caller's synctest bubble, the devops team's policy pol.
func retryEnv(t *testing.T, pol string, up http.Handler) *env {
	t.Helper()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": pol}
	logs := &syncBuffer{}
	srv, tr, served := servePipe(t, writeFiles(t, "http://upstream.invalid/v1", pols, ""), openaitest.NewTransport(up),
		slog.New(slog.NewJSONHandler(logs, nil)))
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	return &env{url: "http://gateway", client: &http.Client{Transport: tr}, logs: logs}
}

// disksCheck is a Responses call (openai-go) of about 400 input tokens.
func disksCheck(maxOut int64) responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(maxOut),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(strings.Repeat("Check the disks. ", 100))}}
}

// TestGatewayResponsesRetriedTimeoutIsCharged: a Responses call (openai-go)
// whose first request reached the upstream and timed out (timeouts.call),
// then was retried (fallback.retry) and answered. The provider bills the
// first request's prompt (about 400 tokens), as the chat chain charges a
// timed-out attempt's input (TestTimedOutLastAttemptIsSettledAsBilled):
// the team's ledger and the run's report charge it beside the answer's
// 1,100 tokens, at its price (gpt-4o-mini's $0.15/M input, $0.60/M
// output), an estimate. (Before, the answer's 1,100 tokens alone.) (Fake
// time: synctest.)
func TestGatewayResponsesRetriedTimeoutIsCharged(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		e := retryEnv(t, `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 1}
timeouts: {call: 30s, total: 5m}
fallback:
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
`, stallFirst(&n, false))
		if _, err := pipeClient(e).Responses.New(t.Context(), disksCheck(200), option.WithHeader(gateway.RunIDHeader, "retried")); err != nil || n.Load() != 2 {
			t.Fatalf("err %v after %d upstream requests, want an answer after 2", err, n.Load())
		}
		synctest.Wait()
		sp := e.spend(t)
		in := sp.SpentTokens - 1100 // the timed-out request's input
		if in <= 0 || in >= 1000 || sp.ReservedUSD != "0.000000" || sp.InFlightCalls != 0 {
			t.Fatalf("spend %+v: want the answer's 1,100 tokens and the timed-out request's input (about 400), nothing held", sp)
		}
		rep := pipeRunReport(t, e, "retried")
		const answerPico = 1000*150_000 + 100*600_000
		if rep.Calls != 1 || rep.FailedCalls != 0 || rep.InputTokens != 1000+in || rep.OutputTokens != 100 ||
			rep.CostPico != answerPico+in*150_000 || rep.EstimatedCalls != 1 || rep.EstimatedPico != in*150_000 {
			t.Errorf("run report %+v: want one call of %d input and 100 output tokens, at %d pico-USD, %d of them an estimate",
				rep, 1000+in, answerPico+in*150_000, in*150_000)
		}
	})
}

// TestGatewayResponsesRetryNeverOvershootsTheBudget: a Responses call
// (openai-go) whose requests all time out, under a team budget of 2,600
// tokens that holds one request's worst case (its input, about 400
// tokens, and max_output_tokens 2,000) but not that and the timed-out
// request's input besides: the retry is refused (the provider's timeout
// is the client's 504), the upstream has one request, and the ledger
// charges its input, within the limit. (Before, the retries were sent:
// the provider billed three prompts, the ledger one.) (Fake time: synctest.)
func TestGatewayResponsesRetryNeverOvershootsTheBudget(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		e := retryEnv(t, `version: 1
name: devops
budget:
  team: {period: monthly, max_tokens: 2600}
timeouts: {call: 30s, total: 5m}
fallback:
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}
`, stallFirst(&n, true))
		_, err := pipeClient(e).Responses.New(t.Context(), disksCheck(2000))
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 504 || ae.Code != "timeout" || n.Load() != 1 {
			t.Fatalf("err %v after %d upstream requests, want the gateway's 504 timeout after 1", err, n.Load())
		}
		synctest.Wait()
		if sp := e.spend(t); sp.SpentTokens < 300 || sp.SpentTokens > 500 || sp.InFlightCalls != 0 {
			t.Errorf("spend %+v: want the timed-out request's input alone (about 400 tokens), nothing held", sp)
		}
	})
}
