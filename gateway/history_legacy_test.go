package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayCountsLegacyFunctionCallsAndRefusalsInHistory: an assistant
// message of the history that holds a legacy function_call (its arguments)
// or a refusal is input the model reads: a message of about 5,000 tokens
// there is over a 1,000-token input cap and refused, unsent.
func TestGatewayCountsLegacyFunctionCallsAndRefusalsInHistory(t *testing.T) {
	pols := map[string]string{
		"default.yaml":  "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  request: {max_input_tokens: 1000}\n",
		"payments.yaml": "version: 1\nname: payments\n",
	}
	e := start(t, pols, "")
	e.upstream.Default(openaitest.Text("ok"))
	long := strings.Repeat("word ", 5000)
	for name, msg := range map[string]string{
		"function_call": `{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"` + long + `"}},{"role":"function","name":"f","content":"x"}`,
		"refusal":       `{"role":"assistant","content":null,"refusal":"` + long + `"}`,
	} {
		before := e.upstream.Count()
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"},`+msg+`,{"role":"user","content":"go on"}]}`)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "max_input_tokens") {
			t.Errorf("%s of about 5,000 tokens under a 1,000-token input cap: %d %.200s, want the cap's refusal", name, resp.StatusCode, b)
		}
		if n := e.upstream.Count() - before; n != 0 {
			t.Errorf("%s: the upstream got %d calls", name, n)
		}
	}
}
