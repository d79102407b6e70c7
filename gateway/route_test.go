package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayFallbackGoesToTheModelsUpstream: with two upstreams, a call
// the fallback chain moves from a model of the first upstream to a model
// of the second is sent to the second, with the second's key: the first
// never gets a model it does not serve, and neither upstream ever sees the
// other's key. A call that asks for the second's model directly goes
// there too.
func TestGatewayFallbackGoesToTheModelsUpstream(t *testing.T) {
	const keyB = "sk-upstream-b-99887766554433221100ffeeddcc"
	t.Setenv(upstreamEnv, upstreamKey)
	t.Setenv("TOKENWISE_GATEWAY_TEST_UPSTREAM_B", keyB)
	a, b := openaitest.NewServer(t), openaitest.NewServer(t)
	a.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Status: 500})
	b.On(openaitest.Model("local-llama")).Reply(openaitest.Reply{Content: "from b"})
	pol := `version: 1
name: devops
models:
  local-llama: {provider: openai, input_per_1m: 0.1, output_per_1m: 0.1}
fallback:
  models: [gpt-4o, local-llama]
  retry: {max_attempts: 1}
`
	cfgPath := twoUpstreams(t, a.URL, b.URL, "local-llama", pol)
	e := serveFile(t, cfgPath)

	for i, model := range []string{"gpt-4o", "local-llama"} {
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
		var out struct {
			Model   string `json:"model"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 || out.Choices[0].Message.Content != "from b" {
			t.Fatalf("call %d (%s): %d %+v %v, want b's answer", i, model, resp.StatusCode, out, err)
		}
	}
	for _, r := range a.Requests() {
		var req struct{ Model string }
		_ = json.Unmarshal(r.Body, &req)
		if req.Model != "gpt-4o" || r.Header.Get("Authorization") != "Bearer "+upstreamKey {
			t.Fatalf("upstream a got model %q with Authorization %q", req.Model, r.Header.Get("Authorization"))
		}
	}
	if a.Count() != 1 || b.Count() != 2 {
		t.Fatalf("a got %d calls, b %d; want 1 (gpt-4o, failed) and 2 (the fallback, the direct call)", a.Count(), b.Count())
	}
	for _, r := range b.Requests() {
		if r.Header.Get("Authorization") != "Bearer "+keyB || strings.Contains(fmt.Sprint(r.Header), upstreamKey) {
			t.Fatalf("upstream b got headers %v, want its own key only", r.Header)
		}
	}
}
