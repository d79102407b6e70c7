package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayCountsToolsOtherThanFunctionsAsInput: a tool that is no
// function tool (OpenAI's custom tools, {"type":"custom","custom":{name,
// description, format}}) is a definition the model reads and the provider
// bills as input: it counts in the estimate the input cap checks. A short
// question with a custom tool of about 5,000 tokens of description is over
// a 1,000-token cap and refused, unsent; the question with a small one
// passes. Before, every tool but a function tool was left out of the
// count: the call passed the cap (and a budget reserved too little).
func TestGatewayCountsToolsOtherThanFunctionsAsInput(t *testing.T) {
	pols := map[string]string{
		"default.yaml":  "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  request: {max_input_tokens: 1000}\n",
		"payments.yaml": "version: 1\nname: payments\n",
	}
	e := start(t, pols, "")
	e.upstream.Default(openaitest.Text("ok"))
	ask := func(description string) *http.Response {
		return e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Check the disk."}],`+
			`"tools":[{"type":"custom","custom":{"name":"shell","description":"`+description+`","format":{"type":"text"}}}]}`)
	}
	if resp := ask("Runs a shell command."); resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("a small custom tool: %d %s", resp.StatusCode, b)
	}
	resp := ask(strings.Repeat("Runs a shell command on the host and reports its output. ", 500))
	b, _ := io.ReadAll(resp.Body)
	var we struct {
		Error struct{ Code, Message string }
	}
	if resp.StatusCode != http.StatusTooManyRequests || json.Unmarshal(b, &we) != nil || we.Error.Code != "budget_exceeded" ||
		!strings.Contains(we.Error.Message, "max_input_tokens") {
		t.Fatalf("a custom tool of about 5,000 tokens under a 1,000-token input cap: %d %s, want the cap's refusal", resp.StatusCode, b)
	}
	if n := e.upstream.Count(); n != 1 {
		t.Fatalf("the upstream got %d calls, want 1 (the refused call unsent)", n)
	}
}
