package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayRefusesNestedMembersInAnotherCase: a member of a content
// part, a tool, its function or a tool call named in another case
// ("Text" beside "text", "Description", "Arguments") is refused with an
// OpenAI-shaped 400, unsent, as such a member of the request or of a
// message is: servers that match names without regard to case (Go's
// encoding/json, which relays and local servers decode with, keeps the
// last of the two) read it as the member itself. Before, it was skipped:
// a part {"type":"text","text":"a","Text":"<5,000 tokens>"} was counted
// as "a", and passed a 1,000-token input cap.
func TestGatewayRefusesNestedMembersInAnotherCase(t *testing.T) {
	pols := map[string]string{
		"default.yaml":  "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  request: {max_input_tokens: 1000}\n",
		"payments.yaml": "version: 1\nname: payments\n",
	}
	e := start(t, pols, "")
	e.upstream.Default(openaitest.Text("ok"))
	long := strings.Repeat("word ", 5000)
	user := `{"role":"user","content":"hi"}`
	for name, body := range map[string]string{
		"part text":      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"a","Text":"` + long + `"}]}]}`,
		"part type":      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"TYPE":"text","text":"a"}]}]}`,
		"image url":      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png","Detail":"high"}}]}]}`,
		"function desc":  `{"model":"gpt-4o-mini","messages":[` + user + `],"tools":[{"type":"function","function":{"name":"x","Description":"` + long + `"}}]}`,
		"tool function":  `{"model":"gpt-4o-mini","messages":[` + user + `],"tools":[{"type":"function","Function":{"name":"x","description":"` + long + `"}}]}`,
		"tool type":      `{"model":"gpt-4o-mini","messages":[` + user + `],"tools":[{"Type":"function","function":{"name":"x"}}]}`,
		"tool call args": `{"model":"gpt-4o-mini","messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","Arguments":"` + long + `"}}]},{"role":"tool","tool_call_id":"a","content":"x"}]}`,
		"tool call id":   `{"model":"gpt-4o-mini","messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"a","ID":"b","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"x"}]}`,
		"long-s strict":  `{"model":"gpt-4o-mini","messages":[` + user + `],"tools":[{"type":"function","function":{"name":"x","strict":false,"\u017ftrict":true}}]}`,
	} {
		before := e.upstream.Count()
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
		b, _ := io.ReadAll(resp.Body)
		var we struct {
			Error struct{ Type, Message string }
		}
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(b, &we) != nil || we.Error.Type != "invalid_request_error" ||
			!strings.Contains(we.Error.Message, "in another case") {
			t.Errorf("%s: %d %.300s, want an OpenAI-shaped 400 naming the member in another case", name, resp.StatusCode, b)
		}
		if n := e.upstream.Count() - before; n != 0 {
			t.Errorf("%s: the upstream got %d calls", name, n)
		}
	}
	// Members as they are named, and unknown ones, pass as before.
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}],`+
		`"tools":[{"type":"function","function":{"name":"x","description":"d","parameters":{"type":"object"},"strict":false,"x_extra":1}}]}`); resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("a request without case variants: %d %s", resp.StatusCode, b)
	}
}
