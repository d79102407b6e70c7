package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/gateway"
)

// modelUpstream is an upstream that answers each model as its script
// says: a status and an error message (failing), else a Responses answer
// (JSON or a stream, 1,000 input and 100 output tokens) or a chat
// completion; a canned 200 answer that begins with "event:" is sent as a
// stream. It keeps every request's path, model, key and body.
type modelUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	fail map[string]int    // model → the status it answers (0: answers)
	code map[string]string // model → the code of its error (none: null)
	body map[string]string // model → the body of its 200 answer (none: an answer)
	reqs []seenRequest
}

type seenRequest struct {
	path, model, auth string
	body              map[string]any
}

func newModelUpstream(t *testing.T) *modelUpstream {
	u := &modelUpstream{fail: map[string]int{}, code: map[string]string{}, body: map[string]string{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		model, _ := body["model"].(string)
		u.mu.Lock()
		u.reqs = append(u.reqs, seenRequest{path: r.URL.Path, model: model, auth: r.Header.Get("Authorization"), body: body})
		status, code := u.fail[model], "null"
		if c, ok := u.code[model]; ok {
			code = strconv.Quote(c)
		}
		canned := u.body[model]
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.Header().Set("Retry-After-Ms", "1")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"message":"%s is overloaded","type":"server_error","param":null,"code":%s}}`, model, code)
			return
		}
		if canned != "" {
			if strings.HasPrefix(canned, "event:") {
				w.Header().Set("Content-Type", "text/event-stream")
			}
			_, _ = io.WriteString(w, canned)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"from %s"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`, model, model)
			return
		}
		resp := func(status, usage string) string {
			return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"` + model + `","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"from ` + model + `","annotations":[]}]}],"usage":` + usage + `}`
		}
		const usage = `{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}`
		if body["stream"] != true {
			_, _ = io.WriteString(w, resp("completed", usage))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":%s}\n\n", resp("in_progress", "null"))
		fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"from %s\"}\n\n", model)
		fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":%s}\n\n", resp("completed", usage))
	}))
	t.Cleanup(u.Close)
	return u
}

// seen returns the models of the requests to path since the i-th request.
func (u *modelUpstream) seen(i int, path string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.reqs[i:] {
		if strings.HasSuffix(r.path, path) {
			out = append(out, r.model)
		}
	}
	return out
}

func (u *modelUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *modelUpstream) setCode(model, code string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.code[model] = code
}

func (u *modelUpstream) setFail(model string, status int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fail[model] = status
}

// fallbackPolicies are the policies of the fallback tests: devops falls
// back from any model to gpt-4o-mini, retries each model once more, and
// opens a model's breaker after two failed calls.
func fallbackPolicies(extra string) map[string]string {
	return map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 1}
fallback:
  models: [gpt-4o-mini]
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
  breaker: {consecutive_failures: 2, open_for: 1h}
` + extra}
}

// TestGatewayResponsesFallBack: a Responses call goes through the team's
// fallback section as a chat call does. The model that fails (a 503) is
// retried, then the call moves on to the fallback model, which answers:
// the client reads that answer (JSON, or a stream through openai-go's
// streaming client), the team is charged that model's usage at that
// model's price and nothing for the failed model, and the run's report
// has one call, of the fallback model, with its failed attempt under the
// failed model. After two
// failed calls the failed model's breaker is open: the next call goes to
// the fallback model at once, and so does a chat call to it — the
// breaker is the team's chat chain's own. The gateway's metrics count
// every fallback.
func TestGatewayResponsesFallBack(t *testing.T) {
	up := newModelUpstream(t)
	up.setFail("gpt-4o", http.StatusServiceUnavailable)
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", fallbackPolicies(""), ""))

	// A JSON call: gpt-4o twice (the retry), then gpt-4o-mini.
	const body = `{"model":"gpt-4o","input":"Check the disks.","max_output_tokens":500,"metadata":{"k":"v"}}`
	r := e.do(t, "POST", "/v1/responses", devopsKey, body, "X-Run-Id", "run-f")
	got, _ := io.ReadAll(r.Body)
	var answer struct {
		Model  string `json:"model"`
		Output []struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"output"`
	}
	if err := json.Unmarshal(got, &answer); err != nil || r.StatusCode != 200 || answer.Model != "gpt-4o-mini" ||
		len(answer.Output) != 1 || answer.Output[0].Content[0].Text != "from gpt-4o-mini" {
		t.Fatalf("JSON call: %d %s, want gpt-4o-mini's answer", r.StatusCode, got)
	}
	if s := up.seen(0, "/responses"); strings.Join(s, ",") != "gpt-4o,gpt-4o,gpt-4o-mini" {
		t.Fatalf("the upstream got %v, want gpt-4o twice (a retry), then gpt-4o-mini", s)
	}
	// The fallback model got the request as it was sent, but its model.
	up.mu.Lock()
	fb := up.reqs[2]
	up.mu.Unlock()
	if fb.body["input"] != "Check the disks." || fb.body["max_output_tokens"] != 500.0 || fmt.Sprint(fb.body["metadata"]) != "map[k:v]" ||
		fb.auth != "Bearer "+upstreamKey {
		t.Fatalf("the fallback model got %v with %q", fb.body, fb.auth)
	}
	// gpt-4o-mini: 1,000 input tokens at $0.15/M, 100 output at $0.60/M.
	if s := e.spend(t); s.SpentUSD != "0.000210" || s.SpentTokens != 1100 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("spend %+v, want $0.000210 (gpt-4o-mini's usage), nothing held", s)
	}
	var rep gateway.RunReport
	rr := e.do(t, "GET", "/v1/runs/run-f", devopsKey, "")
	if err := json.NewDecoder(rr.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	failed, tried := rep.ByModel["gpt-4o"]
	if rep.Calls != 1 || rep.FailedCalls != 0 || rep.CostPico != 210_000_000 || !tried || failed.CostPico != 0 ||
		rep.ByModel["gpt-4o-mini"].Calls != 1 || rep.ByModel["gpt-4o-mini"].CostPico != 210_000_000 {
		t.Fatalf("run report %+v by model %+v: want one call of gpt-4o-mini, 210,000,000 pico-USD, gpt-4o's failed attempt at 0", rep.RunFigures, rep.ByModel)
	}

	// A stream, read by openai-go: the second failed call of gpt-4o.
	n := up.count()
	text, final, completed, err := streamResponses(t, e, "gpt-4o", "Check the disks.")
	if err != nil || text != "from gpt-4o-mini" || completed != 1 || final.Model != "gpt-4o-mini" || final.Usage.OutputTokens != 100 {
		t.Fatalf("stream: %q, final model %q usage %+v, err %v; want gpt-4o-mini's stream", text, final.Model, final.Usage, err)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o,gpt-4o,gpt-4o-mini" {
		t.Fatalf("the stream's call: the upstream got %v", s)
	}
	if s := e.spend(t); s.SpentUSD != "0.000420" || s.ReservedUSD != "0.000000" {
		t.Fatalf("spend after the stream %+v, want $0.000420", s)
	}

	// Two failed calls: gpt-4o's breaker is open. Neither a Responses call
	// nor a chat call reaches it; both are answered by gpt-4o-mini.
	n = up.count()
	r = e.do(t, "POST", "/v1/responses", devopsKey, body)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o-mini") {
		t.Fatalf("a call with gpt-4o's breaker open: %d %s", r.StatusCode, got)
	}
	r = e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o-mini") {
		t.Fatalf("a chat call with gpt-4o's breaker open: %d %s", r.StatusCode, got)
	}
	if s := up.seen(n, ""); strings.Join(s, ",") != "gpt-4o-mini,gpt-4o-mini" {
		t.Fatalf("with gpt-4o's breaker open the upstream got %v, want gpt-4o-mini only", s)
	}
	// Every fallback is in the gateway's metrics: the three Responses
	// calls' and the chat call's.
	m, _ := io.ReadAll(e.do(t, "GET", "/metrics", "", "").Body)
	var fallbacks string
	for line := range strings.SplitSeq(string(m), "\n") {
		if strings.HasPrefix(line, "tokenwise_fallbacks_total{") && strings.Contains(line, `tokenwise_from="gpt-4o"`) && strings.Contains(line, `tokenwise_to="gpt-4o-mini"`) {
			fallbacks = line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	if fallbacks != "4" {
		t.Fatalf("tokenwise_fallbacks_total from gpt-4o to gpt-4o-mini: %q, want 4; metrics:\n%s", fallbacks, m)
	}
}

// TestGatewayResponsesFallbackEnds: what a Responses call whose fallback
// cannot help gets. When every model fails, the last model's error answer
// (its status and OpenAI error), nothing charged or held. An error that
// fallback.on does not name (a 400) is passed on at once, not moved on. A
// fallback model the budget cannot afford is never sent: the call gets
// the budget's 429.
func TestGatewayResponsesFallbackEnds(t *testing.T) {
	up := newModelUpstream(t)
	up.setFail("gpt-4o", http.StatusServiceUnavailable)
	up.setFail("gpt-4o-mini", http.StatusTooManyRequests)
	t.Setenv(upstreamEnv, upstreamKey)
	pols := fallbackPolicies("")
	pols["payments.yaml"] = `version: 1
name: payments
budget:
  team: {period: monthly, max_usd: 0.01}
fallback:
  models: [gpt-4o]
`
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi"}`)
	eb := decodeError(t, r)
	if r.StatusCode != 429 || eb.Error.Message != "gpt-4o-mini is overloaded" {
		t.Fatalf("every model failed: %d %+v, want gpt-4o-mini's 429", r.StatusCode, eb)
	}
	if s := up.seen(0, "/responses"); strings.Join(s, ",") != "gpt-4o,gpt-4o,gpt-4o-mini,gpt-4o-mini" {
		t.Fatalf("the upstream got %v", s)
	}
	if s := e.spend(t); s.SpentUSD != "0.000000" || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("spend %+v, want nothing spent or held", s)
	}

	up.setFail("gpt-4o", http.StatusBadRequest)
	n := up.count()
	r = e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi"}`)
	if eb := decodeError(t, r); r.StatusCode != 400 || eb.Error.Message != "gpt-4o is overloaded" {
		t.Fatalf("a 400: %d %+v, want gpt-4o's 400", r.StatusCode, eb)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o" {
		t.Fatalf("a 400: the upstream got %v, want gpt-4o once", s)
	}

	// payments falls back from gpt-4o-mini to gpt-4o, whose worst case
	// (its whole 16,384 output tokens at $10/M) is over its $0.01.
	n = up.count()
	r = e.do(t, "POST", "/v1/responses", paymentsKey, `{"model":"gpt-4o-mini","input":"hi"}`)
	if eb := decodeError(t, r); r.StatusCode != 429 || eb.Error.Code == nil || *eb.Error.Code != "budget_exceeded" {
		t.Fatalf("an unaffordable fallback model: %d %+v, want 429 budget_exceeded", r.StatusCode, eb)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini" {
		t.Fatalf("an unaffordable fallback model: the upstream got %v, want gpt-4o-mini only", s)
	}
}

// TestGatewayResponsesFallbackGoesToTheModelsUpstream: a Responses call
// moved to a model of another upstream is sent to that upstream, with its
// key: neither upstream sees the other's key or a model it does not serve.
func TestGatewayResponsesFallbackGoesToTheModelsUpstream(t *testing.T) {
	const keyB = "sk-upstream-b-99887766554433221100ffeeddcc"
	t.Setenv(upstreamEnv, upstreamKey)
	t.Setenv("TOKENWISE_GATEWAY_TEST_UPSTREAM_B", keyB)
	a, b := newModelUpstream(t), newModelUpstream(t)
	a.setFail("gpt-4o", http.StatusInternalServerError)
	pol := "version: 1\nname: devops\nmodels:\n  local-llama: {provider: openai, input_per_1m: 0.1, output_per_1m: 0.1}\nfallback:\n  models: [local-llama]\n"
	cfgPath := twoUpstreams(t, a.URL+"/v1", b.URL+"/v1", "local-llama", pol)
	e := serveFile(t, cfgPath)
	r := e.do(t, "POST", "/v1/responses?trace=1", devopsKey, `{"model":"gpt-4o","input":"hi"}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), "from local-llama") {
		t.Fatalf("%d %s, want local-llama's answer", r.StatusCode, got)
	}
	if s := a.seen(0, "/v1/responses"); strings.Join(s, ",") != "gpt-4o" {
		t.Fatalf("upstream a got %v", s)
	}
	if s := b.seen(0, "/v1/responses"); strings.Join(s, ",") != "local-llama" {
		t.Fatalf("upstream b got %v", s)
	}
	if ra, rb := a.reqs[0], b.reqs[0]; ra.auth != "Bearer "+upstreamKey || rb.auth != "Bearer "+keyB {
		t.Fatalf("keys: a got %q, b got %q", ra.auth, rb.auth)
	}
}

// TestGatewayResponsesFallbackOnLimitsAndWindows: a Responses call moves
// on when its model's rate limit says on_limit: fallback (the limited
// model is never sent: the next model, admitted by its own limits,
// answers), and a context-window error moves it on to a model with a
// larger window only, skipping a fallback model whose window is no
// larger.
func TestGatewayResponsesFallbackOnLimitsAndWindows(t *testing.T) {
	up := newModelUpstream(t)
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": `version: 1
name: devops
models:
  small-window: {provider: openai, input_per_1m: 0.1, output_per_1m: 0.1, context_window: 8000, max_output_tokens: 1000}
  same-window:  {provider: openai, input_per_1m: 0.1, output_per_1m: 0.1, context_window: 8000, max_output_tokens: 1000}
rate_limits:
  models:
    gpt-4o: {rpm: 1}
  on_limit: fallback
fallback:
  models: [same-window, gpt-4o-mini]
`}
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for i := range 2 {
		r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi"}`)
		if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, r.StatusCode, got)
		}
	}
	if s := up.seen(0, "/responses"); strings.Join(s, ",") != "gpt-4o,same-window" {
		t.Fatalf("the upstream got %v, want gpt-4o, then (its one request a minute spent) same-window", s)
	}

	up.setFail("small-window", http.StatusBadRequest)
	n := up.count()
	// The upstream's 400 says context_length_exceeded.
	up.setCode("small-window", "context_length_exceeded")
	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"small-window","input":"hi"}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o-mini") {
		t.Fatalf("a context-window error: %d %s, want gpt-4o-mini's answer", r.StatusCode, got)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "small-window,gpt-4o-mini" {
		t.Fatalf("a context-window error: the upstream got %v, want small-window then (not same-window) gpt-4o-mini (128k)", s)
	}
}

// TestGatewayResponsesEmbeddedErrors: a 200 whose body is an error object
// instead of a response (OpenRouter's {"error": {"code": 429, ...}}) is
// the error its code stands for: retried and moved on like a 429 (the
// fallback model's answer, charged alone), or, with nowhere to move on,
// the client's 429 — never an answer charged at its reservation; so is
// one of an embeddings call. A response object that failed (status
// "failed", its own "error") is an answer: passed on, charged at its
// usage.
func TestGatewayResponsesEmbeddedErrors(t *testing.T) {
	up := newModelUpstream(t)
	up.mu.Lock()
	up.body["gpt-4o"] = `{"error":{"message":"Rate limit exceeded: upstream","code":429,"metadata":{"provider_name":"OpenAI"}}}`
	up.body["text-embedding-3-small"] = `{"error":{"message":"Provider returned error"}}`
	up.body["o3"] = `{"id":"resp_f","object":"response","status":"failed","model":"o3","error":{"code":"server_error","message":"The model failed."},"output":[],"usage":{"input_tokens":1000,"output_tokens":100,"total_tokens":1100}}`
	up.mu.Unlock()
	t.Setenv(upstreamEnv, upstreamKey)
	pols := fallbackPolicies("")
	pols["payments.yaml"] = "version: 1\nname: payments\nbudget:\n  team: {period: monthly, max_usd: 1}\n"
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

	r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi"}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), "from gpt-4o-mini") {
		t.Fatalf("devops: %d %s, want gpt-4o-mini's answer", r.StatusCode, got)
	}
	if s := up.seen(0, "/responses"); strings.Join(s, ",") != "gpt-4o,gpt-4o,gpt-4o-mini" {
		t.Fatalf("devops: the upstream got %v", s)
	}
	if s := e.spend(t); s.SpentUSD != "0.000210" || s.ReservedUSD != "0.000000" {
		t.Fatalf("devops: spend %+v, want gpt-4o-mini's usage, $0.000210", s)
	}

	spend := func() gateway.Spend {
		var sp gateway.Spend
		if err := json.NewDecoder(e.do(t, "GET", "/v1/spend", paymentsKey, "").Body).Decode(&sp); err != nil {
			t.Fatal(err)
		}
		return sp
	}
	r = e.do(t, "POST", "/v1/responses", paymentsKey, `{"model":"gpt-4o","input":"hi"}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 429 || !strings.Contains(string(got), "Rate limit exceeded: upstream") {
		t.Fatalf("payments: %d %s, want a 429 quoting the error", r.StatusCode, got)
	}
	if s := spend(); s.SpentUSD != "0.000000" || s.SpentTokens != 0 || s.ReservedUSD != "0.000000" {
		t.Fatalf("payments: spend %+v after an error answer, want nothing", s)
	}
	r = e.do(t, "POST", "/v1/embeddings", paymentsKey, `{"model":"text-embedding-3-small","input":"hi"}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 500 || !strings.Contains(string(got), "Provider returned error") {
		t.Fatalf("payments, embeddings: %d %s, want a 500 quoting the error", r.StatusCode, got)
	}
	if s := spend(); s.SpentTokens != 0 || s.ReservedUSD != "0.000000" {
		t.Fatalf("payments: spend %+v after an embeddings error answer, want nothing", s)
	}
	r = e.do(t, "POST", "/v1/responses", paymentsKey, `{"model":"o3","input":"hi"}`)
	if got, _ := io.ReadAll(r.Body); r.StatusCode != 200 || !strings.Contains(string(got), `"status":"failed"`) {
		t.Fatalf("payments, a failed response: %d %s, want it passed on", r.StatusCode, got)
	}
	// o3: 1,000 input tokens at $2/M, 100 output at $8/M.
	if s := spend(); s.SpentUSD != "0.002800" || s.SpentTokens != 1100 {
		t.Fatalf("payments: spend %+v after a failed response, want its usage, $0.002800", s)
	}
}

// streamResponses streams a Responses call of model and input through the
// gateway with openai-go's streaming client (its own retries off), and
// returns the text of its deltas, its last response.completed event's
// response, the number of those events, and the stream's error.
func streamResponses(t *testing.T, e *env, model, input string) (string, responses.Response, int, error) {
	t.Helper()
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	st := oc.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: model,
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(input)}})
	defer st.Close()
	var text string
	var final responses.Response
	completed := 0
	for st.Next() {
		switch ev := st.Current(); ev.Type {
		case "response.output_text.delta":
			text += ev.Delta
		case "response.completed":
			final = ev.Response
			completed++
		}
	}
	return text, final, completed, st.Err()
}
