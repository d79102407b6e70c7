package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGatewayResponsesRetriedTimeoutIsCharged: a Responses call whose
// first attempt reached the upstream and timed out (timeouts.call), then
// was retried and answered. The provider bills the first attempt's
// prompt, of about 400 tokens, as the chat chain charges a timed-out
// attempt's input (TestTimedOutLastAttemptIsSettledAsBilled); the team
// ledger charges the answer's 1,100 tokens alone.
func TestGatewayResponsesRetriedTimeoutIsCharged(t *testing.T) {
	t.Skip("unfixed: a Responses attempt retried after a timeout is not charged its input (only the call's last attempt is)")
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if n.Add(1) == 1 {
			<-r.Context().Done() // stalls until the gateway gives up
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`)
	}))
	t.Cleanup(up.Close)
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 1}
timeouts: {call: 300ms, total: 5s}
fallback:
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
`}
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","max_output_tokens":200,"input":"`+strings.Repeat("Check the disks. ", 100)+`"}`)
	_, _ = io.Copy(io.Discard, r.Body)
	if r.StatusCode != http.StatusOK || n.Load() != 2 {
		t.Fatalf("%d after %d upstream requests, want 200 after 2", r.StatusCode, n.Load())
	}
	if sp := e.spend(t); sp.SpentTokens < 1100+300 {
		t.Errorf("spent %d tokens: the answer's 1,100 alone, the timed-out attempt's input (about 400) not charged", sp.SpentTokens)
	}
}
