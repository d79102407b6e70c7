package gateway_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayResponsesRetryRefusedByTheRateLimitChargesOnce: a Responses
// call (openai-go) whose request timed out (timeouts.call) after it
// reached the upstream, whose retry the budget admitted (charging the
// timed-out request's input) but its model's rate limit then refused
// (1 rpm, on_limit reject): the provider billed one prompt (about 400
// tokens), which the team's ledger and the run's report charge once.
// (Before, twice: about 800 tokens, the retry's admission and the failed
// call each charging it.) (Fake time: synctest.)
func TestGatewayResponsesRetryRefusedByTheRateLimitChargesOnce(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		e := retryEnv(t, `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 1}
timeouts: {call: 30s, total: 5m}
fallback:
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}
rate_limits:
  on_limit: reject
  models:
    gpt-4o-mini: {rpm: 1}
`, stallFirst(&n, true))
		_, err := pipeClient(e).Responses.New(t.Context(), disksCheck(200), option.WithHeader(gateway.RunIDHeader, "refused"))
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 504 || n.Load() != 1 {
			t.Fatalf("err %v after %d upstream requests, want the gateway's 504 timeout after 1", err, n.Load())
		}
		synctest.Wait()
		sp := e.spend(t)
		if sp.SpentTokens < 300 || sp.SpentTokens > 500 || sp.InFlightCalls != 0 {
			t.Errorf("spend %+v: want the timed-out request's input once (about 400 tokens), nothing held", sp)
		}
		rep := pipeRunReport(t, e, "refused")
		if rep.InputTokens != sp.SpentTokens || rep.Calls != 1 {
			t.Errorf("run report %+v: want one call of %d input tokens (the timed-out request's, once)", rep, sp.SpentTokens)
		}
	})
}

// TestGatewayResponsesRetryRefusedByTheBudgetGivesItsRequestBack: a
// Responses call whose request timed out, whose retry the rate limit
// admitted (2 rpm with a burst of 1m) but the budget then refused (2,600
// tokens hold one request's worst case, not the timed-out input besides):
// the retry was not sent, and its request is given back to the limit, so
// that the next call is admitted (it reaches the upstream) rather than
// refused. (Fake time: synctest.)
func TestGatewayResponsesRetryRefusedByTheBudgetGivesItsRequestBack(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		e := retryEnv(t, `version: 1
name: devops
budget:
  team: {period: monthly, max_tokens: 2600}
timeouts: {call: 1s, total: 5m}
fallback:
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}
rate_limits:
  on_limit: reject
  models:
    gpt-4o-mini: {rpm: 2, burst: 1m}
`, stallFirst(&n, true))
		_, err := pipeClient(e).Responses.New(t.Context(), disksCheck(2000))
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 504 || n.Load() != 1 {
			t.Fatalf("err %v after %d upstream requests, want the gateway's 504 timeout after 1", err, n.Load())
		}
		_, err = pipeClient(e).Responses.New(t.Context(), disksCheck(100))
		if !errors.As(err, &ae) || ae.StatusCode != 504 || n.Load() != 2 {
			t.Fatalf("second call: err %v after %d upstream requests, want its 504 timeout after 2 (the refused retry's request given back)", err, n.Load())
		}
	})
}
