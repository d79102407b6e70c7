package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// nodeDir holds the Node test's package.json and package-lock.json;
// `npm ci` there installs the official openai package (.ci/run does).
var nodeDir = filepath.Join("testdata", "node")

// nodeClient returns the node binary, once the official openai package
// is installed in nodeDir; the test is skipped without them, and fails
// without them in CI.
func nodeClient(t *testing.T) string {
	t.Helper()
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
	return node
}

// runNode runs script (with args) in nodeDir with node against the
// gateway e (GATEWAY_URL, the teams' keys) and returns what it printed;
// the test fails with its stderr and the gateway's logs when it fails.
func runNode(t *testing.T, node string, e *env, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), node, append([]string{script}, args...)...)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "GATEWAY_URL="+e.url, "KEY_DEVOPS="+devopsKey, "KEY_PAYMENTS="+paymentsKey, "NODE_NO_WARNINGS=1")
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		var logs string
		if e.logs != nil {
			logs = e.logs.String()
		}
		t.Fatalf("node %s: %v\n%s\ngateway logs:\n%s", script, err, stderr.String(), logs)
	}
	return stdout
}

// TestGatewayWithOfficialNodeClient drives the gateway with the official
// OpenAI Node package (testdata/node/conversation.mjs): a streamed
// tool-calling conversation with usage, a 429 of the upstream retried by
// the client, and a budget refusal surfaced as the client's APIError.
func TestGatewayWithOfficialNodeClient(t *testing.T) {
	node := nodeClient(t)
	e := start(t, nil, "")
	e.upstream.On(openaitest.LastRole("user"), openaitest.LastContains("weather")).Reply(openaitest.ToolCalls(openaitest.Call("", "get_weather", `{"city":"Paris"}`)))
	e.upstream.On(openaitest.LastRole("tool")).Reply(openaitest.Text("It is sunny in Paris, 21°C."))
	limited := openaitest.RateLimited(0)
	limited.Header = http.Header{"Retry-After-Ms": {"5"}}
	retry := e.upstream.On(openaitest.LastContains("retry me")).Reply(limited, openaitest.Text("retried"))
	long := e.upstream.On(openaitest.LastContains("long long")).Reply(openaitest.Text("should not be called"))

	stdout := runNode(t, node, e, "conversation.mjs")
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

// TestGatewayResponsesWithOfficialNodeClient drives the Responses API
// through the gateway with the official OpenAI Node package
// (testdata/node/responses.mjs): a call and a streamed call come back as
// the upstream sent them (the client's output_text, the stream's deltas
// and final usage), each is charged at its usage (1,000 input tokens, 400
// cached, and 200 output of gpt-4o-mini, read by /v1/spend), a stream the
// upstream cuts is raised by the client (the gateway's stream_cut error
// event) and charged its reservation, and a call the budget cannot afford
// is the client's APIError, a 429
// budget_exceeded it does not retry, that never reaches the upstream.
func TestGatewayResponsesWithOfficialNodeClient(t *testing.T) {
	node := nodeClient(t)
	var calls atomic.Int64
	e := embeddingsGateway(t, responsesUpstream(t, &calls), "0.02")
	stdout := runNode(t, node, e, "responses.mjs")
	type usage struct {
		Input  int `json:"input_tokens"`
		Output int `json:"output_tokens"`
		Total  int `json:"total_tokens"`
	}
	var got struct {
		Text        string `json:"text"`
		Usage       *usage `json:"usage"`
		StreamText  string `json:"streamText"`
		StreamUsage *usage `json:"streamUsage"`
		Cut         *struct {
			Completed  bool   `json:"completed"`
			IsAPIError bool   `json:"isAPIError"`
			Code       string `json:"code"`
		} `json:"cut"`
		Refused *struct {
			IsAPIError bool   `json:"isAPIError"`
			Status     int    `json:"status"`
			Code       string `json:"code"`
			Type       string `json:"type"`
		} `json:"refused"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	want := usage{Input: 1000, Output: 200, Total: 1200}
	if got.Text != "The disks are fine." || got.Usage == nil || *got.Usage != want {
		t.Errorf("answer %q, usage %+v; want the upstream's", got.Text, got.Usage)
	}
	if got.StreamText != "The disks are fine." || got.StreamUsage == nil || *got.StreamUsage != want {
		t.Errorf("stream %q, final usage %+v; want the upstream's", got.StreamText, got.StreamUsage)
	}
	if c := got.Cut; c == nil || c.Completed || !c.IsAPIError || c.Code != "stream_cut" {
		t.Errorf("a cut stream as the Node client read it: %+v, want its APIError stream_cut", c)
	}
	if r := got.Refused; r == nil || !r.IsAPIError || r.Status != 429 || r.Code != "budget_exceeded" || r.Type != "insufficient_quota" {
		t.Errorf("the unaffordable call as the Node client saw it: %+v", r)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the upstream got %d calls, want 3 (the refused one never sent, nor retried)", n)
	}
	// The two complete calls at their usage, the cut one at its
	// reservation (its input and 500 output tokens).
	if s := e.spend(t); s.SpentTokens < 2400+500 || s.SpentTokens > 2400+560 {
		t.Errorf("spent %s USD, %d tokens; want 2,400 and the cut call's reservation", s.SpentUSD, s.SpentTokens)
	}
}

// TestGatewayReplaysResponsesToTheNodeClient: the official OpenAI Node
// package's stream helper reads a Responses answer the gateway replays
// from its cache (testdata/node/responses_cache.mjs) — one kept from a
// stream, one kept from a JSON answer with a reasoning item and a
// function call — and its accumulator, which checks each event against
// the answer it builds, accepts every event and ends with the kept
// answer; neither replay reaches the upstream.
func TestGatewayReplaysResponsesToTheNodeClient(t *testing.T) {
	node := nodeClient(t)
	var calls atomic.Int64
	up := streamingResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	stdout := runNode(t, node, e, "responses_cache.mjs")
	type final struct {
		ID         string  `json:"id"`
		Status     string  `json:"status"`
		OutputText string  `json:"outputText"`
		Output     [][]any `json:"output"`
		Usage      struct {
			Total int `json:"total_tokens"`
		} `json:"usage"`
	}
	type seen struct {
		Types   []string `json:"types"`
		Text    string   `json:"text"`
		Args    string   `json:"args"`
		Summary string   `json:"summary"` // the reasoning summary's deltas
		Final   final    `json:"final"`
	}
	var got struct {
		Text     seen `json:"text"`
		ToolJSON struct {
			ID     string   `json:"id"`
			Output []string `json:"output"`
		} `json:"toolJSON"`
		Tool seen `json:"tool"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	if g := got.Text; g.Text != "Answer 1." || g.Final.ID != "resp_1" || g.Final.Status != "completed" || g.Final.OutputText != "Answer 1." ||
		g.Final.Usage.Total != 1200 || len(g.Types) != 9 {
		t.Errorf("the stream replayed as the Node client read it: %+v", g)
	}
	if g := got.Tool; g.Args != `{"host":"web-2"}` || g.Final.ID != "resp_2" || len(g.Final.Output) != 2 ||
		fmt.Sprint(g.Final.Output[1]) != `[function_call fc_2 call_2 {"host":"web-2"} ]` || fmt.Sprint(g.Final.Output[0][:2]) != "[reasoning rs_2]" ||
		g.Final.Output[0][4] != "Look at /var first." || g.Summary != "Look at /var first." {
		t.Errorf("the tool call replayed as the Node client read it: %+v", g)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the upstream got %d calls, want 2 (the replays answered by the cache)", n)
	}
}

// TestGatewayResponsesFallbackWithOfficialNodeClient: the official OpenAI
// Node package, its own retries off, calls a model that fails (a 503)
// through the gateway (testdata/node/responses.mjs fallback): the
// gateway moves the call, and then a streamed call, on to the team's
// fallback model, whose answer and stream the client reads as any other
// (output_text, the deltas, the final response's model and usage); the
// team is charged that model's usage alone.
func TestGatewayResponsesFallbackWithOfficialNodeClient(t *testing.T) {
	node := nodeClient(t)
	up := newModelUpstream(t)
	up.setFail("gpt-4o", http.StatusServiceUnavailable)
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", fallbackPolicies(""), ""))
	stdout := runNode(t, node, e, "responses.mjs", "fallback")
	type usage struct {
		Input  int `json:"input_tokens"`
		Output int `json:"output_tokens"`
	}
	var got struct {
		Text        string `json:"text"`
		Model       string `json:"model"`
		Usage       usage  `json:"usage"`
		StreamText  string `json:"streamText"`
		StreamModel string `json:"streamModel"`
		StreamUsage usage  `json:"streamUsage"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	want := usage{Input: 1000, Output: 100}
	if got.Text != "from gpt-4o-mini" || got.Model != "gpt-4o-mini" || got.Usage != want ||
		got.StreamText != "from gpt-4o-mini" || got.StreamModel != "gpt-4o-mini" || got.StreamUsage != want {
		t.Fatalf("the Node client read %+v, want gpt-4o-mini's answer and stream", got)
	}
	if s := up.seen(0, "/responses"); strings.Join(s, ",") != "gpt-4o,gpt-4o,gpt-4o-mini,gpt-4o,gpt-4o,gpt-4o-mini" {
		t.Fatalf("the upstream got %v", s)
	}
	if s := e.spend(t); s.SpentUSD != "0.000420" || s.ReservedUSD != "0.000000" {
		t.Fatalf("spend %+v, want gpt-4o-mini's usage twice, $0.000420", s)
	}
}
