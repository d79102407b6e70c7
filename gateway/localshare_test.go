package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayLocalShareIsOneAndSurvivesReloads: with Redis down, a team
// budget with on_unavailable: local spends one local share (half of 5,000
// tokens) over its chat and passed-through calls alike, and a policy
// reload does not give it back. Two embeddings calls of 1,200 tokens
// spend 2,400 of the 2,500; a third is refused, after a reload too, and
// so is a chat call, which the 100 tokens left cannot hold. Before, the
// embeddings calls had a local share of their own, new at every reload,
// and the chat calls another.
func TestGatewayLocalShareIsOneAndSurvivesReloads(t *testing.T) {
	chat := openaitest.New()
	chat.Default(openaitest.Text("ok"))
	mux := http.NewServeMux()
	mux.Handle("/", chat)
	mux.HandleFunc("/v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string    `json:"model"`
			Input [][]int64 `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := 0
		for _, b := range req.Input {
			n += len(b)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, req.Model, n, n)
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_tokens: 5000}
  store: {kind: redis, on_unavailable: local, local_fraction: 0.5}
`,
		"payments.yaml": "version: 1\nname: payments\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, up.URL+"/v1", pols, fmt.Sprintf("redis: {addr: %q}\n", downRedis(t)))
	e := serveFile(t, cfgPath)

	ids := strings.TrimSuffix(strings.Repeat("1,", 1200), ",")
	embed := func() int {
		resp := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":[[`+ids+`]]}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for i := range 2 {
		if st := embed(); st != 200 {
			t.Fatalf("embeddings call %d within the local share: %d", i+1, st)
		}
	}
	if st := embed(); st != 429 {
		t.Fatalf("an embeddings call past the local share: %d, want 429", st)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfgPath), "policies", "payments.yaml"), []byte("version: 1\nname: payments\nlimits: {max_calls: 5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := embed(); st != 429 {
		t.Errorf("an embeddings call past the local share, after a reload: %d, want 429", st)
	}
	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}`)
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 429 {
		t.Errorf("a chat call the local share's 100 tokens left cannot hold: %d, want 429", resp.StatusCode)
	}
	if n := chat.Count(); n != 0 {
		t.Errorf("the upstream got %d chat calls, want 0", n)
	}
}

// downRedis is the address of a Redis that is down: it accepts each
// connection and closes it at once, so that every command fails.
func downRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}
