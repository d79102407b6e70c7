package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tiktoken-go/tokenizer"

	"github.com/tokenwise/tokenwise/gateway"
)

// Embeddings pass through unchanged, and their usage is charged to the
// team's ledger (tokens, and the cost when the policy's catalog prices
// the model), which /v1/spend reads; once the team budget is spent, the
// next embeddings call is refused with an OpenAI-shaped 429 before it
// reaches the upstream.
func TestGatewayChargesEmbeddings(t *testing.T) {
	// The scripted upstream answers chat completions only: this one
	// answers embeddings.
	answer := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":750000,"total_tokens":750000}}`
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/embeddings" || r.Header.Get("Authorization") != "Bearer "+upstreamKey {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	defer up.Close()
	e := embeddingsGateway(t, up, "0.03")
	const req = `{"model":"text-embedding-3-small","input":"hello"}`
	// 750,000 tokens at $0.02 per million: $0.015 a call.
	for i, want := range []string{"0.015000", "0.030000"} {
		resp := e.do(t, "POST", "/v1/embeddings", devopsKey, req)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != answer {
			t.Fatalf("call %d: %d %s, want the upstream's answer unchanged", i, resp.StatusCode, b)
		}
		if s := e.spend(t); s.SpentUSD != want || s.SpentTokens != int64(750000*(i+1)) {
			t.Fatalf("after call %d: spent %s USD, %d tokens; want %s USD, %d tokens", i, s.SpentUSD, s.SpentTokens, want, 750000*(i+1))
		}
	}
	resp := e.do(t, "POST", "/v1/embeddings", devopsKey, req)
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != 429 || eb.Error.Code != "budget_exceeded" {
		t.Fatalf("a call with the budget spent: %d %+v, want 429 budget_exceeded", resp.StatusCode, eb)
	}
	// LangChain JS (and LangGraph's retry policy) retries a 429 unless its
	// code is insufficient_quota or its message matches one of its quota
	// patterns, this one among them (@langchain/core's async_caller): the
	// refusal says so, and they stop instead of retrying it.
	if !regexp.MustCompile(`(?i)insufficient[_ -]?quota`).MatchString(eb.Error.Message) {
		t.Errorf("the refusal's message %q does not say insufficient quota: LangChain JS would retry it", eb.Error.Message)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("the upstream was reached %d times, want 2 (the refused call never reaches it)", n)
	}
}

// embeddingsUpstream is an upstream that answers embeddings with the
// usage the provider bills: the input's tokens counted by tiktoken-go's
// cl100k_base (the encoding of OpenAI's embeddings models). Before it
// answers, each call waits for release (nil: none) and reports to arrived.
func embeddingsUpstream(t *testing.T, arrived chan<- struct{}, release <-chan struct{}, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	codec, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string          `json:"model"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var n int
		var text string
		var ids [][]int
		switch {
		case json.Unmarshal(req.Input, &text) == nil:
			n, _ = codec.Count(text)
		case json.Unmarshal(req.Input, &ids) == nil:
			for _, b := range ids {
				n += len(b)
			}
		default:
			http.Error(w, "unexpected input", http.StatusBadRequest)
			return
		}
		calls.Add(1)
		if arrived != nil {
			arrived <- struct{}{}
		}
		if release != nil {
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, req.Model, n, n)
	}))
	t.Cleanup(up.Close)
	return up
}

// embeddingsGateway starts a gateway in front of up whose devops team has
// a team budget of limitUSD (monthly) and prices text-embedding-3-small at
// $0.02 per million input tokens.
func embeddingsGateway(t *testing.T, up *httptest.Server, limitUSD string) *env {
	t.Helper()
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": `version: 1
name: devops
models:
  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}
budget:
  team: {period: monthly, max_usd: ` + limitUSD + `}
`,
	}
	t.Setenv(upstreamEnv, upstreamKey)
	return serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
}

func (e *env) spend(t *testing.T) gateway.Spend {
	t.Helper()
	return e.spendOf(t, devopsKey)
}

// spendOf returns the spend of key's team.
func (e *env) spendOf(t *testing.T, key string) gateway.Spend {
	t.Helper()
	resp := e.do(t, "GET", "/v1/spend", key, "")
	var s gateway.Spend
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGatewayEmbeddingsNeverOvershootTheBudget: twenty concurrent
// embeddings calls of 1,000 tokens ($0.00002 each) against a team budget
// of $0.0001: each call's input is counted and reserved before it is
// sent, so exactly five reach the upstream (whose bill, counted by
// tiktoken-go, is what was reserved) and fifteen are refused with an
// OpenAI-shaped 429 while the five are in flight; the team has spent
// exactly its budget, never more.
func TestGatewayEmbeddingsNeverOvershootTheBudget(t *testing.T) {
	const n = 20
	arrived, release := make(chan struct{}, n), make(chan struct{})
	var calls atomic.Int64
	e := embeddingsGateway(t, embeddingsUpstream(t, arrived, release, &calls), "0.0001")
	input := strings.Repeat(" hello", 1000) // 1,000 cl100k_base tokens
	body := `{"model":"text-embedding-3-small","input":"` + input + `"}`
	refused := make(chan struct{}, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/embeddings", strings.NewReader(body))
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
	// The upstream holds every call it gets until all twenty have either
	// reached it or been refused: the calls in flight overlap.
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
	if c := calls.Load(); c != 5 || s.SpentUSD != "0.000100" || s.SpentTokens != 5000 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("%d calls reached the upstream; spent %s USD and %d tokens, %s USD reserved by %d calls; want 5 calls, exactly the budget (0.000100 USD, 5000 tokens), nothing held",
			c, s.SpentUSD, s.SpentTokens, s.ReservedUSD, s.InFlightCalls)
	}
}

// TestGatewayEmbeddingsReleaseWhatTheyDoNotSpend: an embeddings call the
// upstream refuses spends nothing and holds nothing afterwards; a call
// whose input is token ids reserves and is charged their number.
func TestGatewayEmbeddingsReleaseWhatTheyDoNotSpend(t *testing.T) {
	var calls atomic.Int64
	e := embeddingsGateway(t, embeddingsUpstream(t, nil, nil, &calls), "1")
	resp := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":{"not":"an input"}}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an input the upstream refuses: %d, want its 400", resp.StatusCode)
	}
	if s := e.spend(t); s.SpentTokens != 0 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("after a refused call: %+v, want nothing spent or held", s)
	}
	resp = e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":[[1,2,3],[4,5]]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token ids: %d", resp.StatusCode)
	}
	if s := e.spend(t); s.SpentTokens != 5 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("after a call of 5 token ids: %+v, want 5 tokens spent, nothing held", s)
	}
}

// TestGatewayEmbeddingsNegativeUsageIsChargedTheEstimate: an embeddings
// answer whose usage is negative (a broken or hostile upstream) is charged
// what was reserved for its input, never settled as given (which would take
// spend off the team budget).
func TestGatewayEmbeddingsNegativeUsageIsChargedTheEstimate(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":-1000000,"total_tokens":-1000000}}`)
	}))
	defer up.Close()
	e := embeddingsGateway(t, up, "1")
	if resp := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"hello world"}`); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// "hello world" is 2 tokens of cl100k_base: reserved, then charged.
	if s := e.spend(t); s.SpentTokens != 2 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Fatalf("after an answer of negative usage: %+v, want its 2 reserved tokens charged", s)
	}
}

// TestGatewayEmbeddingsAreRateLimited: an embeddings call is admitted
// against its model's rate limits: its counted input against the tokens
// per minute, settled at the answer's usage, and a call that does not fit
// is refused with the rate limits' 429 before it reaches the upstream.
func TestGatewayEmbeddingsAreRateLimited(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		// The upstream counts 10 tokens, whatever the input.
		_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":10,"total_tokens":10}}`)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nmodels:\n  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}\n" +
			"rate_limits:\n  on_limit: reject\n  models:\n    text-embedding-3-small: {tpm: 1000, burst: 1m}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	// 600 tokens of input: "word" counted once each by cl100k_base.
	input := strings.TrimSpace(strings.Repeat(" word", 600))
	embed := func() (int, string) {
		r := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"`+input+`"}`)
		var eb struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&eb)
		return r.StatusCode, eb.Error.Code
	}
	// Each holds 600 of the 1,000 and settles at the 10 the upstream
	// counted: the second fits only because the first was settled, and
	// so does the third.
	for i := range 2 {
		if st, code := embed(); st != 200 {
			t.Fatalf("call %d: %d %s", i+1, st, code)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d upstream calls, want 2", calls.Load())
	}
	if st, code := embed(); st != 200 {
		t.Fatalf("call 3 (20 tokens used of 1,000): %d %s", st, code)
	}
	// Now 30 are used: a call whose input alone is over what is left is refused.
	big := strings.TrimSpace(strings.Repeat(" word", 980))
	r := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"`+big+`"}`)
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(r.Body).Decode(&eb)
	if r.StatusCode != 429 || eb.Error.Code != "rate_limit_exceeded" || calls.Load() != 3 {
		t.Fatalf("a call over the tokens per minute: %d %s after %d upstream calls, want 429 rate_limit_exceeded and 3", r.StatusCode, eb.Error.Code, calls.Load())
	}
}

// TestGatewayPricesEmbeddingsFromTheCatalog: a team whose policy prices
// no model has its embeddings calls charged at the embedded catalog's
// prices of OpenAI's embeddings models (before, they were counted in
// tokens only, at $0, with a warning that the catalog had no price).
func TestGatewayPricesEmbeddingsFromTheCatalog(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Model string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":%q,"usage":{"prompt_tokens":1000000,"total_tokens":1000000}}`, req.Model)
	}))
	defer up.Close()
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	// A million input tokens each: $0.02, $0.13 and $0.10.
	for _, c := range []struct{ model, spent string }{
		{"text-embedding-3-small", "0.020000"},
		{"text-embedding-3-large", "0.150000"},
		{"text-embedding-ada-002", "0.250000"},
	} {
		resp := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"`+c.model+`","input":"hello"}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", c.model, resp.StatusCode)
		}
		if s := e.spend(t); s.SpentUSD != c.spent {
			t.Errorf("after a call of %s: spent %s USD, want %s", c.model, s.SpentUSD, c.spent)
		}
	}
}

// TestGatewayRefusesUnpricedEmbeddingsUnderAUSDBudget: under a team's USD
// budget an embeddings call to a model neither the catalog nor the
// team's policy prices is refused with the gateway's 400 model_not_priced
// before it reaches the upstream, as a chat or Responses call is — it was
// sent and charged $0, so a USD budget never held such calls. A priced
// model is charged as before.
func TestGatewayRefusesUnpricedEmbeddingsUnderAUSDBudget(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct{ Model string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":%q,"usage":{"prompt_tokens":1000000,"total_tokens":1000000}}`, req.Model)
	}))
	defer up.Close()
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	resp := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"mistral-embed","input":"hello"}`)
	var eb struct {
		Error struct{ Code, Type string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || eb.Error.Code != "model_not_priced" || calls.Load() != 0 {
		t.Fatalf("an unpriced embeddings model under a USD budget: %d %+v after %d upstream calls, want the gateway's 400 model_not_priced before the upstream",
			resp.StatusCode, eb, calls.Load())
	}
	resp = e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"hello"}`)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if s := e.spend(t); resp.StatusCode != http.StatusOK || s.SpentUSD != "0.020000" || calls.Load() != 1 {
		t.Errorf("a priced embeddings call: %d, spent %s USD after %d upstream calls; want 200, 0.020000 and 1", resp.StatusCode, s.SpentUSD, calls.Load())
	}
}
