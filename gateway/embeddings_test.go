package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
)

// Embeddings pass through unchanged, and their usage is charged to the
// team's ledger (tokens, and the cost when the policy's catalog prices
// the model), which /v1/spend reads; once the team budget is spent, the
// next embeddings call is refused with an OpenAI-shaped 429 before it
// reaches the upstream.
func TestGatewayChargesEmbeddings(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": `version: 1
name: devops
models:
  text-embedding-3-small: {provider: openai, input_per_1m: 0.02, output_per_1m: 0}
budget:
  team: {period: monthly, max_usd: 0.03}
`,
	}
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
	t.Setenv(upstreamEnv, upstreamKey)
	cfg, err := gateway.LoadConfig(writeFiles(t, up.URL+"/v1", pols, ""))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()
	e := &env{url: gw.URL}
	spend := func() gateway.Spend {
		resp := e.do(t, "GET", "/v1/spend", devopsKey, "")
		var s gateway.Spend
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	const req = `{"model":"text-embedding-3-small","input":"hello"}`
	// 750,000 tokens at $0.02 per million: $0.015 a call.
	for i, want := range []string{"0.015000", "0.030000"} {
		resp := e.do(t, "POST", "/v1/embeddings", devopsKey, req)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != answer {
			t.Fatalf("call %d: %d %s, want the upstream's answer unchanged", i, resp.StatusCode, b)
		}
		if s := spend(); s.SpentUSD != want || s.SpentTokens != int64(750000*(i+1)) {
			t.Fatalf("after call %d: spent %s USD, %d tokens; want %s USD, %d tokens", i, s.SpentUSD, s.SpentTokens, want, 750000*(i+1))
		}
	}
	resp := e.do(t, "POST", "/v1/embeddings", devopsKey, req)
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != 429 || eb.Error.Code != "budget_exceeded" {
		t.Fatalf("a call with the budget spent: %d %+v, want 429 budget_exceeded", resp.StatusCode, eb)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("the upstream was reached %d times, want 2 (the refused call never reaches it)", n)
	}
}
