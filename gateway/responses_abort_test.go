package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestResponsesStreamTheClientAbortsIsChargedWhatItStreamed: a Responses
// stream its client aborts mid-way — the official Node package's
// responses.stream (and the Agents SDK's streamed run) stopped with an
// AbortController: the request below is the one it sends, without
// max_output_tokens — is charged its input and the output it streamed,
// flagged as an estimate, as a chat stream its client aborts is; not its
// reservation (the model's whole maximum output, 16,384 tokens of
// gpt-4o-mini, which it never produced), and nothing stays held.
// (Fake time: synctest.)
func TestResponsesStreamTheClientAbortsIsChargedWhatItStreamed(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		e := timeoutEnv(t, unansweredPolicy)
		ctx, cancel := context.WithCancel(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/responses",
			strings.NewReader(`{"model":"gpt-4o-mini","input":"pause","stream":true}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+devopsKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Stainless-Helper-Method", "stream")
		req.Header.Set(gateway.RunIDHeader, "resp-aborted")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// The client reads the stream's two deltas ("a", "b"), then aborts.
		sc := bufio.NewScanner(resp.Body)
		deltas := 0
		for deltas < 2 && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), "response.output_text.delta") {
				deltas++
			}
		}
		if deltas != 2 {
			t.Fatalf("read %d deltas before the stream ended: %v", deltas, sc.Err())
		}
		cancel()
		resp.Body.Close()
		synctest.Wait()

		sp := e.spend(t)
		if sp.ReservedUSD != "0.000000" || sp.InFlightCalls != 0 {
			t.Errorf("spend %+v: the aborted stream still holds its reservation", sp)
		}
		// Its input (under a hundred tokens) and its two output tokens; its
		// reservation was over 16,384.
		if sp.SpentTokens <= 2 || sp.SpentTokens >= 100 {
			t.Errorf("spend %+v: want the input and the 2 streamed tokens charged (2 < tokens < 100), not the reservation", sp)
		}
		rep := pipeRunReport(t, e, "resp-aborted")
		if rep.Calls != 1 || rep.FailedCalls != 1 || rep.OutputTokens != 2 || rep.InputTokens+rep.OutputTokens != sp.SpentTokens ||
			rep.EstimatedCalls != 1 || rep.CostPico <= 0 || rep.EstimatedPico != rep.CostPico {
			t.Errorf("run report %+v: want one failed call of its input and 2 output tokens, its cost an estimate", rep.RunFigures)
		}
	})
}
