package gateway_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// nodeDir holds the Node test's package.json and package-lock.json;
// `npm ci` there installs the official openai package (.ci/run does).
var nodeDir = filepath.Join("testdata", "node")

// TestGatewayWithOfficialNodeClient drives the gateway with the official
// OpenAI Node package (testdata/node/conversation.mjs): a streamed
// tool-calling conversation with usage, a 429 of the upstream retried by
// the client, and a budget refusal surfaced as the client's APIError.
func TestGatewayWithOfficialNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed; CI must run this test (install Node.js 20+ and run npm ci in gateway/testdata/node)")
		}
		t.Skip("node is not installed: install Node.js 20+ and run `npm ci` in gateway/testdata/node to run this test")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "openai", "package.json")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the openai npm package is not installed: .ci/run runs `npm ci` in gateway/testdata/node")
		}
		t.Skip("the openai npm package is not installed: run `npm ci` in gateway/testdata/node")
	}
	e := start(t, nil, "")
	e.upstream.On(openaitest.LastRole("user"), openaitest.LastContains("weather")).Reply(openaitest.ToolCalls(openaitest.Call("", "get_weather", `{"city":"Paris"}`)))
	e.upstream.On(openaitest.LastRole("tool")).Reply(openaitest.Text("It is sunny in Paris, 21°C."))
	limited := openaitest.RateLimited(0)
	limited.Header = http.Header{"Retry-After-Ms": {"5"}}
	retry := e.upstream.On(openaitest.LastContains("retry me")).Reply(limited, openaitest.Text("retried"))
	long := e.upstream.On(openaitest.LastContains("long long")).Reply(openaitest.Text("should not be called"))

	cmd := exec.CommandContext(t.Context(), node, "conversation.mjs")
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "GATEWAY_URL="+e.url, "KEY_DEVOPS="+devopsKey, "KEY_PAYMENTS="+paymentsKey, "NODE_NO_WARNINGS=1")
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s\ngateway logs:\n%s", err, stderr.String(), e.logs.String())
	}
	var got struct {
		ToolCalls []struct{ ID, Name, Arguments string } `json:"toolCalls"`
		Usage1    *struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
			Total      int `json:"total_tokens"`
		} `json:"usage1"`
		Answer string `json:"answer"`
		Usage2 *struct {
			Total int `json:"total_tokens"`
		} `json:"usage2"`
		Report struct {
			Status int               `json:"status"`
			Body   gateway.RunReport `json:"body"`
		} `json:"report"`
		Retried string `json:"retried"`
		Budget  struct {
			IsAPIError bool   `json:"isAPIError"`
			Status     int    `json:"status"`
			Code       string `json:"code"`
			Type       string `json:"type"`
			Message    string `json:"message"`
		} `json:"budget"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	if len(got.ToolCalls) != 1 || got.ToolCalls[0].Name != "get_weather" || got.ToolCalls[0].Arguments != `{"city":"Paris"}` || got.ToolCalls[0].ID == "" {
		t.Errorf("streamed tool calls: %+v", got.ToolCalls)
	}
	if got.Usage1 == nil || got.Usage1.Total == 0 || got.Usage1.Total != got.Usage1.Prompt+got.Usage1.Completion {
		t.Errorf("usage of the streamed tool turn: %+v", got.Usage1)
	}
	if got.Answer != "It is sunny in Paris, 21°C." || got.Usage2 == nil || got.Usage2.Total == 0 {
		t.Errorf("final answer %q, usage %+v", got.Answer, got.Usage2)
	}
	if rep := got.Report; rep.Status != 200 || rep.Body.Calls != 2 || rep.Body.ID != "node-agent-1" || got.Usage1 == nil || got.Usage2 == nil ||
		rep.Body.InputTokens+rep.Body.OutputTokens != int64(got.Usage1.Total+got.Usage2.Total) || rep.Body.CostPico <= 0 {
		t.Errorf("the run's report as the Node client read it: %+v, want its 2 calls and their %v + %v tokens", rep, got.Usage1, got.Usage2)
	}
	if got.Retried != "retried" || retry.Hits() != 2 {
		t.Errorf("429: answer %q after %d upstream calls, want the client's retry to succeed on the 2nd", got.Retried, retry.Hits())
	}
	b := got.Budget
	if !b.IsAPIError || b.Status != 429 || b.Code != "budget_exceeded" || b.Type != "insufficient_quota" || !strings.Contains(b.Message, "budget exceeded") {
		t.Errorf("budget refusal as seen by the Node client: %+v", b)
	}
	if long.Hits() != 0 {
		t.Errorf("the refused call reached the upstream")
	}
	if n := strings.Count(e.logs.String(), `"code":"budget_exceeded"`); n != 1 {
		t.Errorf("the client sent the refused call %d times, want 1 (x-should-retry: false)", n)
	}
	// The tool turn's ids are the upstream's: the stream went through as is.
	if reqs := e.upstream.Requests(); len(reqs) < 2 || !strings.Contains(string(reqs[1].Body), got.ToolCalls[0].ID) {
		t.Errorf("the tool result did not carry the streamed call id")
	}
}
