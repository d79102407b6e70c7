package gateway_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
)

// TestGatewayConversationThatCannotFitIs400: a conversation the team's
// context budget cannot make fit is the client's error, as OpenAI's own
// answer to a prompt over the model's context: a 400
// invalid_request_error context_length_exceeded that says why, which
// clients do not retry — not a 502 gateway error that they retry, over
// and over, to the same end. Nothing reaches the upstream.
func TestGatewayConversationThatCannotFitIs400(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncontext: {max_input_tokens: 500, strategies: [drop]}\n",
	}
	e := start(t, pols, "")
	body, _ := json.Marshal(goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{
		{Role: "system", Content: "You are terse."}, {Role: "user", Content: strings.Repeat("Check this log line. ", 400)}}})
	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, string(body))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Error struct {
			Type, Code, Message string
		}
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != 400 || out.Error.Type != "invalid_request_error" || out.Error.Code != "context_length_exceeded" ||
		!strings.Contains(out.Error.Message, "ceiling 500") {
		t.Errorf("%d %s, want a 400 invalid_request_error context_length_exceeded naming the ceiling", resp.StatusCode, b)
	}
	if resp.Header.Get("X-Should-Retry") != "false" {
		t.Errorf("x-should-retry %q, want false", resp.Header.Get("X-Should-Retry"))
	}
	if n := e.upstream.Count(); n != 0 {
		t.Errorf("%d upstream calls, want none", n)
	}
}
