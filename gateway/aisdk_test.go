package gateway_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// aiSDKCall is what testdata/node/aisdk.mjs prints of one call of the
// Vercel AI SDK: a generateText's result or error, or a streamText's
// stream parts and result or error.
type aiSDKCall struct {
	Parts  []string `json:"parts"`
	Text   string   `json:"text"`
	Finish string   `json:"finish"`
	Usage  *struct {
		Input  int `json:"input"`
		Output int `json:"output"`
		Total  int `json:"total"`
	} `json:"usage"`
	ToolCalls []struct {
		ID    string         `json:"id"`
		Name  string         `json:"name"`
		Input map[string]any `json:"input"`
	} `json:"toolCalls"`
	Error *struct {
		Name    string `json:"name"`
		Status  int    `json:"status"`
		Body    string `json:"body"`
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
}

// errorCode is the code of an OpenAI-shaped error body.
func (c aiSDKCall) errorCode() string {
	if c.Error == nil {
		return ""
	}
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(c.Error.Body), &b)
	return b.Error.Code
}

// runAISDK runs testdata/node/aisdk.mjs for api ("chat" or "responses")
// against the gateway e and returns what the SDK read.
func runAISDK(t *testing.T, e *env, api string) map[string][]aiSDKCall {
	t.Helper()
	node := nodeClient(t)
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "ai", "package.json")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the ai npm package is not installed: .ci/run runs `npm ci` in gateway/testdata/node")
		}
		t.Skip("the ai npm package is not installed: run `npm ci` in gateway/testdata/node")
	}
	stdout := runNode(t, node, e, "aisdk.mjs", api)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdout, &raw); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	got := map[string][]aiSDKCall{}
	for k, v := range raw {
		var calls []aiSDKCall
		if json.Unmarshal(v, &calls) != nil {
			var one aiSDKCall
			if err := json.Unmarshal(v, &one); err != nil {
				t.Fatalf("%s: %s: %v", k, v, err)
			}
			calls = []aiSDKCall{one}
		}
		got[k] = calls
	}
	return got
}

// checkAISDK checks what the AI SDK read of the calls every API shares:
// each request sent twice reads the same (the second from the gateway's
// cache: a JSON answer, and a stream replayed that the SDK's schemas
// accept), a tool call streamed, streamed again and not streamed reads
// the same call, a call the budget cannot afford is the SDK's
// APICallError, a 429 budget_exceeded, in a stream too, and an unknown
// key its 401.
func checkAISDK(t *testing.T, got map[string][]aiSDKCall, text, streamText, tool string, input map[string]any) {
	t.Helper()
	for name, want := range map[string]string{"generate": text, "stream": streamText} {
		calls := got[name]
		if len(calls) != 2 {
			t.Fatalf("%s: %+v", name, calls)
		}
		for i, c := range calls {
			if c.Error != nil || c.Text != want || c.Finish != "stop" || c.Usage == nil || c.Usage.Total == 0 || c.Usage.Total != c.Usage.Input+c.Usage.Output {
				t.Errorf("%s %d: %+v (error %+v, usage %+v), want %q, stop, with usage", name, i, c, c.Error, c.Usage, want)
			}
		}
		if !reflect.DeepEqual(calls[0], calls[1]) {
			t.Errorf("%s: the cached answer read %+v, the first %+v", name, calls[1], calls[0])
		}
	}
	if p := got["stream"][1].Parts; !reflect.DeepEqual(p, []string{"start", "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish"}) {
		t.Errorf("the replayed stream's parts: %v", p)
	}
	calls := got["tool"]
	if len(calls) != 3 {
		t.Fatalf("tool: %+v", calls)
	}
	for i, c := range calls {
		if c.Error != nil || c.Finish != "tool-calls" || len(c.ToolCalls) != 1 || c.ToolCalls[0].Name != tool || c.ToolCalls[0].ID == "" ||
			!reflect.DeepEqual(c.ToolCalls[0].Input, input) || c.Usage == nil || c.Usage.Total == 0 {
			t.Errorf("tool call %d: %+v (error %+v)", i, c, c.Error)
		} else if c.ToolCalls[0].ID != calls[0].ToolCalls[0].ID {
			t.Errorf("tool call %d has id %q, the first %q", i, c.ToolCalls[0].ID, calls[0].ToolCalls[0].ID)
		}
	}
	if !strings.Contains(strings.Join(calls[1].Parts, " "), "tool-input-start tool-input-delta tool-input-end tool-call") {
		t.Errorf("the replayed tool call's parts: %v", calls[1].Parts)
	}
	budget := got["budget"]
	if len(budget) != 2 {
		t.Fatalf("budget: %+v", budget)
	}
	for i, c := range budget {
		if c.Error == nil || c.Error.Name != "AI_APICallError" || c.Error.Status != 429 || c.errorCode() != "budget_exceeded" {
			t.Errorf("budget refusal %d as the SDK read it: %+v (error %+v)", i, c, c.Error)
		}
	}
	if k := got["unknownKey"]; len(k) != 1 || k[0].Error == nil || k[0].Error.Status != 401 || k[0].errorCode() != "invalid_api_key" {
		t.Errorf("an unknown key as the SDK read it: %+v", k)
	}
}

// TestGatewayWithVercelAISDK drives the gateway's chat completions with
// the Vercel AI SDK (`ai` and `@ai-sdk/openai`, testdata/node/aisdk.mjs),
// whose parsers check every answer and chunk against their own schemas:
// answers, streams and a streamed tool call, each sent again and answered
// by the cache (a JSON answer, a stream replayed), a budget refusal, an
// unknown key, and two streams the upstream cuts (a reset, an end
// without [DONE]) that the SDK reads as cut — an error, finish "error" —
// never as a complete answer.
func TestGatewayWithVercelAISDK(t *testing.T) {
	pols := maps.Clone(defaultPolicies)
	pols["devops.yaml"] += "cache: {enabled: true, ttl: 1h}\n"
	e := start(t, pols, "")
	e.upstream.On(openaitest.LastContains("weather")).Reply(openaitest.ToolCalls(openaitest.Call("", "get_weather", `{"city":"Paris"}`)))
	e.upstream.On(openaitest.LastContains("long long")).Reply(openaitest.Text("should not be called"))
	e.upstream.On(openaitest.LastContains("Cut me")).Reply(openaitest.CutAfter(2))
	e.upstream.On(openaitest.LastContains("End me")).Reply(openaitest.EOFAfter(2))
	e.upstream.On(openaitest.LastContains("hello")).Reply(openaitest.Text("Hello from upstream."))

	got := runAISDK(t, e, "chat")
	checkAISDK(t, got, "Hello from upstream.", "Hello from upstream.", "get_weather", map[string]any{"city": "Paris"})
	cut := got["cut"]
	if len(cut) != 2 {
		t.Fatalf("cut: %+v", cut)
	}
	for i, c := range cut {
		if c.Error == nil || c.Finish != "error" || !strings.Contains(c.Error.Message, "stream cut") || c.Text == "" || c.Usage != nil {
			t.Errorf("cut stream %d as the SDK read it: %+v (error %+v)", i, c, c.Error)
		}
	}
	// generate, stream, the tool call and the two cut streams; the rest
	// from the cache or refused.
	if n := len(e.upstream.Requests()); n != 5 {
		t.Errorf("the upstream got %d requests, want 5", n)
	}
}

// TestGatewayResponsesWithVercelAISDK is TestGatewayWithVercelAISDK on
// the Responses API (the AI SDK's default OpenAI model since its version
// 5): answers, streams and a streamed function call after a reasoning
// item, each sent again and answered by the cache (a stream replayed as
// the Responses API streams), a budget refusal and an unknown key.
func TestGatewayResponsesWithVercelAISDK(t *testing.T) {
	var calls atomic.Int64
	up := streamingResponses(t, &calls)
	pols := maps.Clone(defaultPolicies)
	pols["devops.yaml"] += "cache: {enabled: true, ttl: 1h}\n"
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

	got := runAISDK(t, e, "responses")
	checkAISDK(t, got, "Answer 1.", "Answer 2.", "check_disks", map[string]any{"host": "web-3"})
	for i, c := range append(got["generate"], got["stream"]...) {
		if c.Usage == nil || c.Usage.Input != 1000 || c.Usage.Output != 200 {
			t.Errorf("call %d: usage %+v, want the upstream's 1,000 + 200", i, c.Usage)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the upstream got %d calls, want 3", n)
	}
}
