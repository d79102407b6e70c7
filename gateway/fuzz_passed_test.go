package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// passedUpstream answers the Responses API and embeddings validly, as
// OpenAI does, whatever the request asks: one input and one output token
// (an embedding: one input token), a stream when the body asks for one,
// and OpenAI's 400 for a body that is not a JSON object. It records the
// bodies it was sent.
type passedUpstream struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (u *passedUpstream) reset() {
	u.mu.Lock()
	u.bodies = nil
	u.mu.Unlock()
}

func (u *passedUpstream) sent() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies
}

func (u *passedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.bodies = append(u.bodies, b)
	u.mu.Unlock()
	var req struct {
		Stream bool `json:"stream"`
	}
	w.Header().Set("Content-Type", "application/json")
	if json.Unmarshal(b, &req) != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"We could not parse the JSON body of your request.","type":"invalid_request_error","param":null,"code":null}}`)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/embeddings") {
		_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}`)
		return
	}
	resp := func(status, usage string) string {
		return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini",` +
			`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
			`"usage":` + usage + `}`
	}
	const usage = `{"input_tokens":1,"output_tokens":1,"total_tokens":2}`
	if !req.Stream {
		_, _ = io.WriteString(w, resp("completed", usage))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":"+resp("in_progress", "null")+"}\n\n"+
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"ok\"}\n\n"+
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":"+resp("completed", usage)+"}\n\n")
}

// fuzzPassedPolicies: devops (devopsKey) has a team budget in dollars it
// never reaches and a cache (a body posted again may be a hit); payments (paymentsKey) a team budget of 20,000 tokens the
// fuzzing exhausts.
var fuzzPassedPolicies = map[string]string{
	"default.yaml": "version: 1\nname: default\n",
	"devops.yaml": `version: 1
name: devops
cache: {enabled: true, ttl: 1h}
budget:
  team: {period: monthly, max_usd: 100000}
timeouts: {call: 1h, first_token: 1h, idle: 1h}  # never pass here; every answer is read through their watch
`,
	"payments.yaml": `version: 1
name: payments
models:
  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}
budget:
  team: {period: monthly, max_tokens: 20000}
`,
}

// fuzzPassedSeeds are client bodies of the Responses API and embeddings:
// valid ones of every shape, and hostile ones.
func fuzzPassedSeeds() []string {
	return []string{
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50,"stream":true}`,
		`{"model":"gpt-4o-mini","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"max_output_tokens":16}`,
		`{"model":"gpt-4o-mini","input":[{"type":"function_call_output","call_id":"c1","output":"{\"ok\":true}"}],"previous_response_id":"resp_0"}`,
		`{"model":"gpt-4o","input":"hi","tools":[{"type":"web_search"}],"max_output_tokens":20}`,
		`{"model":"gpt-4o","input":"hi","tools":[{"Type":"function","type":"web_search","name":"f"}]}`,
		`{"model":"gpt-4o-mini","input":"hi","conversation":"conv_1"}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":5,"MAX_OUTPUT_TOKENS":100000}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":5,"max_output_tokens":100000}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":-1}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":1e400}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":2.5}`,
		`{"model":"gpt-4o-mini","input":"hi","max_output_tokens":"50"}`,
		`{"model":"gpt-4o-mini","input":"hi","stream":"true"}`,
		`{"model":"gpt-4o-mini","input":"hi","service_tier":"priority","max_output_tokens":10}`,
		`{"model":"","input":"hi"}`,
		`{"model":null,"input":null}`,
		`{"model":["gpt-4o"],"input":{"a":1}}`,
		`{"input":"hi"}`,
		`{"model":"text-embedding-3-small","input":"hi"}`,
		`{"model":"text-embedding-3-small","input":["a","b","c"],"dimensions":256}`,
		`{"model":"text-embedding-3-small","input":[[1,2,3],[4,5]]}`,
		`{"model":"text-embedding-3-small","input":[]}`,
		`{"model":"text-embedding-3-small","input":"` + strings.Repeat("word ", 3000) + `"}`,
		`{"model":"text-embedding-3-small","Input":"x","input":"y"}`,
		`{"model":"gpt-4o-mini","input":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		`{"model":"gpt-4o-mini","input":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}`,
		"{\"model\":\"gpt-4o-mini\",\"input\":\"bad \xff\xfe utf-8 \xc3\"}",
		`{"model":"gpt-4o-mini","input":"nul \u0000 and a lone surrogate \ud800"}`,
		`{"model":"gpt-4o-mini","inp`,
		`{"model":"gpt-4o-mini","input":"hi"} trailing`,
		`[{"model":"gpt-4o-mini"}]`,
		`null`,
		`not json`,
		``,
		"\xef\xbb\xbf{\"model\":\"gpt-4o-mini\",\"input\":\"hi\"}",
	}
}

// FuzzGatewayPassedRequest: whatever body a client posts to the Responses
// API or embeddings with a valid key, the gateway (in front of an
// upstream that answers validly) answers it within the timeout with 200,
// 400 (a body it cannot police), 413 (over limits.max_body) or 429 (the
// team's budget), an OpenAI-shaped error for every error, a 200 only to
// a JSON body, and a Responses stream ends with its final event; a cache
// hit never goes upstream; the team's spend is whole after every call and
// never above its limit.
func FuzzGatewayPassedRequest(f *testing.F) {
	for i, s := range fuzzPassedSeeds() {
		f.Add([]byte(s), uint8(i%8))
	}
	f.Setenv(upstreamEnv, upstreamKey)
	up := &passedUpstream{}
	hs := httptest.NewServer(up)
	f.Cleanup(hs.Close)
	g := startFuzzGateway(f, hs.URL+"/v1", fuzzPassedPolicies, "limits: {max_body: 64KiB}\n")
	f.Fuzz(func(t *testing.T, body []byte, flags uint8) {
		key, team := devopsKey, "devops"
		if flags&1 != 0 {
			key, team = paymentsKey, "payments"
		}
		path := "/v1/responses"
		if flags&4 != 0 {
			path = "/v1/embeddings"
		}
		up.reset()
		g.clearLogs()
		a := g.postTo(t, path, key, body, flags&2 != 0)
		g.checkNoPanic(t)
		switch a.status {
		case http.StatusOK:
			if !json.Valid(body) {
				t.Fatalf("%s: 200 for a body that is not JSON: %q", path, body)
			}
			if strings.HasPrefix(a.header.Get("Content-Type"), "text/event-stream") {
				if !strings.Contains(string(a.body), "response.completed") {
					t.Fatalf("%s: a stream from an upstream that answers validly ended without its final event:\n%q", path, a.body)
				}
			} else if !json.Valid(a.body) {
				t.Fatalf("%s: a 200 answer that is not JSON: %q", path, a.body)
			}
			if a.header.Get("X-Tokenwise-Cache") == "hit" && len(up.sent()) > 0 {
				t.Fatalf("%s: a cache hit that went upstream", path)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			checkErrorAnswer(t, a)
			if a.status == http.StatusTooManyRequests && len(up.sent()) > 0 {
				t.Fatalf("%s: refused with 429 after the call went upstream: %s", path, a.body)
			}
		default:
			t.Fatalf("%s: status %d for a call the upstream answers validly: %s\nbody sent: %q", path, a.status, a.body, body)
		}
		if !json.Valid(body) && len(up.sent()) > 0 {
			t.Fatalf("%s: a body that is not JSON, which no budget can police, went upstream: %q", path, body)
		}
		sp := g.spend(t, key)
		if sp.limit > 0 && sp.spent > sp.limit || sp.limitTokens > 0 && sp.tokens > sp.limitTokens {
			t.Fatalf("team %s spent %d micro-USD, %d tokens: over its limit (%d micro-USD, %d tokens)", team, sp.spent, sp.tokens, sp.limit, sp.limitTokens)
		}
	})
}
