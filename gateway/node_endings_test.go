package gateway_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// nodeEnding is what testdata/node/endings.mjs prints of one stream as
// one client read it.
type nodeEnding struct {
	Text   string   `json:"text"`
	Types  []string `json:"types"`
	Finish string   `json:"finish"`
	Error  *struct {
		Name       string `json:"name"`
		Message    string `json:"message"`
		Code       string `json:"code"`
		IsAPIError bool   `json:"isAPIError"`
	} `json:"error"`
}

// runEndings runs testdata/node/endings.mjs for api against e and returns,
// for each stream, what the official client and the AI SDK read.
func runEndings(t *testing.T, e *env, api string) map[string]map[string]nodeEnding {
	t.Helper()
	node := nodeClient(t)
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "ai", "package.json")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the ai npm package is not installed: .ci/run runs `npm ci` in gateway/testdata/node")
		}
		t.Skip("the ai npm package is not installed: run `npm ci` in gateway/testdata/node")
	}
	stdout := runNode(t, node, e, "endings.mjs", api)
	var got map[string]map[string]nodeEnding
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	return got
}

// TestGatewayStreamEndingsWithNodeClients: the streams the gateway ends
// with its error event — a chat stream the upstream cuts after two
// chunks, a chat stream whose chunks carry nothing, a Responses stream
// cut before its final event — are raised as errors by the official
// OpenAI Node client (an APIError of the gateway's code) and the Vercel
// AI SDK (onError with the gateway's message, finish "error"), never read
// as a complete answer; and a Responses stream the upstream ends with
// response.failed is the official client's response.failed event (as
// OpenAI's own stream is) and an error of the AI SDK.
func TestGatewayStreamEndingsWithNodeClients(t *testing.T) {
	t.Run("chat", func(t *testing.T) {
		e := start(t, nil, "")
		e.upstream.On(openaitest.LastContains("Cut me")).Reply(openaitest.CutAfter(2))
		const nothing = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":null}]}`
		e.upstream.On(openaitest.LastContains("Say nothing")).Reply(openaitest.Reply{Raw: [][]byte{
			[]byte("data: " + nothing + "\n\n"), []byte("data: " + nothing + "\n\n"), []byte("data: [DONE]\n\n")}})
		got := runEndings(t, e, "chat")
		for stream, code := range map[string]string{"cut": "upstream_error", "nothing": "upstream_error"} {
			o, a := got[stream]["official"], got[stream]["aisdk"]
			if o.Error == nil || !o.Error.IsAPIError || o.Error.Code != code {
				t.Errorf("%s: the official client read %+v (error %+v), want its APIError %s", stream, o, o.Error, code)
			}
			// The AI SDK throws an error event before any output as the
			// stream's APICallError (its finish then unknown), and gives
			// one after output to onError, finish "error".
			if a.Error == nil || (a.Finish != "error" && a.Error.Name != "AI_APICallError") || !strings.HasPrefix(a.Error.Message, "tokenwise/middleware: ") {
				t.Errorf("%s: the AI SDK read %+v (error %+v), want the gateway's error", stream, a, a.Error)
			}
		}
		if c := got["cut"]; c["official"].Text == "" || c["aisdk"].Text == "" || c["aisdk"].Finish != "error" {
			t.Errorf("the cut stream's text before its cut was not read: %+v", c)
		}
		if n := got["nothing"]; n["official"].Text != "" || n["aisdk"].Text != "" {
			t.Errorf("the stream of nothing read as text: %+v", n)
		}
	})
	t.Run("responses", func(t *testing.T) {
		var calls atomic.Int64
		up := streamingResponses(t, &calls)
		t.Setenv(upstreamEnv, upstreamKey)
		e := serveFile(t, writeFiles(t, up.URL+"/v1", maps.Clone(defaultPolicies), ""))
		got := runEndings(t, e, "responses")
		o, a := got["cut"]["official"], got["cut"]["aisdk"]
		if o.Error == nil || !o.Error.IsAPIError || o.Error.Code != "stream_cut" || o.Text != "Answer 1." {
			t.Errorf("cut: the official client read %+v (error %+v), want the text and its APIError stream_cut", o, o.Error)
		}
		const cutMessage = "tokenwise/gateway: the upstream's responses stream ended before its final event"
		if a.Error == nil || a.Finish != "error" || a.Error.Message != cutMessage || a.Error.Code != "stream_cut" || a.Text != "Answer 2." {
			t.Errorf("cut: the AI SDK read %+v (error %+v), want the text, the gateway's error, finish error", a, a.Error)
		}
		o, a = got["failed"]["official"], got["failed"]["aisdk"]
		if o.Error != nil || len(o.Types) == 0 || o.Types[len(o.Types)-1] != "response.failed" {
			t.Errorf("failed: the official client read %+v (error %+v), want the stream ending with response.failed", o, o.Error)
		}
		if a.Error == nil || a.Finish != "error" || !strings.Contains(a.Error.Message, "The model failed to finish.") {
			t.Errorf("failed: the AI SDK read %+v (error %+v), want the upstream's error, finish error", a, a.Error)
		}
		if n := calls.Load(); n != 4 {
			t.Errorf("the upstream got %d calls, want 4", n)
		}
	})
}
