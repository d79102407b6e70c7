package gateway_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/gateway"
)

// responsesUpstream answers POST /v1/responses as OpenAI does, JSON or a
// stream of events, with 1,000 input tokens (400 of them cached) and 200
// output tokens; a stream ends with response.completed unless the request
// carries "metadata": {"cut": "yes"} (then it stops before it), and one
// with "metadata": {"fail": "yes"} is a 400.
func responsesUpstream(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	const usage = `{"input_tokens":1000,"input_tokens_details":{"cached_tokens":400},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1200}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/responses" || r.Header.Get("Authorization") != "Bearer "+upstreamKey {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		var req struct {
			Model    string            `json:"model"`
			Stream   bool              `json:"stream"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Metadata["fail"] == "yes" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"bad model","type":"invalid_request_error","param":"model","code":null}}`)
			return
		}
		resp := func(status, usage string) string {
			return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini-2024-07-18","service_tier":"default",` +
				`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The disks are fine.","annotations":[]}]}],` +
				`"usage":` + usage + `}`
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, resp("completed", usage))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		fmt.Fprintf(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":%s}\n\n", resp("in_progress", "null"))
		f.Flush()
		fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"The disks are fine.\"}\n\n")
		f.Flush()
		if req.Metadata["cut"] == "yes" {
			return
		}
		final := fmt.Sprintf("event: response.completed\r\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":%s}\r\n\r\n", resp("completed", usage))
		if req.Metadata["trickle"] == "yes" {
			// The final event in pieces of 7 bytes, each flushed: the
			// gateway reads it across many reads (and with CRLF ends).
			for len(final) > 7 {
				_, _ = io.WriteString(w, final[:7])
				f.Flush()
				final = final[7:]
			}
		}
		_, _ = io.WriteString(w, final)
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGatewayPolicesTheResponsesAPI: the Responses API, which OpenAI's
// newest SDKs and agents call, is passed through to the upstream
// unchanged but never unpoliced: through the official openai-go client,
// a call, answered or streamed, is charged to the team's ledger at the
// usage the answer reports (600 uncached input tokens, 400 cached and 200
// output tokens of gpt-4o-mini: $0.000240, read by /v1/spend); a stream
// cut before its final event is charged its reservation and read by the
// client as an error (the gateway ends it with an error event); an upstream
// error releases it; and a call whose worst case the budget cannot
// afford — max_output_tokens, or a previous_response_id whose earlier
// turns, or a stored prompt whose template, only the provider knows
// (reserved at the whole context window) —
// is refused with an OpenAI-shaped 429 before it reaches the upstream.
func TestGatewayPolicesTheResponsesAPI(t *testing.T) {
	var calls atomic.Int64
	up := responsesUpstream(t, &calls)
	e := embeddingsGateway(t, up, "0.02")
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	ctx := t.Context()
	params := responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks of web-1.")}}

	r, err := oc.Responses.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "The disks are fine." || r.Usage.TotalTokens != 1200 {
		t.Fatalf("answer %q, usage %+v: want the upstream's", r.OutputText(), r.Usage)
	}
	if s := e.spend(t); s.SpentUSD != "0.000240" || s.SpentTokens != 1200 {
		t.Fatalf("after the answered call: spent %s USD, %d tokens; want 0.000240, 1200", s.SpentUSD, s.SpentTokens)
	}

	st := oc.Responses.NewStreaming(ctx, params)
	var text strings.Builder
	completed := false
	for st.Next() {
		ev := st.Current()
		text.WriteString(ev.Delta)
		completed = completed || ev.Type == "response.completed"
	}
	if err := st.Err(); err != nil || !completed || text.String() != "The disks are fine." {
		t.Fatalf("stream: %v, completed %v, text %q", err, completed, text.String())
	}
	_ = st.Close()
	if s := e.spend(t); s.SpentUSD != "0.000480" || s.SpentTokens != 2400 {
		t.Fatalf("after the streamed call: spent %s USD, %d tokens; want 0.000480, 2400", s.SpentUSD, s.SpentTokens)
	}
	// The final event read in pieces.
	st = oc.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: params.Input, Metadata: map[string]string{"trickle": "yes"}})
	for st.Next() {
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if s := e.spend(t); s.SpentUSD != "0.000720" || s.SpentTokens != 3600 {
		t.Fatalf("after a stream read in pieces: spent %s USD, %d tokens; want 0.000720, 3600", s.SpentUSD, s.SpentTokens)
	}

	// A model without a price under a USD budget is refused before it is
	// sent; an upstream error releases the reservation.
	n := calls.Load()
	resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"my-own-model","input":"hi"}`)
	var eb struct {
		Error struct{ Code, Type string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != 400 || eb.Error.Code != "model_not_priced" || calls.Load() != n {
		t.Fatalf("an unpriced model: %d %+v, want the gateway's 400 model_not_priced before the upstream", resp.StatusCode, eb)
	}
	resp = e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"hi","metadata":{"fail":"yes"}}`)
	_ = resp.Body.Close()
	if s := e.spend(t); resp.StatusCode != 400 || s.SpentUSD != "0.000720" || s.SpentTokens != 3600 {
		t.Fatalf("an upstream error: %d, spent %s USD, %d tokens; want the upstream's 400 and nothing charged", resp.StatusCode, s.SpentUSD, s.SpentTokens)
	}

	// A stream cut before its final event is charged its reservation:
	// about 20 input tokens at $0.15/1M and 500 output tokens at $0.60/1M.
	before := e.spend(t)
	st = oc.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: params.Input, Metadata: map[string]string{"cut": "yes"}})
	for st.Next() {
	}
	// The client reads the cut as an error, not as a complete stream.
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "stream_cut") {
		t.Fatalf("a cut stream read by openai-go: err %v, want the gateway's stream_cut error event", err)
	}
	_ = st.Close()
	after := e.spend(t)
	if d := after.SpentTokens - before.SpentTokens; d < 500 || d > 560 {
		t.Fatalf("a cut stream charged %d tokens, want its reservation (500 output tokens and its input)", d)
	}

	// Calls whose worst case does not fit in what is left of $0.02.
	n = calls.Load()
	for name, body := range map[string]string{
		"max_output_tokens":    `{"model":"gpt-4o","input":"hi","max_output_tokens":16384}`,
		"previous_response_id": `{"model":"gpt-4o-mini","input":"and now?","previous_response_id":"resp_1"}`,
		"a stored prompt":      `{"model":"gpt-4o-mini","input":[],"prompt":{"id":"pmpt_1","variables":{"host":"web-1"}}}`,
		"a hosted tool":        `{"model":"gpt-4o","input":"search","tools":[{"type":"web_search"}]}`,
	} {
		resp := e.do(t, "POST", "/v1/responses", devopsKey, body)
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		if resp.StatusCode != 429 || eb.Error.Code != "budget_exceeded" {
			t.Errorf("%s: %d %+v, want 429 budget_exceeded", name, resp.StatusCode, eb)
		}
	}
	if calls.Load() != n {
		t.Fatalf("refused calls reached the upstream")
	}
}

// TestGatewayResponsesNeverOvershootTheBudget: twenty concurrent
// Responses calls of max_output_tokens 500 on gpt-4o-mini (each reserved
// at more than 500 × $0.60/1M = $0.0003) against a team budget of
// $0.0015, held in flight by the upstream until every call has reached it
// or been refused: at most five (by reservation, four) reach the
// upstream, the others get the budget's 429, and what the team spends in
// the end — each call billed 10 input and 500 output tokens — is within
// its budget, nothing left held.
func TestGatewayResponsesNeverOvershootTheBudget(t *testing.T) {
	const n = 20
	arrived, release := make(chan struct{}, n), make(chan struct{})
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[],`+
			`"usage":{"input_tokens":10,"output_tokens":500,"total_tokens":510}}`)
	}))
	defer up.Close()
	e := embeddingsGateway(t, up, "0.0015")
	refused := make(chan struct{}, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/responses", strings.NewReader(`{"model":"gpt-4o-mini","input":"Check the disks.","max_output_tokens":500}`))
			req.Header.Set("Authorization", "Bearer "+devopsKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var eb struct {
				Error struct{ Code string } `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			switch {
			case resp.StatusCode == http.StatusTooManyRequests && json.Unmarshal(b, &eb) == nil && eb.Error.Code == "budget_exceeded":
				refused <- struct{}{}
				errs <- nil
			case resp.StatusCode == http.StatusOK:
				errs <- nil
			default:
				errs <- fmt.Errorf("%d %s", resp.StatusCode, b)
			}
		}()
	}
	for range n {
		select {
		case <-arrived:
		case <-refused:
		}
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s := e.spend(t)
	c := calls.Load()
	// 10 × $0.15/1M + 500 × $0.60/1M = $0.0003015 a call; the ledger sums
	// the calls exactly and rounds up once.
	if c < 1 || c > 5 || s.SpentTokens != 510*c || s.SpentUSD != fmt.Sprintf("0.%06d", (3015*c+9)/10) || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("%d calls reached the upstream; spent %s USD and %d tokens, %s USD reserved by %d calls; want 1 to 5 calls, each charged 510 tokens and $0.0003015, nothing held",
			c, s.SpentUSD, s.SpentTokens, s.ReservedUSD, s.InFlightCalls)
	}
	t.Logf("%d calls reached the upstream, %d refused; spent %s USD of 0.0015", c, n-c, s.SpentUSD)
}

// TestGatewayPassesModelCallsToTheModelsUpstream: with two upstreams, an
// embeddings or Responses call goes to the upstream that serves its model,
// with that upstream's key (the first one's when no upstream lists it).
func TestGatewayPassesModelCallsToTheModelsUpstream(t *testing.T) {
	const keyB = "sk-upstream-b-99887766554433221100ffeeddcc"
	t.Setenv(upstreamEnv, upstreamKey)
	t.Setenv("TOKENWISE_GATEWAY_TEST_UPSTREAM_B", keyB)
	got := map[string][]string{} // upstream -> "path model key"
	var mu sync.Mutex
	upstream := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req struct{ Model string }
			_ = json.NewDecoder(r.Body).Decode(&req)
			mu.Lock()
			got[name] = append(got[name], r.URL.Path+" "+req.Model+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"response","model":"`+req.Model+`","usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2,"prompt_tokens":1}}`)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := upstream("a"), upstream("b")
	cfgPath := twoUpstreams(t, a.URL+"/v1", b.URL+"/v1", "local-llama, local-embed", "version: 1\nname: devops\n")
	e := serveFile(t, cfgPath)
	for _, c := range [][2]string{{"/v1/responses", "local-llama"}, {"/v1/embeddings", "local-embed"}, {"/v1/responses", "gpt-4o"}, {"/v1/responses", "unlisted"}} {
		resp := e.do(t, "POST", c[0], devopsKey, `{"model":"`+c[1]+`","input":"hi"}`)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d", c[0], c[1], resp.StatusCode)
		}
	}
	wantA := []string{"/v1/responses gpt-4o Bearer " + upstreamKey, "/v1/responses unlisted Bearer " + upstreamKey}
	wantB := []string{"/v1/responses local-llama Bearer " + keyB, "/v1/embeddings local-embed Bearer " + keyB}
	if !reflect.DeepEqual(got["a"], wantA) || !reflect.DeepEqual(got["b"], wantB) {
		t.Fatalf("upstream a got %q, b got %q; want %q and %q", got["a"], got["b"], wantA, wantB)
	}
}

// TestGatewayRefusesUnpolicedSpendOfABudget: a team with a budget cannot
// spend through an endpoint the gateway does not police (legacy
// completions, image generation): the call is refused with an
// OpenAI-shaped 403 naming the way out, before it reaches the upstream;
// a call that costs nothing (a file listing) passes; with pass_unpoliced
// in the gateway file, the billable call passes too.
func TestGatewayRefusesUnpolicedSpendOfABudget(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet && r.URL.Path == "/v1/files" {
			// A list page: the gateway reads a list for the team's own objects.
			_, _ = io.WriteString(w, `{"object":"list","data":[],"has_more":false}`)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	for _, pass := range []bool{false, true} {
		extra := ""
		if pass {
			extra = "pass_unpoliced: true\n"
		}
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, extra))
		calls.Store(0)
		for _, path := range []string{"/v1/completions", "/v1/images/generations", "/v1/responses/compact", "/v1/containers", "/v1/evals/eval_1/runs"} {
			resp := e.do(t, "POST", path, devopsKey, `{"model":"gpt-3.5-turbo-instruct","prompt":"hi"}`)
			var eb struct {
				Error struct{ Code, Type, Message string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			switch {
			case !pass && (resp.StatusCode != 403 || eb.Error.Code != "unpoliced_endpoint" || !strings.Contains(eb.Error.Message, "pass_unpoliced")):
				t.Errorf("%s: %d %+v, want 403 unpoliced_endpoint", path, resp.StatusCode, eb)
			case pass && resp.StatusCode != 200:
				t.Errorf("%s with pass_unpoliced: %d", path, resp.StatusCode)
			}
		}
		resp := e.do(t, "GET", "/v1/files", devopsKey, "")
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET /v1/files: %d, want the upstream's answer", resp.StatusCode)
		}
		// Free requests pass: a conversation, an eval's definition.
		for _, path := range []string{"/v1/conversations", "/v1/evals"} {
			resp := e.do(t, "POST", path, devopsKey, `{}`)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("POST %s: %d, want the upstream's answer", path, resp.StatusCode)
			}
		}
		if want := map[bool]int64{false: 3, true: 8}[pass]; calls.Load() != want {
			t.Errorf("pass_unpoliced %v: the upstream got %d calls, want %d", pass, calls.Load(), want)
		}
	}
}

// TestGatewayRefusesRealtimeAndUnpolicedSubpaths: the Realtime API and
// every path under a refused family escape a team's budget no more than
// the family's own path: a Realtime session (a GET upgraded to a
// WebSocket), its client secrets, calls, sessions and transcription
// sessions, and a video's remix get the 403 unpoliced_endpoint before the
// upstream, as does any connection upgrade to a model call's path (the
// gateway polices those as HTTP requests); a free request under a refused
// family (a video's retrieval) passes, a team without a budget passes, and
// pass_unpoliced: true lets them all through. Before, only POST
// /v1/realtime and POST /v1/videos themselves were refused: a WebSocket
// session opened on the upstream's key.
func TestGatewayRefusesRealtimeAndUnpolicedSubpaths(t *testing.T) {
	var mu sync.Mutex
	var reached []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Header.Get("Upgrade") == "websocket" {
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"value":"ek_ephemeral"}`)
	}))
	defer up.Close()
	taken := func() []string {
		mu.Lock()
		defer mu.Unlock()
		r := reached
		reached = nil
		return r
	}
	// devops has a budget; payments has none.
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n",
		"payments.yaml": "version: 1\nname: payments\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	upgrade := func(e *env, key, path string) int {
		resp, _ := rawDo(t, e.url, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+key+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")
		return resp.StatusCode
	}
	billable := []string{"/v1/realtime/client_secrets", "/v1/realtime/calls", "/v1/realtime/sessions", "/v1/realtime/transcription_sessions",
		"/v1/realtime", "/v1/videos", "/v1/videos/video_1/remix", "/realtime/client_secrets"}
	upgrades := []string{"/v1/realtime?model=gpt-realtime", "/realtime?model=gpt-realtime", "/v1/responses", "/v1/audio/speech"}
	for _, pass := range []bool{false, true} {
		extra := ""
		if pass {
			extra = "pass_unpoliced: true\n"
		}
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, extra))
		for _, path := range billable {
			resp := e.do(t, "POST", path, devopsKey, `{"model":"gpt-realtime"}`)
			var eb errorBody
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			switch {
			case !pass && (resp.StatusCode != http.StatusForbidden || eb.Error.Code == nil || *eb.Error.Code != "unpoliced_endpoint" ||
				!strings.HasPrefix(resp.Header.Get(gateway.CallIDHeader), "call-")):
				t.Errorf("POST %s: %d %+v (call id %q), want 403 unpoliced_endpoint with the call's id", path, resp.StatusCode, eb.Error, resp.Header.Get(gateway.CallIDHeader))
			case pass && resp.StatusCode != http.StatusOK:
				t.Errorf("POST %s with pass_unpoliced: %d, want the upstream's 200", path, resp.StatusCode)
			}
		}
		for _, path := range upgrades {
			want := map[bool]int{false: http.StatusForbidden, true: http.StatusSwitchingProtocols}[pass]
			if st := upgrade(e, devopsKey, path); st != want {
				t.Errorf("GET %s upgraded to a WebSocket (pass_unpoliced %v): %d, want %d", path, pass, st, want)
			}
		}
		got := taken()
		if want := map[bool]int{false: 0, true: len(billable) + len(upgrades)}[pass]; len(got) != want {
			t.Errorf("pass_unpoliced %v: the upstream got %q, want %d requests", pass, got, want)
		}
		// A free request under a refused family passes, and a team without
		// a budget has none to escape.
		if resp := e.do(t, "GET", "/v1/videos/video_1", devopsKey, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/videos/video_1: %d, want the upstream's 200", resp.StatusCode)
		}
		if resp := e.do(t, "POST", "/v1/realtime/client_secrets", paymentsKey, `{}`); resp.StatusCode != http.StatusOK {
			t.Errorf("POST /v1/realtime/client_secrets of a team without a budget: %d, want the upstream's 200", resp.StatusCode)
		}
		if st := upgrade(e, paymentsKey, "/v1/realtime?model=gpt-realtime"); st != http.StatusSwitchingProtocols {
			t.Errorf("a Realtime session of a team without a budget: %d, want 101", st)
		}
		if got := taken(); len(got) != 3 {
			t.Errorf("the upstream got %q, want the three free or unbudgeted requests", got)
		}
	}
}

// chatAndResponsesUpstream answers every chat completion with "ok" (5
// input and 1 output tokens) and every other call with answer, counting
// the calls.
func chatAndResponsesUpstream(t *testing.T, calls *atomic.Int64, answer string) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`)
			return
		}
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGatewayResponsesCountInTheRun: Responses calls that name a run
// (X-Run-Id) count against the run's call limit with its chat calls (one
// counter), and a call past the limit is refused with the run guard's
// 429, whichever API it uses, before it reaches the upstream.
func TestGatewayResponsesCountInTheRun(t *testing.T) {
	var calls atomic.Int64
	up := chatAndResponsesUpstream(t, &calls, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}`)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nlimits: {max_calls: 3}\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	chat := func() *http.Response {
		return e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "X-Run-Id", "agent-7")
	}
	resp := func() *http.Response {
		return e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, "X-Run-Id", "agent-7")
	}
	for i, call := range []func() *http.Response{chat, resp, resp, resp, chat} {
		r := call()
		var eb struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&eb)
		switch {
		case i < 3 && r.StatusCode != 200:
			t.Fatalf("call %d: %d %+v, want 200", i+1, r.StatusCode, eb)
		case i >= 3 && (r.StatusCode != 429 || eb.Error.Code != "run_call_limit"):
			t.Fatalf("call %d: %d %+v, want 429 run_call_limit", i+1, r.StatusCode, eb)
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("the upstream got %d calls, want 3", calls.Load())
	}
	// Another run starts afresh; a call without X-Run-Id is a run of its own.
	if r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, "X-Run-Id", "agent-8"); r.StatusCode != 200 {
		t.Fatalf("another run: %d", r.StatusCode)
	}
	if r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`); r.StatusCode != 200 {
		t.Fatalf("no run: %d", r.StatusCode)
	}
}

// TestGatewayPassedCallsSpendTheRunBudget: a Responses call and an
// embeddings call that name a run (X-Run-Id) are held in the run's budget
// as well as the team's, as its chat calls are: once the run's tokens are
// spent, a call of the run that does not fit is refused with the budget's
// 429, a call of another run is not, and a call without X-Run-Id is a run
// of its own, bounded alone. Both are in the run's report (before, an
// embeddings call was missing there: the report's spend was less than
// what the run's budget had been charged).
func TestGatewayPassedCallsSpendTheRunBudget(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/embeddings") {
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":150,"total_tokens":150}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[],"usage":{"input_tokens":20,"output_tokens":30,"total_tokens":50}}`)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  run: {max_tokens: 400}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	responses := func(maxOut int, run ...string) (int, string) {
		body := `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":` + strconv.Itoa(maxOut) + `}`
		var r *http.Response
		if len(run) > 0 {
			r = e.do(t, "POST", "/v1/responses", devopsKey, body, "X-Run-Id", run[0])
		} else {
			r = e.do(t, "POST", "/v1/responses", devopsKey, body)
		}
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&eb)
		return r.StatusCode, eb.Error.Code + ": " + eb.Error.Message
	}
	// The worst case of a call with 300 output tokens fits the run's 400.
	if st, msg := responses(300, "agent-1"); st != 200 {
		t.Fatalf("first call: %d %s", st, msg)
	}
	// The run has spent 50 tokens; an embeddings call of the run spends 150.
	if r := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"the runbook"}`, "X-Run-Id", "agent-1"); r.StatusCode != 200 {
		t.Fatalf("embeddings: %d", r.StatusCode)
	}
	// 200 of 400 are spent: a call whose worst case is over 300 tokens no
	// longer fits in the run; one under 200 does.
	before := calls.Load()
	if st, msg := responses(300, "agent-1"); st != 429 || !strings.HasPrefix(msg, "budget_exceeded") || !strings.Contains(msg, "run") {
		t.Fatalf("a call past the run's budget: %d %s, want 429 budget_exceeded naming the run", st, msg)
	}
	if calls.Load() != before {
		t.Fatalf("the refused call reached the upstream")
	}
	if st, msg := responses(100, "agent-1"); st != 200 {
		t.Fatalf("a call that fits what is left of the run: %d %s", st, msg)
	}
	// The run's report has the embeddings call with its model calls: its
	// 150 tokens beside the two Responses calls' 20 + 30 each, and the
	// refused call as a failed one.
	if status, rep, _ := e.runReport(t, devopsKey, "agent-1"); status != 200 || rep.Calls != 4 || rep.FailedCalls != 1 || rep.InputTokens != 190 || rep.OutputTokens != 60 ||
		rep.ByModel["gpt-4o-mini"].Calls != 3 || rep.ByModel["text-embedding-3-small"].Calls != 1 || rep.ByModel["text-embedding-3-small"].InputTokens != 150 {
		t.Errorf("the run's report %d: %+v", status, rep)
	}
	// Another run has its own 400 tokens.
	if st, msg := responses(300, "agent-2"); st != 200 {
		t.Fatalf("another run: %d %s", st, msg)
	}
	// Without X-Run-Id a call is a run of its own: bounded alone.
	if st, msg := responses(300); st != 200 {
		t.Fatalf("no run, a call that fits: %d %s", st, msg)
	}
	if st, msg := responses(500); st != 429 || !strings.HasPrefix(msg, "budget_exceeded") {
		t.Fatalf("no run, a call over the per-run budget: %d %s, want 429 budget_exceeded", st, msg)
	}
}

// TestGatewayResponsesAreRateLimited: a Responses call is admitted
// against its model's rate limits with the team's chat calls (one
// counter): a call past the requests per minute is refused with the
// rate limits' 429 before it reaches the upstream, and a call's tokens
// per minute are held at its worst case, then settled at the answer's
// usage, so that a later call fits what was not used.
func TestGatewayResponsesAreRateLimited(t *testing.T) {
	var calls atomic.Int64
	up := chatAndResponsesUpstream(t, &calls, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o","output":[],"usage":{"input_tokens":20,"output_tokens":30,"total_tokens":50}}`)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nrate_limits:\n  on_limit: reject\n  models:\n    gpt-4o-mini: {rpm: 3, burst: 1m}\n    gpt-4o: {tpm: 1000, burst: 1m}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	call := func(path, body string) (int, string) {
		r := e.do(t, "POST", path, devopsKey, body)
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&eb)
		return r.StatusCode, eb.Error.Code + ": " + eb.Error.Message
	}
	responses := func(model string, maxOut int) (int, string) {
		return call("/v1/responses", `{"model":"`+model+`","input":"hi","max_output_tokens":`+strconv.Itoa(maxOut)+`}`)
	}
	// Requests per minute: a chat call and two Responses calls use the 3.
	if st, msg := call("/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`); st != 200 {
		t.Fatalf("chat: %d %s", st, msg)
	}
	for i := range 2 {
		if st, msg := responses("gpt-4o-mini", 50); st != 200 {
			t.Fatalf("responses %d: %d %s", i+1, st, msg)
		}
	}
	before := calls.Load()
	if st, msg := responses("gpt-4o-mini", 50); st != 429 || !strings.HasPrefix(msg, "rate_limit_exceeded") {
		t.Fatalf("a 4th call in the minute: %d %s, want 429 rate_limit_exceeded", st, msg)
	}
	if calls.Load() != before {
		t.Fatal("the refused call reached the upstream")
	}
	// Tokens per minute: each call holds its input and max_output_tokens
	// and is settled at the 50 tokens it used, so a second call of over
	// 900 fits the 1,000 and a third no longer does.
	if st, msg := responses("gpt-4o", 300); st != 200 {
		t.Fatalf("tpm, first call: %d %s", st, msg)
	}
	if st, msg := responses("gpt-4o", 900); st != 200 {
		t.Fatalf("tpm, second call (the first settled at 50 tokens): %d %s", st, msg)
	}
	if st, msg := responses("gpt-4o", 900); st != 429 || !strings.HasPrefix(msg, "rate_limit_exceeded") {
		t.Fatalf("tpm, third call: %d %s, want 429 rate_limit_exceeded", st, msg)
	}
}

// TestGatewayRunReportHasRefusedResponsesCalls: a Responses call the
// gateway refuses before it is sent — by the run's budget, by the run's
// call limit — is in the report of the run it names as a failed call
// under its model, as a chat call refused the same way is; so is an
// embeddings call the run's budget refuses. Before, a refused chat call
// showed calls=1 failed=1 and a refused Responses or embeddings call
// nothing.
func TestGatewayRunReportHasRefusedResponsesCalls(t *testing.T) {
	var calls atomic.Int64
	up := chatAndResponsesUpstream(t, &calls, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}`)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  run: {max_usd: 0.001}\n",
		"payments.yaml": "version: 1\nname: payments\nlimits: {max_calls: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	call := func(key, path, body, run string) (int, string) {
		r := e.do(t, "POST", path, key, body, gateway.RunIDHeader, run)
		var eb struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&eb)
		return r.StatusCode, eb.Error.Code
	}
	check := func(key, run string, calls, failed int, model string) {
		t.Helper()
		st, rep, code := e.runReport(t, key, run)
		if st != 200 || rep.Calls != calls || rep.FailedCalls != failed || rep.ByModel[model].Calls != calls {
			t.Errorf("run %s: %d %q, calls %d failed %d by model %+v; want %d calls (%d failed) under %s", run, st, code, rep.Calls, rep.FailedCalls, rep.ByModel, calls, failed, model)
		}
	}
	// The run's budget: a call whose worst case does not fit is refused.
	if st, code := call(devopsKey, "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}`, "chat-run"); st != 429 {
		t.Fatalf("chat over the run budget: %d %s, want 429", st, code)
	}
	if st, code := call(devopsKey, "/v1/responses", `{"model":"gpt-4o","input":"hi","max_output_tokens":100000}`, "responses-run"); st != 429 || code != "budget_exceeded" {
		t.Fatalf("responses over the run budget: %d %s, want 429 budget_exceeded", st, code)
	}
	// An embeddings call too: about 9,000 tokens at $0.13/1M.
	if st, code := call(devopsKey, "/v1/embeddings", `{"model":"text-embedding-3-large","input":"`+strings.Repeat("disk ", 9000)+`"}`, "embeddings-run"); st != 429 || code != "budget_exceeded" {
		t.Fatalf("embeddings over the run budget: %d %s, want 429 budget_exceeded", st, code)
	}
	check(devopsKey, "chat-run", 1, 1, "gpt-4o")
	check(devopsKey, "responses-run", 1, 1, "gpt-4o")
	check(devopsKey, "embeddings-run", 1, 1, "text-embedding-3-large")
	// The run's call limit: the second call is refused.
	if st, code := call(paymentsKey, "/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, "limited"); st != 200 {
		t.Fatalf("the first call of the run: %d %s", st, code)
	}
	if st, code := call(paymentsKey, "/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, "limited"); st != 429 || code != "run_call_limit" {
		t.Fatalf("a call past the run's call limit: %d %s, want 429 run_call_limit", st, code)
	}
	check(paymentsKey, "limited", 2, 1, "gpt-4o-mini")
	if n := calls.Load(); n != 1 {
		t.Fatalf("the upstream got %d calls, want the one that was admitted", n)
	}
}

// TestGatewayRunReportHasTheResponsesCalls: the report of a run
// (GET /v1/runs/{id}) counts its Responses calls with its chat calls:
// their tokens and exact cost, under their model, and a call the
// upstream refused as a failed call.
func TestGatewayRunReportHasTheResponsesCalls(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/chat/completions"):
			_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`)
		case strings.Contains(string(body), "refuse me"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"bad input","type":"invalid_request_error","param":null,"code":null}}`)
		default:
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini-2024-07-18","output":[],"usage":{"input_tokens":2000,"input_tokens_details":{"cached_tokens":1000},"output_tokens":300,"total_tokens":2300}}`)
		}
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"hi"}`},
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"refuse me"}`},
	} {
		r := e.do(t, "POST", c.path, devopsKey, c.body, "X-Run-Id", "agent-r")
		_, _ = io.Copy(io.Discard, r.Body)
	}
	r := e.do(t, "GET", "/v1/runs/agent-r", devopsKey, "")
	var rep gateway.RunReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || r.StatusCode != 200 {
		t.Fatalf("report: %d %v", r.StatusCode, err)
	}
	// gpt-4o-mini: $0.15 per 1M input, $0.075 cached, $0.60 output.
	// Chat: 1000 in, 100 out = 150,000,000 + 60,000,000 pico; Responses:
	// 1000 uncached, 1000 cached, 300 out = 150,000,000 + 75,000,000 +
	// 180,000,000 pico.
	const want = 210_000_000 + 405_000_000
	m := rep.ByModel["gpt-4o-mini"]
	if rep.Calls != 3 || rep.FailedCalls != 1 || rep.InputTokens != 3000 || rep.CachedInputTokens != 1000 || rep.OutputTokens != 400 ||
		rep.CostPico != want || m.CostPico != want || m.InputTokens != 3000 {
		t.Fatalf("report %+v, by model %+v: want 3 calls (1 failed), 3000 input (1000 cached) and 400 output tokens, %d pico-USD", rep.RunFigures, m, want)
	}
}

// TestGatewayResponsesCutStreamIsAnError: for a team with no budget, rate
// limit or run to settle too, a Responses stream the upstream cuts before
// its final event reaches the client as an error (the gateway's
// stream_cut event), and a complete one as it was sent.
func TestGatewayResponsesCutStreamIsAnError(t *testing.T) {
	var calls atomic.Int64
	up := responsesUpstream(t, &calls)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	for _, cut := range []bool{false, true} {
		params := responses.ResponseNewParams{Model: "gpt-4o-mini",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks.")}}
		if cut {
			params.Metadata = map[string]string{"cut": "yes"}
		}
		st := oc.Responses.NewStreaming(t.Context(), params)
		var types []string
		for st.Next() {
			types = append(types, st.Current().Type)
		}
		err := st.Err()
		_ = st.Close()
		switch {
		case !cut && (err != nil || len(types) != 3 || types[2] != "response.completed"):
			t.Fatalf("a complete stream: events %v, err %v", types, err)
		case cut && (err == nil || !strings.Contains(err.Error(), "stream_cut")):
			t.Fatalf("a cut stream: events %v, err %v; want the stream_cut error", types, err)
		}
	}
}

// modelsUpstream answers every Responses call with 1,000 input and 100
// output tokens of the model it names; sent returns those models, in
// order.
func modelsUpstream(t *testing.T) (up *httptest.Server, sent func() []string) {
	t.Helper()
	var mu sync.Mutex
	var models []string
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		models = append(models, req.Model)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"`+req.Model+`","output":[],"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`)
	}))
	t.Cleanup(up.Close)
	return up, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(models)
	}
}

// TestGatewayRoutesResponsesCalls: a Responses call is routed by the
// team's routing rules as a chat call is — its stage read from its input
// (a function call's output: the agent analyses a tool's result) — and
// the upstream, the budget and the run's report get the routed model.
func TestGatewayRoutesResponsesCalls(t *testing.T) {
	up, sent := modelsUpstream(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 10}
routing:
  default: gpt-4o
  rules:
    - name: cheap-results
      when: {stage: result_analysis}
      model: gpt-4o-mini
`}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	toolTurn := `{"model":"gpt-4.1","max_output_tokens":100,"tools":[{"type":"function","name":"check_disk","parameters":{"type":"object"}}],"input":[` +
		`{"role":"user","content":"Check the disks of web-1."},` +
		`{"type":"function_call","call_id":"call_1","name":"check_disk","arguments":"{\"host\":\"web-1\"}"},` +
		`{"type":"function_call_output","call_id":"call_1","output":"/var 91% used"}]}`
	for _, body := range []string{toolTurn, `{"model":"gpt-4.1","max_output_tokens":100,"input":"Write the incident summary."}`} {
		r := e.do(t, "POST", "/v1/responses", devopsKey, body, "X-Run-Id", "routed")
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, b)
		}
	}
	if models := sent(); !reflect.DeepEqual(models, []string{"gpt-4o-mini", "gpt-4o"}) {
		t.Fatalf("the upstream got models %v, want the tool result's turn on gpt-4o-mini and the final answer on routing.default gpt-4o", models)
	}
	// Charged at the routed models' prices: 1,000 input and 100 output
	// tokens of gpt-4o-mini ($0.000210) and of gpt-4o ($0.003500).
	if s := e.spend(t); s.SpentUSD != "0.003710" {
		t.Fatalf("spent %s USD, want 0.003710", s.SpentUSD)
	}
	r := e.do(t, "GET", "/v1/runs/routed", devopsKey, "")
	var rep gateway.RunReport
	_ = json.NewDecoder(r.Body).Decode(&rep)
	if rep.ByModel["gpt-4o-mini"].Calls != 1 || rep.ByModel["gpt-4o"].Calls != 1 || rep.ByModel["gpt-4.1"].Calls != 0 {
		t.Fatalf("the run's models %+v, want one call on each routed model", rep.ByModel)
	}
}

// TestGatewayRoutesResponsesByTheBudgetLeft: a budget_below rule routes a
// Responses call as it routes a chat call: once the team's ledger has
// less than half of its $0.01 left (two calls of 1,000 input and 100
// output tokens of gpt-4o, $0.0035 each), the next call goes to
// gpt-4o-mini; with a rule on the run's budget, so does the third call of
// a run (X-Run-Id), and the first of another run goes to gpt-4o.
func TestGatewayRoutesResponsesByTheBudgetLeft(t *testing.T) {
	up, sent := modelsUpstream(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 0.01}
routing:
  default: gpt-4o
  rules:
    - name: save-the-rest
      when: {budget_below: {scope: team, fraction: 0.5}}
      model: gpt-4o-mini
`, "payments.yaml": `version: 1
name: payments
budget:
  run: {max_usd: 0.01}
routing:
  default: gpt-4o
  rules:
    - name: save-the-rest
      when: {budget_below: {scope: run, fraction: 0.5}}
      model: gpt-4o-mini
`}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for range 3 {
		r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","max_output_tokens":100,"input":"Write the incident summary."}`)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, b)
		}
	}
	if models := sent(); !reflect.DeepEqual(models, []string{"gpt-4o", "gpt-4o", "gpt-4o-mini"}) {
		t.Fatalf("the upstream got models %v, want gpt-4o twice, then gpt-4o-mini once less than half the budget is left", models)
	}
	for _, run := range []string{"run-1", "run-1", "run-1", "run-2"} {
		r := e.do(t, "POST", "/v1/responses", paymentsKey, `{"model":"gpt-4o","max_output_tokens":100,"input":"Write the incident summary."}`, "X-Run-Id", run)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, b)
		}
	}
	if models := sent()[3:]; !reflect.DeepEqual(models, []string{"gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o"}) {
		t.Fatalf("the upstream got models %v, want gpt-4o twice in a run, then gpt-4o-mini, then gpt-4o in a new run", models)
	}
}

// TestGatewayEscalatesResponsesToALargerWindow: a Responses call whose
// counted input and max_output_tokens do not fit its model's context
// window (gpt-4o-mini's, 1,000 tokens in this policy) goes to the first
// routing.larger_window model they fit (gpt-4.1), as the chain escalates a
// chat call — before it is reserved and sent; a call that fits stays, and
// so does one whose input the gateway cannot count (previous_response_id).
func TestGatewayEscalatesResponsesToALargerWindow(t *testing.T) {
	up, sent := modelsUpstream(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": `version: 1
name: devops
models:
  gpt-4o-mini: {context_window: 1000, max_output_tokens: 500}
  gpt-4o: {context_window: 1500, max_output_tokens: 500}
routing:
  larger_window: [gpt-4o, gpt-4.1]
budget:
  team: {period: monthly, max_usd: 10}
`}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	long := strings.Repeat("The disk of web-1 is full again. ", 250) // ≈ 2,000 tokens
	for _, body := range []string{
		`{"model":"gpt-4o-mini","max_output_tokens":100,"input":"Check the disks."}`,
		`{"model":"gpt-4o-mini","max_output_tokens":100,"input":"` + long + `"}`,
		`{"model":"gpt-4o-mini","max_output_tokens":100,"previous_response_id":"resp_0","input":"` + long + `"}`,
	} {
		r := e.do(t, "POST", "/v1/responses", devopsKey, body)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, b)
		}
	}
	if models := sent(); !reflect.DeepEqual(models, []string{"gpt-4o-mini", "gpt-4.1", "gpt-4o-mini"}) {
		t.Fatalf("the upstream got models %v, want gpt-4o-mini, then gpt-4.1 for the long input (gpt-4o's 1,500 do not fit it), then gpt-4o-mini", models)
	}
}

// TestGatewayRefusesAmbiguousMembers: a Responses or embeddings request
// that names a member the gateway polices twice, or in another case
// (which encoding/json reads as the member, keeping the last, while a
// provider may read only the exact name, or the first), is refused with
// a 400 before it reaches the upstream: it could be reserved as one
// request and served as another.
func TestGatewayRefusesAmbiguousMembers(t *testing.T) {
	var calls atomic.Int64
	up := responsesUpstream(t, &calls)
	e := embeddingsGateway(t, up, "0.02")
	for _, c := range []struct{ path, body, param string }{
		{"/v1/responses", `{"model":"gpt-4o","input":"hi","max_output_tokens":16000,"Max_Output_Tokens":10}`, "Max_Output_Tokens"},
		{"/v1/responses", `{"model":"gpt-4o","input":"hi","max_output_tokens":10,"max_output_tokens":16000}`, "max_output_tokens"},
		{"/v1/responses", `{"MODEL":"gpt-4o-mini","model":"gpt-4o","input":"hi"}`, "MODEL"},
		{"/v1/responses", `{"model":"gpt-4o","input":"hi","ſtream":true}`, "ſtream"},
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":"a","Input":"` + strings.Repeat("long ", 100) + `"}`, "Input"},
	} {
		r := e.do(t, "POST", c.path, devopsKey, c.body)
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&eb)
		if r.StatusCode != 400 || eb.Error.Code != "invalid_request" || !strings.Contains(eb.Error.Message, strconv.Quote(c.param)) {
			t.Errorf("%s %s: %d %+v, want a 400 naming %q", c.path, c.body, r.StatusCode, eb.Error, c.param)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}
	// Members the gateway does not read pass as they are, and the request too.
	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50,"Metadata":{"a":"b"},"metadata":{"a":"c"}}`)
	if r.StatusCode != 200 || calls.Load() != 1 {
		t.Fatalf("a request with members the gateway does not police: %d", r.StatusCode)
	}
}

// TestGatewayShapesPassedThroughErrors: an upstream error of a Responses
// or embeddings call that is not an OpenAI error object (a proxy's HTML
// page, another server's shape) reaches the client as an OpenAI error of
// the same status quoting it, which the SDKs read; an OpenAI error passes
// as it came. With and without a budget to settle.
func TestGatewayShapesPassedThroughErrors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/embeddings"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"detail":[{"loc":["body","input"],"msg":"field required"}]}`)
		case r.Header.Get("X-Openai-Shaped") != "":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"bad model","type":"invalid_request_error","param":"model","code":null}}`)
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `<html><body>502 Bad Gateway</body></html>`)
		}
	}))
	defer up.Close()
	for _, pol := range []string{"version: 1\nname: devops\n", "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_tokens: 100000}\n"} {
		pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": pol}
		t.Setenv(upstreamEnv, upstreamKey)
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
		for _, c := range []struct {
			path, body, header string
			status             int
			quote              string
		}{
			{"/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, "", 502, "502 Bad Gateway"},
			{"/v1/embeddings", `{"model":"text-embedding-3-small","input":"hi"}`, "", 422, "field required"},
			{"/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, "X-Openai-Shaped", 400, "bad model"},
		} {
			var r *http.Response
			if c.header != "" {
				r = e.do(t, "POST", c.path, devopsKey, c.body, c.header, "yes")
			} else {
				r = e.do(t, "POST", c.path, devopsKey, c.body)
			}
			var eb struct {
				Error *struct{ Message, Type string } `json:"error"`
			}
			err := json.NewDecoder(r.Body).Decode(&eb)
			if r.StatusCode != c.status || err != nil || eb.Error == nil || eb.Error.Type == "" || !strings.Contains(eb.Error.Message, c.quote) ||
				r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s, policy %q: %d %s %+v (%v), want %d with an OpenAI error quoting %q", c.path, pol, r.StatusCode, r.Header.Get("Content-Type"), eb.Error, err, c.status, c.quote)
			}
		}
	}
}

// TestGatewayMasksKeysInPassedThroughErrors: an upstream that echoes the
// credentials it was sent (its key, which the gateway put there) in an
// error answer does not hand them to the caller, whatever the endpoint:
// the body of an error answer of an endpoint the gateway does not police
// (a file listing's HTML 401, an OpenAI error of a file upload, a body
// over 1 MiB, cut there) reaches the client with the key masked, its
// status kept and its Content-Length its new length (a body encoded with a
// Content-Encoding the gateway cannot read is replaced by an OpenAI error
// of its status); the OpenAI error of a
// Responses or embeddings call too. A successful answer passes as it
// came. Before, an error answer of an unpoliced endpoint passed untouched
// (no hook ran for it), and an OpenAI error body of a policed one kept the
// key.
func TestGatewayMasksKeysInPassedThroughErrors(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		auth := r.Header.Get("Authorization")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/files":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "<html>401: bad credentials "+auth+"</html>")
		case r.URL.Path == "/v1/files/big":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "sent "+strings.TrimPrefix(auth, "Bearer ")+" "+big)
		case r.URL.Path == "/v1/files/encoded": // (not brotli: the gateway cannot tell)
			w.Header().Set("Content-Encoding", "br")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "sent "+auth)
		case r.URL.Path == "/v1/files/ok":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[]}`)
		default: // an OpenAI error naming the key it was sent
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided: `+strings.TrimPrefix(auth, "Bearer ")+`","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
		}
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", defaultPolicies, ""))
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/files", "", 401},
		{"POST", "/v1/files", `{"purpose":"batch"}`, 401},
		{"GET", "/v1/files/big", "", 500},
		{"POST", "/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`, 401},
		{"POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hi"}`, 401},
	} {
		r := e.do(t, c.method, c.path, devopsKey, c.body)
		b, err := io.ReadAll(r.Body)
		if err != nil || r.StatusCode != c.status {
			t.Errorf("%s %s: %d (%v), want %d", c.method, c.path, r.StatusCode, err, c.status)
		}
		if strings.Contains(string(b), upstreamKey) || strings.Contains(string(b), upstreamKey[:24]) || !strings.Contains(string(b), "[REDACTED]") {
			t.Errorf("%s %s: the body %.200q is not masked", c.method, c.path, b)
		}
		if r.ContentLength != int64(len(b)) || len(b) > 1<<20 {
			t.Errorf("%s %s: Content-Length %d for a body of %d bytes (at most 1 MiB)", c.method, c.path, r.ContentLength, len(b))
		}
	}
	// A body the upstream encoded cannot be searched: an OpenAI error of
	// its status stands for it.
	r := e.do(t, "GET", "/v1/files/encoded", devopsKey, "")
	if eb := decodeError(t, r); r.StatusCode != http.StatusForbidden || r.Header.Get("Content-Encoding") != "" || strings.Contains(eb.Error.Message, upstreamKey) {
		t.Errorf("an encoded error body: %d %q %+v, want a 403 OpenAI error without it", r.StatusCode, r.Header.Get("Content-Encoding"), eb.Error)
	}
	r = e.do(t, "GET", "/v1/files/ok", devopsKey, "")
	if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != `{"object":"list","data":[]}` {
		t.Errorf("a successful answer: %d %s, want it as it came", r.StatusCode, b)
	}
}

// TestGatewayErrorsKeepTheirStatus: an error object inside a 200 answer
// or a stream (servers that send no status of their own: OpenRouter's
// numeric code, OpenAI-compatible servers that answer 200) reaches the
// client as the status its kind stands for, not as a 502 of the gateway;
// an upstream error answer with an empty body gets the type its status
// stands for, so that every SDK reads it.
func TestGatewayErrorsKeepTheirStatus(t *testing.T) {
	answers := map[string]struct {
		status int
		ct     string
		body   string
	}{
		"rate":       {200, "application/json", `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`},
		"openrouter": {200, "application/json", `{"error":{"message":"Provider returned error","code":429}}`},
		"invalid":    {200, "application/json", `{"error":{"message":"Invalid 'messages'","type":"invalid_request_error","param":"messages","code":null}}`},
		"quota":      {200, "application/json", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`},
		"stream":     {200, "text/event-stream", "data: {\"error\":{\"message\":\"Rate limit exceeded\",\"code\":429}}\n\n"},
		"empty429":   {429, "", ""},
		"empty504":   {504, "", ""},
		"empty404":   {404, "", ""},
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a := answers[r.Header.Get("X-Case")]
		if a.ct != "" {
			w.Header().Set("Content-Type", a.ct)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nfallback:\n  retry: {max_attempts: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for _, c := range []struct {
		name, typ string
		status    int
		stream    bool
	}{
		{"rate", "requests", 429, false},
		{"openrouter", "rate_limit_error", 429, false},
		{"invalid", "invalid_request_error", 400, false},
		{"quota", "insufficient_quota", 429, false},
		{"stream", "rate_limit_error", 429, true},
		{"empty429", "rate_limit_error", 429, false},
		{"empty504", "server_error", 504, false},
		{"empty404", "invalid_request_error", 404, false},
	} {
		body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":20` + map[bool]string{true: `,"stream":true}`, false: `}`}[c.stream]
		r := e.do(t, "POST", "/v1/chat/completions", devopsKey, body, "X-Case", c.name)
		var eb struct {
			Error *struct {
				Message string
				Type    *string
			} `json:"error"`
		}
		err := json.NewDecoder(r.Body).Decode(&eb)
		_ = r.Body.Close()
		if r.StatusCode != c.status || err != nil || eb.Error == nil || eb.Error.Type == nil || *eb.Error.Type != c.typ || eb.Error.Message == "" {
			t.Errorf("%s: %d %+v (%v), want %d with an OpenAI error of type %q", c.name, r.StatusCode, eb.Error, err, c.status, c.typ)
		}
	}
}

// headersUpstream answers chat completions, the Responses API and
// embeddings validly and keeps the headers of each path's last call.
func headersUpstream(t *testing.T) (*httptest.Server, func(path string) http.Header) {
	t.Helper()
	var (
		mu  sync.Mutex
		got = map[string]http.Header{}
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Clone()
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/embeddings"):
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}`)
		case strings.HasSuffix(r.URL.Path, "/responses"):
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}`)
		default:
			_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`)
		}
	}))
	t.Cleanup(up.Close)
	return up, func(path string) http.Header {
		mu.Lock()
		defer mu.Unlock()
		return got[path]
	}
}

// TestGatewayForwardsNoHopHeaders: what a client says of its own hop to
// the gateway is not sent upstream, on chat completions, the Responses
// API and embeddings: the headers its Connection header names, and a
// 100-continue expectation (curl sends one with a large body) — the
// gateway has the whole body before it calls, and forwarded, the
// expectation would hold the body back until the upstream's 100
// Continue, a second when a server sends none. The client's other
// headers pass.
func TestGatewayForwardsNoHopHeaders(t *testing.T) {
	up, got := headersUpstream(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	big := strings.Repeat("disk ", 600) // over curl's 1 KB: it would send Expect
	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"` + big + `"}]}`,
		"/v1/responses":        `{"model":"gpt-4o-mini","max_output_tokens":10,"input":"` + big + `"}`,
		"/v1/embeddings":       `{"model":"text-embedding-3-small","input":"` + big + `"}`,
	} {
		r := e.do(t, "POST", path, devopsKey, body, "Expect", "100-continue", "Connection", "keep-alive, X-Hop-Only", "X-Hop-Only", "1", "X-Team-Trace", "t1")
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		h := got(path)
		if r.StatusCode != http.StatusOK || h == nil {
			t.Fatalf("%s: %d, upstream headers %v", path, r.StatusCode, h)
		}
		if h.Get("Expect") != "" || h.Get("X-Hop-Only") != "" || h.Get("X-Team-Trace") != "t1" {
			t.Errorf("%s: the upstream got Expect %q, X-Hop-Only %q, X-Team-Trace %q; want none, none, t1", path, h.Get("Expect"), h.Get("X-Hop-Only"), h.Get("X-Team-Trace"))
		}
	}
}

// TestGatewayPassesAnswersOverItsBoundsWhole: a Responses answer larger
// than the gateway reads to charge it reaches the client whole, byte for
// byte (sized or chunked), never cut at the bound, and is charged its
// reservation (its usage is past what was read); an embeddings answer,
// never held back, reaches the client whole too, charged at its usage.
func TestGatewayPassesAnswersOverItsBoundsWhole(t *testing.T) {
	defer gateway.SetAnswerBounds(4 << 10)()
	pad := strings.Repeat("word ", 2000) // 10 KB, over the 4 KB bounds
	answers := map[string]string{
		"/v1/responses":  `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[{"type":"message","id":"m","status":"completed","role":"assistant","content":[{"type":"output_text","text":"` + pad + `","annotations":[]}]}],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}`,
		"/v1/embeddings": `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[` + strings.TrimSuffix(strings.Repeat("0.125,", 2000), ",") + `]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}`,
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		a := answers[r.URL.Path]
		if r.Header.Get("X-Sized") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(a)))
		}
		for b := a; len(b) > 0; { // in pieces, each flushed
			n := min(len(b), 1500)
			_, _ = io.WriteString(w, b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nmodels:\n  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}\nbudget:\n  team: {period: monthly, max_usd: 10}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for path, body := range map[string]string{
		"/v1/responses":  `{"model":"gpt-4o-mini","max_output_tokens":10,"input":"hi"}`,
		"/v1/embeddings": `{"model":"text-embedding-3-small","input":"hi"}`,
	} {
		for _, sized := range []string{"", "yes"} {
			before := e.spend(t)
			r := e.do(t, "POST", path, devopsKey, body, "X-Sized", sized)
			got, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if r.StatusCode != http.StatusOK || err != nil || string(got) != answers[path] {
				t.Fatalf("%s (sized %q): %d, %d of %d bytes (%v)", path, sized, r.StatusCode, len(got), len(answers[path]), err)
			}
			after := e.spend(t)
			if after.SpentTokens <= before.SpentTokens || after.ReservedUSD != "0.000000" && after.ReservedUSD != "" {
				t.Errorf("%s (sized %q): spend %+v after %+v: want the call charged, nothing left reserved", path, sized, after, before)
			}
		}
	}
}

// gzipped answers gzips its answers when the request accepts it, as
// OpenAI's edge does.
func gzipped(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(rec.Code)
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(rec.Body.Bytes())
		_ = zw.Close()
	})
}

// TestGatewayChargesCompressedAnswers: clients that accept gzip (the
// Python SDK's httpx asks for it on every request) get their Responses
// and embeddings calls charged at the answer's usage, not at their
// reservation: the gateway asks the upstream for the encoding it reads
// itself, and the client reads the answer as sent.
func TestGatewayChargesCompressedAnswers(t *testing.T) {
	var calls atomic.Int64
	inner := numberedResponses(t, &calls)
	up := httptest.NewServer(gzipped(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/embeddings") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":3,"total_tokens":3}}`)
			return
		}
		inner.Config.Handler.ServeHTTP(w, r)
	})))
	defer up.Close()
	e := embeddingsGateway(t, up, "1")
	for _, c := range []struct{ path, body, spent string }{
		// 1,000 input and 200 output tokens of gpt-4o-mini: $0.00027.
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50000}`, "0.000270"},
		// and 3 tokens of text-embedding-3-small at $0.02 per million.
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":"the runbook"}`, "0.000271"},
	} {
		resp := e.do(t, "POST", c.path, devopsKey, c.body, "Accept-Encoding", "gzip, deflate")
		body, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		}
		if resp.StatusCode != 200 || !json.Valid(body) {
			t.Fatalf("%s: %d %q", c.path, resp.StatusCode, body)
		}
		if s := e.spend(t); s.SpentUSD != c.spent {
			t.Fatalf("%s with Accept-Encoding gzip: spent $%s, want $%s (the answer's usage)", c.path, s.SpentUSD, c.spent)
		}
	}
}

// TestGatewaySendsItsUpstreamsOrganization: a client's OpenAI-Organization
// and OpenAI-Project (the Python SDK sends them from OPENAI_ORG_ID and
// OPENAI_PROJECT_ID) never reach the upstream: the gateway's key is not
// the client's (OpenAI refuses a key with another organization's header;
// a key of several organizations would bill the one the client names).
// An upstream's organization and project in the gateway file are sent
// instead, on chat completions, the Responses API and embeddings.
func TestGatewaySendsItsUpstreamsOrganization(t *testing.T) {
	up, got := headersUpstream(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	plain := writeFiles(t, up.URL+"/v1", pols, "")
	withOrg := writeFiles(t, up.URL+"/v1", pols, "")
	b, err := os.ReadFile(withOrg)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("    models: [gpt-4o-mini, gpt-4o]\n"), []byte("    models: [gpt-4o-mini, gpt-4o]\n    organization: org-platform\n    project: proj_agents\n"), 1)
	if err := os.WriteFile(withOrg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg, org, project string
	}{{plain, "", ""}, {withOrg, "org-platform", "proj_agents"}} {
		e := serveFile(t, tc.cfg)
		for path, body := range map[string]string{
			"/v1/chat/completions": `{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			"/v1/responses":        `{"model":"gpt-4o-mini","max_output_tokens":10,"input":"hi"}`,
			"/v1/embeddings":       `{"model":"text-embedding-3-small","input":"hi"}`,
		} {
			r := e.do(t, "POST", path, devopsKey, body, "OpenAI-Organization", "org-client", "OpenAI-Project", "proj_client")
			_, _ = io.Copy(io.Discard, r.Body)
			_ = r.Body.Close()
			h := got(path)
			if r.StatusCode != http.StatusOK || h == nil {
				t.Fatalf("%s: %d, upstream headers %v", path, r.StatusCode, h)
			}
			if h.Get("OpenAI-Organization") != tc.org || h.Get("OpenAI-Project") != tc.project || len(h.Values("OpenAI-Organization")) > 1 {
				t.Errorf("%s: the upstream got organization %q, project %q; want %q, %q", path, h.Values("OpenAI-Organization"), h.Values("OpenAI-Project"), tc.org, tc.project)
			}
		}
	}
}

// hostedToolsUpstream answers a Responses call with 1,000 input and 200
// output tokens and, by the request's metadata, the hosted tool calls
// the answer's output holds: "web" web search calls (their actions a
// search, a page opened), "files" file search calls, and code
// interpreter calls in the containers "containers" names (comma-separated);
// "tools", when set, is the answer's tools member.
func hostedToolsUpstream(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Stream   bool              `json:"stream"`
			Metadata map[string]string `json:"metadata"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		var out []string
		web, _ := strconv.Atoi(req.Metadata["web"])
		for i := range web {
			action := "search"
			if i%2 == 1 {
				action = "open_page"
			}
			out = append(out, fmt.Sprintf(`{"type":"web_search_call","id":"ws_%d","status":"completed","action":{"type":%q}}`, i, action))
		}
		files, _ := strconv.Atoi(req.Metadata["files"])
		for i := range files {
			out = append(out, fmt.Sprintf(`{"type":"file_search_call","id":"fs_%d","status":"completed","queries":["disks"],"results":null}`, i))
		}
		if c := req.Metadata["containers"]; c != "" {
			for i, id := range strings.Split(c, ",") {
				out = append(out, fmt.Sprintf(`{"type":"code_interpreter_call","id":"ci_%d","status":"completed","code":"print(1)","container_id":%q,"outputs":null}`, i, id))
			}
		}
		out = append(out, `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Done.","annotations":[]}]}`)
		if req.Metadata["junk"] == "yes" {
			out = append(out, `1`, `{"type":7}`) // items of no known shape
		}
		resp := `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini-2024-07-18","output":[` + strings.Join(out, ",") +
			`],"usage":{"input_tokens":1000,"output_tokens":200,"total_tokens":1200}}`
		if tools := req.Metadata["tools"]; tools != "" {
			// The tools the response ran with, as the answer lists them.
			resp = strings.Replace(resp, `"output":[`, `"tools":`+tools+`,"output":[`, 1)
		}
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			if req.Metadata["omit"] == "yes" {
				// The items in events of their own; the final event leaves
				// out the output.
				for i, it := range out {
					fmt.Fprintf(w, "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":%d,\"output_index\":%d,\"item\":%s}\n\n", i, i, it)
				}
				resp = strings.Replace(resp, `"output":[`+strings.Join(out, ",")+`],`, "", 1)
			}
			fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":99,\"response\":%s}\n\n", resp)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, resp)
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGatewayChargesHostedToolFees: a Responses call's hosted tools are
// charged their fees from the catalog's tool_calls on top of its tokens
// (1,000 input and 200 output tokens of gpt-4o-mini: $0.00027): each web
// search call of the answer at $0.01 ($0.025 for web_search_preview on a
// model without reasoning), each file search call at $0.0025, each
// container the call's code interpreter made at $0.03 (×4 for a 4 GB
// one); a container the request names by id is not the call's to pay,
// and a policy's tool_calls replaces the catalog's fee. The fees are
// reserved before the call — max_tool_calls of each declared tool — so a
// call whose fees the budget cannot afford is refused before it is sent.
// A stream is charged the fees of its final event's output, or of the
// items its events carried when the final event leaves the output out.
func TestGatewayChargesHostedToolFees(t *testing.T) {
	var calls atomic.Int64
	up := hostedToolsUpstream(t, &calls)
	t.Setenv(upstreamEnv, upstreamKey)
	for _, tc := range []struct {
		name, tools, meta, models string
		stream                    bool
		wantUSD                   string
	}{
		{"web search", `[{"type":"web_search"}]`, `{"web":"3"}`, "", false, "0.030270"},
		{"web search streamed", `[{"type":"web_search"}]`, `{"web":"2"}`, "", true, "0.020270"},
		{"web search streamed, the output in events", `[{"type":"web_search"}]`, `{"web":"2","omit":"yes"}`, "", true, "0.020270"},
		{"web search preview", `[{"type":"web_search_preview"}]`, `{"web":"2"}`, "", false, "0.050270"},
		{"web search beside stray items", `[{"type":"web_search"}]`, `{"web":"2","junk":"yes"}`, "", false, "0.020270"},
		{"file search", `[{"type":"file_search","vector_store_ids":["vs_1"]}]`, `{"files":"2"}`, "", false, "0.005270"},
		{"code interpreter", `[{"type":"code_interpreter","container":{"type":"auto"}}]`, `{"containers":"cntr_1,cntr_1,cntr_2"}`, "", false, "0.060270"},
		{"code interpreter 4g", `[{"type":"code_interpreter","container":{"type":"auto","memory_limit":"4g"}}]`, `{"containers":"cntr_1"}`, "", false, "0.120270"},
		{"a container of its own", `[{"type":"code_interpreter","container":"cntr_9"}]`, `{"containers":"cntr_9"}`, "", false, "0.000270"},
		{"no hosted tool", `[{"type":"function","name":"f"}]`, `{}`, "", false, "0.000270"},
		{"the policy's fee", `[{"type":"web_search"}]`, `{"web":"2"}`, "models:\n  gpt-4o-mini: {tool_calls: {web_search: 0.005}}\n", false, "0.010270"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pols := map[string]string{
				"default.yaml": "version: 1\nname: default\n",
				"devops.yaml":  "version: 1\nname: devops\n" + tc.models + "budget:\n  team: {period: monthly, max_usd: 10}\n",
			}
			e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
			body := `{"model":"gpt-4o-mini","input":"Check the disks.","max_output_tokens":500,"tools":` + tc.tools + `,"metadata":` + tc.meta
			if tc.stream {
				body += `,"stream":true`
			}
			resp := e.do(t, "POST", "/v1/responses", devopsKey, body+"}")
			out, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, out)
			}
			if s := e.spend(t); s.SpentUSD != tc.wantUSD || s.SpentTokens != 1200 {
				t.Fatalf("spent $%s and %d tokens, want $%s and 1200", s.SpentUSD, s.SpentTokens, tc.wantUSD)
			}
		})
	}

	// Reserved before the call: 128,000 − 500 input tokens and 500 output
	// tokens of gpt-4o-mini ($0.019425) and five web searches ($0.05) do
	// not fit $0.06: refused, never sent; with max_tool_calls 2, they fit.
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 0.06}\n",
	}
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	before := calls.Load()
	resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"news?","max_output_tokens":500,"max_tool_calls":5,"tools":[{"type":"web_search"}]}`)
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(out), "budget_exceeded") || calls.Load() != before {
		t.Fatalf("five web searches over the budget: %d %s, %d upstream calls", resp.StatusCode, out, calls.Load()-before)
	}
	resp = e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"news?","max_output_tokens":500,"max_tool_calls":2,"tools":[{"type":"web_search"}],"metadata":{"web":"2"}}`)
	out, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || calls.Load() != before+1 {
		t.Fatalf("two web searches within the budget: %d %s", resp.StatusCode, out)
	}
	if s := e.spend(t); s.SpentUSD != "0.020270" {
		t.Fatalf("spent $%s, want $0.020270", s.SpentUSD)
	}
}

// TestGatewayAnswersUpstreamRedirectsAsErrors: an upstream that redirects
// a Responses or embeddings call (a 3xx with a Location) is the caller's
// 502 OpenAI error, without the Location — the gateway does not send its
// callers, with their keys, to where its upstream points — and the call's
// reservation is released; an answer of another 2xx than 200 is charged
// as an answer (it was released, charged nothing, before).
func TestGatewayAnswersUpstreamRedirectsAsErrors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Metadata map[string]string `json:"metadata"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Metadata["status"] == "201" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[],"usage":{"input_tokens":1000,"output_tokens":200,"total_tokens":1200}}`)
			return
		}
		http.Redirect(w, r, "https://elsewhere.example/v1/responses", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(up.Close)
	e := embeddingsGateway(t, up, "1")
	for _, path := range []string{"/v1/responses", "/v1/embeddings"} {
		body := `{"model":"gpt-4o-mini","input":"Check the disks."}`
		if path == "/v1/embeddings" {
			body = `{"model":"text-embedding-3-small","input":"Check the disks."}`
		}
		r := e.do(t, "POST", path, devopsKey, body)
		var eb struct {
			Error struct{ Type, Code, Message string } `json:"error"`
		}
		if err := json.NewDecoder(r.Body).Decode(&eb); err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != http.StatusBadGateway || r.Header.Get("Location") != "" || eb.Error.Code != "upstream_error" || !strings.Contains(eb.Error.Message, "307") {
			t.Fatalf("%s redirected: %d (Location %q) %+v", path, r.StatusCode, r.Header.Get("Location"), eb.Error)
		}
	}
	if s := e.spend(t); s.SpentTokens != 0 || s.ReservedUSD != "0.000000" {
		t.Fatalf("redirected calls spent %d tokens, hold $%s", s.SpentTokens, s.ReservedUSD)
	}
	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"Check the disks.","metadata":{"status":"201"}}`)
	_, _ = io.ReadAll(r.Body)
	if s := e.spend(t); r.StatusCode != http.StatusCreated || s.SpentTokens != 1200 {
		t.Fatalf("a 201 answer: %d, spent %d tokens; want it charged its 1,200", r.StatusCode, s.SpentTokens)
	}
}

// TestGatewaySaysWhyItCannotReadAResponsesRequest: a Responses request a
// team's budget cannot account for is refused with what is wrong with it
// — a member of the wrong type or out of range, no model — not only that
// it needs a JSON body with a model (which it may well have).
func TestGatewaySaysWhyItCannotReadAResponsesRequest(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the upstream was called: %s", r.URL.Path)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for body, want := range map[string]string{
		`{"model":"gpt-4o","input":"hi","max_output_tokens":1e30}`: "max_output_tokens",
		`{"model":"gpt-4o","input":"hi","max_output_tokens":"9"}`:  "max_output_tokens",
		`{"input":"hi"}`: "it has no model",
	} {
		resp := e.do(t, "POST", "/v1/responses", devopsKey, body)
		var eb struct {
			Error struct{ Code, Type, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		_ = resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(eb.Error.Message, want) {
			t.Errorf("%s: %d %q, want a 400 that names %q", body, resp.StatusCode, eb.Error.Message, want)
		}
	}
}

// TestGatewayRefusesEncodedRequestBodies: a request body sent with a
// Content-Encoding (gzip) is one the gateway cannot read to police: chat,
// Responses and embeddings calls get a 415 unsupported_content_encoding
// that says so, before the upstream, instead of a 400 "invalid JSON at
// offset 0"; Content-Encoding: identity is a plain body.
func TestGatewayRefusesEncodedRequestBodies(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"error":{"message":"scripted","type":"invalid_request_error"}}`)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"input":"hi"}`)
	_ = zw.Close()
	for _, path := range []string{"/v1/chat/completions", "/v1/responses", "/v1/embeddings"} {
		resp := e.do(t, "POST", path, devopsKey, gz.String(), "Content-Encoding", "gzip")
		var eb struct {
			Error struct{ Code, Type, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType || eb.Error.Code != "unsupported_content_encoding" || !strings.Contains(eb.Error.Message, "Content-Encoding") {
			t.Errorf("%s, gzip: %d %+v, want a 415 unsupported_content_encoding", path, resp.StatusCode, eb)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("the upstream got %d encoded calls", calls.Load())
	}
	resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi"}`, "Content-Encoding", "identity")
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusUnsupportedMediaType || calls.Load() != 1 {
		t.Errorf("identity: %d, %d upstream calls; want the call passed", resp.StatusCode, calls.Load())
	}
}

// TestGatewayResponsesAreReservedAtTheProjectsDefaultTier: a team whose
// OpenAI project processes calls at priority by default says so
// (budget.default_service_tier: priority); a Responses call that names no
// tier is then reserved at gpt-4o's priority rates, as a chat call is, so
// one the team budget cannot afford at those rates is refused before it
// is sent — reserved at the standard rates, it went out, was billed at
// priority and the team spent past its budget.
func TestGatewayResponsesAreReservedAtTheProjectsDefaultTier(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o","service_tier":"priority","output":[],`+
			`"usage":{"input_tokens":10,"output_tokens":500,"total_tokens":510}}`)
	}))
	defer up.Close()
	// 500 output tokens of gpt-4o: $0.005 at the standard $10/1M, $0.0085
	// at priority's $17/1M; the budget, $0.006, affords only the former.
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nbudget:\n  default_service_tier: priority\n  team: {period: monthly, max_usd: 0.006}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for _, tier := range []string{``, `,"service_tier":"auto"`} {
		resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"Check the disks.","max_output_tokens":500`+tier+`}`)
		var eb struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		_ = resp.Body.Close()
		if s := e.spend(t); resp.StatusCode != http.StatusTooManyRequests || eb.Error.Code != "budget_exceeded" || calls.Load() != 0 || s.SpentUSD != "0.000000" {
			t.Fatalf("a call%s the budget affords only at the standard rates: %d %q after %d upstream calls, spent %s USD of 0.006; want the budget's 429 before the upstream",
				tier, resp.StatusCode, eb.Error.Code, calls.Load(), s.SpentUSD)
		}
	}
}

// TestGatewayResponsesCutAnswerIsChargedAtTheProjectsTier: a Responses
// call that names no tier, sent and timed out before its answer (billed
// by the provider, no usage to read), is charged its estimated input at
// the project's default tier (budget.default_service_tier: priority,
// gpt-4o's $4.25 per 1M input beside the standard $2.50), the tier the
// provider processed and billed it at. Before, it was charged at the
// standard rate.
func TestGatewayResponsesCutAnswerIsChargedAtTheProjectsTier(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // no answer before the gateway's timeout
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	input := strings.Repeat("Check the disks of every web host and report each mount. ", 400)
	spent := func(tier string) float64 {
		pols := map[string]string{
			"default.yaml": "version: 1\nname: default\n",
			"devops.yaml":  "version: 1\nname: devops\ntimeouts: {call: 300ms, total: 300ms}\nbudget:\n" + tier + "  team: {period: monthly, max_usd: 10}\n",
		}
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
		resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"`+input+`","max_output_tokens":50}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		usd, err := strconv.ParseFloat(e.spend(t).SpentUSD, 64)
		if err != nil || usd <= 0 {
			t.Fatalf("spent %q (%v): the cut call was not charged", e.spend(t).SpentUSD, err)
		}
		return usd
	}
	standard, priority := spent(""), spent("  default_service_tier: priority\n")
	if r := priority / standard; r < 1.68 || r > 1.72 {
		t.Fatalf("charged $%f under a priority project, $%f under a standard one: ratio %.3f, want 4.25/2.50 = 1.7", priority, standard, r)
	}
}
