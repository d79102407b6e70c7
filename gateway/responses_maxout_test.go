package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGatewayResponsesMovedCallFitsTheModelsMaxOutput: a Responses call
// the gateway moves to another model (a fallback, a routing rule) keeps
// the client's max_output_tokens where the model can give it, and gets
// the model's own maximum where it cannot: gpt-4.1 writes 32,768 tokens,
// gpt-4o-mini 16,384, and OpenAI refuses a max_output_tokens above the
// model's with a 400, which ends the chain. The body went with the
// client's 30,000 (the gateway reserved the model's maximum, but sent
// the client's).
func TestGatewayResponsesMovedCallFitsTheModelsMaxOutput(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"fallback", ""},
		{"routing rule", "routing:\n  rules:\n    - {name: cheap, when: {keywords: [disks]}, model: gpt-4o-mini}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newModelUpstream(t)
			up.setFail("gpt-4.1", http.StatusServiceUnavailable)
			t.Setenv(upstreamEnv, upstreamKey)
			e := serveFile(t, writeFiles(t, up.URL+"/v1", fallbackPolicies(tc.extra), ""))
			r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4.1","input":"Check the disks.","max_output_tokens":30000}`)
			got, _ := io.ReadAll(r.Body)
			if r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o-mini") {
				t.Fatalf("%d %s", r.StatusCode, got)
			}
			up.mu.Lock()
			last := up.reqs[len(up.reqs)-1]
			first := up.reqs[0]
			up.mu.Unlock()
			if last.model != "gpt-4o-mini" || last.body["max_output_tokens"] != 16384.0 {
				t.Errorf("sent %s with max_output_tokens %v, want gpt-4o-mini with 16384", last.model, last.body["max_output_tokens"])
			}
			if first.model == "gpt-4.1" && first.body["max_output_tokens"] != 30000.0 {
				t.Errorf("gpt-4.1 got max_output_tokens %v, want the client's 30000", first.body["max_output_tokens"])
			}
		})
	}
}
