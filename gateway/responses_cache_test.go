package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// numberedResponses is an upstream of the Responses API whose n-th answer
// says n (id resp_n, text "Answer n."), completed with 1,200 tokens of
// usage, or with the status the request's metadata names.
func numberedResponses(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		var req struct {
			Metadata map[string]string `json:"metadata"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		status := "completed"
		if s := req.Metadata["status"]; s != "" {
			status = s
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"resp_%d","object":"response","created_at":1,"status":%q,"model":"gpt-4o-mini-2024-07-18",`+
			`"output":[{"type":"message","id":"msg_%d","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Answer %d.","annotations":[]}]}],`+
			`"usage":{"input_tokens":1000,"output_tokens":200,"total_tokens":1200}}`, n, status, n, n)
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGatewayCachesTheResponsesAPI: a team whose policy caches has its
// Responses calls cached as its chat calls are. Through the official
// openai-go client, the same request again is answered from the cache —
// the first answer's bytes, marked X-Tokenwise-Cache: hit — without an
// upstream call or a charge to the team's budget; another request, or the
// same one to another team, is a miss. Nothing that would make a hit wrong
// is kept or served: a stream, a background response, a conversation, a
// stored prompt, a hosted tool (whose results and effects are the
// provider's each time), Cache-Control: no-store, an answer that is not
// completed; with deterministic_only, a request without temperature 0.
func TestGatewayCachesTheResponsesAPI(t *testing.T) {
	var calls atomic.Int64
	up := numberedResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": `version: 1
name: devops
cache: {enabled: true, ttl: 1h}
budget:
  team: {period: monthly, max_usd: 1}
`,
		"payments.yaml": `version: 1
name: payments
cache: {enabled: true, ttl: 1h, deterministic_only: true}
`,
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	params := responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks of web-1.")}}
	var first *http.Response
	r, err := oc.Responses.New(t.Context(), params, option.WithResponseInto(&first))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "resp_1" || r.OutputText() != "Answer 1." || first.Header.Get("X-Tokenwise-Cache") != "" {
		t.Fatalf("first call: %s %q (cache header %q)", r.ID, r.OutputText(), first.Header.Get("X-Tokenwise-Cache"))
	}
	spent := e.spend(t)
	if spent.SpentTokens != 1200 {
		t.Fatalf("the first call spent %d tokens, want 1200", spent.SpentTokens)
	}
	var again *http.Response
	r, err = oc.Responses.New(t.Context(), params, option.WithResponseInto(&again))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "resp_1" || r.OutputText() != "Answer 1." || again.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 1 {
		t.Fatalf("the same request: %s %q (cache header %q), %d upstream calls; want the first answer from the cache, 1 call",
			r.ID, r.OutputText(), again.Header.Get("X-Tokenwise-Cache"), calls.Load())
	}
	if s := e.spend(t); s.SpentTokens != spent.SpentTokens || s.SpentUSD != spent.SpentUSD || s.ReservedUSD != spent.ReservedUSD {
		t.Fatalf("a hit spent: %+v, before %+v", s, spent)
	}
	// Byte for byte the first answer.
	body := `{"model":"gpt-4o-mini","input":"Check the disks of web-2."}`
	a := e.do(t, "POST", "/v1/responses", devopsKey, body)
	ab, _ := io.ReadAll(a.Body)
	b := e.do(t, "POST", "/v1/responses", devopsKey, body)
	bb, _ := io.ReadAll(b.Body)
	if a.StatusCode != 200 || string(ab) != string(bb) || b.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 2 {
		t.Fatalf("raw bodies: %d %s then %s (%q), %d calls", a.StatusCode, ab, bb, b.Header.Get("X-Tokenwise-Cache"), calls.Load())
	}

	// In a run's report, a hit is a call that spent nothing and saved
	// what the answer cost (1,000 input and 200 output tokens of
	// gpt-4o-mini: $0.00027).
	for range 2 {
		resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"Runbook?"}`, "X-Run-Id", "run-1")
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	var rep struct {
		Calls     int    `json:"calls"`
		CacheHits int    `json:"cache_hits"`
		CostUSD   string `json:"cost_usd"`
		SavedUSD  string `json:"saved_usd"`
	}
	if err := json.NewDecoder(e.do(t, "GET", "/v1/runs/run-1", devopsKey, "").Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Calls != 2 || rep.CacheHits != 1 || rep.CostUSD != "0.00027" || rep.SavedUSD != "0.00027" {
		t.Fatalf("run report %+v: want 2 calls, 1 hit, cost and saved $0.00027", rep)
	}

	// Each of these reaches the upstream twice: nothing kept or served.
	for _, tc := range []struct {
		name, body string
		hdr        []string
	}{
		{"stream", `{"model":"gpt-4o-mini","input":"hi","stream":true}`, nil},
		{"background", `{"model":"gpt-4o-mini","input":"hi","background":true}`, nil},
		{"conversation", `{"model":"gpt-4o-mini","input":"hi","conversation":"conv_1"}`, nil},
		{"stored prompt", `{"model":"gpt-4o-mini","prompt":{"id":"pmpt_1"}}`, nil},
		{"web search", `{"model":"gpt-4o-mini","input":"news?","tools":[{"type":"web_search"}]}`, nil},
		{"mcp", `{"model":"gpt-4o-mini","input":"mail bob","tools":[{"type":"function","name":"f"},{"type":"mcp","server_label":"mail","server_url":"https://mail.example"}]}`, nil},
		{"no-store", `{"model":"gpt-4o-mini","input":"hi"}`, []string{"Cache-Control", "no-store"}},
		{"incomplete", `{"model":"gpt-4o-mini","input":"hi","metadata":{"status":"incomplete"}}`, nil},
		{"failed", `{"model":"gpt-4o-mini","input":"hi","metadata":{"status":"failed"}}`, nil},
	} {
		before := calls.Load()
		for i := range 2 {
			resp := e.do(t, "POST", "/v1/responses", devopsKey, tc.body, tc.hdr...)
			out, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("X-Tokenwise-Cache") != "" {
				t.Fatalf("%s, call %d: %d %s (cache header %q)", tc.name, i, resp.StatusCode, out, resp.Header.Get("X-Tokenwise-Cache"))
			}
		}
		if got := calls.Load() - before; got != 2 {
			t.Fatalf("%s: %d upstream calls for two, want 2", tc.name, got)
		}
	}

	// Each team has its own answers: devops's cached request is a miss
	// for payments, then a hit of its own.
	det := `{"model":"gpt-4o-mini","input":"Check the disks of web-3.","temperature":0}`
	var cacheHeaders []string
	before := calls.Load()
	for _, key := range []string{devopsKey, devopsKey, paymentsKey, paymentsKey} {
		resp := e.do(t, "POST", "/v1/responses", key, det)
		_, _ = io.Copy(io.Discard, resp.Body)
		cacheHeaders = append(cacheHeaders, resp.Header.Get("X-Tokenwise-Cache"))
	}
	if got := strings.Join(cacheHeaders, ","); got != ",hit,,hit" || calls.Load()-before != 2 {
		t.Fatalf("devops, devops, payments, payments: cache headers %q, %d upstream calls; want \",hit,,hit\", 2", got, calls.Load()-before)
	}
	// deterministic_only (payments): a request without temperature 0 is
	// never kept.
	before = calls.Load()
	for range 2 {
		resp := e.do(t, "POST", "/v1/responses", paymentsKey, `{"model":"gpt-4o-mini","input":"hi there"}`)
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	if got := calls.Load() - before; got != 2 {
		t.Fatalf("deterministic_only, a request without temperature 0: %d upstream calls for two, want 2", got)
	}
}

// TestGatewayReplicasShareTheResponsesCache: with Redis, the Responses
// cache is shared by the gateway's replicas, as the chat cache is: an
// answer one replica kept answers the same request sent to another.
func TestGatewayReplicasShareTheResponsesCache(t *testing.T) {
	_, prefix := testRedis(t)
	var calls atomic.Int64
	up := numberedResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h, store: redis}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	cfg := writeFiles(t, up.URL+"/v1", pols, fmt.Sprintf("redis: {addr: %q, prefix: %s}\n", redisAddr(), prefix))
	a, b := serveFile(t, cfg), serveFile(t, cfg)
	body := `{"model":"gpt-4o-mini","input":"Check the disks of web-1."}`
	ra := a.do(t, "POST", "/v1/responses", devopsKey, body)
	outA, _ := io.ReadAll(ra.Body)
	rb := b.do(t, "POST", "/v1/responses", devopsKey, body)
	outB, _ := io.ReadAll(rb.Body)
	if ra.StatusCode != 200 || string(outA) != string(outB) || rb.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 1 {
		t.Fatalf("replica a: %d %s; replica b: %s (cache header %q); %d upstream calls, want b's answer a's from the cache, 1 call",
			ra.StatusCode, outA, outB, rb.Header.Get("X-Tokenwise-Cache"), calls.Load())
	}
}
