package gateway_test

import (
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestGatewayResponsesCascadeFailedStreamIsBilledWhatItStreamed: a
// Responses stream of the cascade's first model (gpt-4o-mini), held back
// to be checked, streams about 300 tokens of output, then fails
// (response.failed) with a usage that counts none of them. The cascade
// rejects it (finish_reason) and the client gets gpt-4o's stream; the
// failed answer set aside is charged its input and at least the output
// its deltas streamed, as a response.failed passed on is and as a cut
// chat stream is. (Before, it was charged its usage's 1,000 input tokens
// alone: the team's ledger had 2,100 tokens, the 300 streamed unbilled.)
func TestGatewayResponsesCascadeFailedStreamIsBilledWhatItStreamed(t *testing.T) {
	up := newModelUpstream(t)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", routingPolicies(t, "cascade: {models: [gpt-4o-mini, gpt-4o]}"), ""))
	var failed strings.Builder
	failed.WriteString("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_m\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"gpt-4o-mini\",\"output\":[],\"usage\":null}}\n\n")
	for i := range 30 {
		failed.WriteString("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":" + strconv.Itoa(i+1) +
			",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"" + strings.Repeat(" disk", 10) + "\"}\n\n")
	}
	failed.WriteString("event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":31,\"response\":{\"id\":\"resp_m\",\"object\":\"response\",\"created_at\":1,\"status\":\"failed\",\"model\":\"gpt-4o-mini\"," +
		"\"error\":{\"code\":\"server_error\",\"message\":\"The model failed.\"},\"output\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":0,\"total_tokens\":1000}}}\n\n")
	up.mu.Lock()
	up.body["gpt-4o-mini"] = failed.String()
	up.mu.Unlock()

	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4.1","input":"Check the disks.","stream":true}`)
	got, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o") || !strings.Contains(string(got), "response.completed") {
		t.Fatalf("the client got %d %s, want gpt-4o's stream", r.StatusCode, got)
	}
	// gpt-4o: 1,000 input and 100 output tokens; gpt-4o-mini: 1,000 input
	// and the ~300 it streamed (an estimate: at least 250).
	s := e.spend(t)
	if s.SpentTokens < 2100+250 || s.ReservedUSD != "0.000000" {
		t.Fatalf("spend %+v: %d tokens, want gpt-4o's 1,100, gpt-4o-mini's 1,000 input and the ~300 output it streamed", s, s.SpentTokens)
	}
}
