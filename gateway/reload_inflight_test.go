package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// heldUpstream answers /v1/embeddings and /v1/responses (JSON or a stream)
// with fixed usage — an embeddings call 1,000,000 input tokens, a
// Responses call 1,000,000 input and 1,000,000 output tokens — after it
// has told arrived the call came and release let it go.
func heldUpstream(t *testing.T, arrived chan<- string, release <-chan struct{}) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		arrived <- r.URL.Path
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		switch r.URL.Path {
		case "/v1/embeddings":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":%q,"usage":{"prompt_tokens":1000000,"total_tokens":1000000}}`, req.Model)
		case "/v1/responses":
			obj := `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"` + req.Model + `",` +
				`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
				`"usage":{"input_tokens":1000000,"input_tokens_details":{"cached_tokens":0},"output_tokens":1000000,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":2000000}}`
			if !req.Stream {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, obj)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":0,\"response\":%s}\n\n", obj)
		default:
			http.Error(w, "unexpected "+r.URL.Path, http.StatusBadRequest)
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGatewayPassedCallsInFlightKeepTheirPolicy: an embeddings call and a
// Responses stream in flight while a reload takes the price of their
// model out of the team's policy are charged at the price of the policy
// they were reserved under (as a chat call, which runs to its end under
// the chain it started with), never at the reloaded policy's: before,
// they were priced when their answer came, under the policy then in force,
// and charged $0 for what the provider billed.
func TestGatewayPassedCallsInFlightKeepTheirPolicy(t *testing.T) {
	arrived, release := make(chan string, 2), make(chan struct{})
	up := heldUpstream(t, arrived, release)
	priced := `version: 1
name: devops
models:
  my-embedder: {provider: local, input_per_1m: 1, output_per_1m: 0, embeddings: true}
  my-responder: {provider: local, input_per_1m: 1, output_per_1m: 2, max_output_tokens: 1000000, context_window: 2000000}
budget:
  team: {period: monthly, max_usd: 100}
`
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": priced}
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, up.URL+"/v1", pols, "")
	e := serveFile(t, cfgPath)

	emb := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(func() *http.Request {
			r, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+"/v1/embeddings", strings.NewReader(`{"model":"my-embedder","input":"hello"}`))
			r.Header.Set("Authorization", "Bearer "+devopsKey)
			r.Header.Set("Content-Type", "application/json")
			return r
		}())
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		emb <- err
	}()
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	str := make(chan error, 1)
	go func() {
		st := oc.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "my-responder", MaxOutputTokens: openai.Int(1000000),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		completed := false
		for st.Next() {
			completed = completed || st.Current().Type == "response.completed"
		}
		err := st.Err()
		if err == nil && !completed {
			err = fmt.Errorf("the stream ended without response.completed")
		}
		_ = st.Close()
		str <- err
	}()
	<-arrived
	<-arrived

	// The reload: the team's policy no longer prices either model.
	unpriced := "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 100}\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfgPath), "policies", "devops.yaml"), []byte(unpriced), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-emb; err != nil {
		t.Fatalf("embeddings call: %v", err)
	}
	if err := <-str; err != nil {
		t.Fatalf("responses stream: %v", err)
	}
	// $1 for the embeddings call's million input tokens; $1 + $2 for the
	// Responses call's million input and million output tokens.
	s := e.spend(t)
	if s.SpentUSD != "4.000000" || s.SpentTokens != 3000000 || s.ReservedUSD != "0.000000" {
		t.Fatalf("spent %s USD (%d tokens), %s reserved; want 4.000000 USD (3000000 tokens) charged at the prices the calls were reserved at, nothing held",
			s.SpentUSD, s.SpentTokens, s.ReservedUSD)
	}
}
