package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// A gateway file whose upstream base_url leaves out the /v1 under which
// an OpenAI-compatible server serves the API (vLLM's, Ollama's,
// LiteLLM's: "http://localhost:8000") has its calls answered with the
// server's own 404 page. The client's error says what it is and what to
// do: check the upstream's base_url, which ends in /v1 for such servers
// — not only that some upstream sent a 404 without an OpenAI error
// object. Chat completions and passed-through calls alike, read by
// go-openai.
func TestGatewayWrongBaseURLSaysToCheckIt(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	up := openaitest.New()
	up.Default(openaitest.Text("hi"))
	mux := http.NewServeMux()
	mux.Handle("/v1/", up)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<html><body><h1>404 Not Found</h1></body></html>")
	})
	server := httptest.NewServer(mux)
	defer server.Close()
	chat := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}

	// The server as it is served: the call is answered.
	right := serveFile(t, writeFiles(t, server.URL+"/v1", defaultPolicies, ""))
	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = right.url + "/v1"
	if _, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(t.Context(), chat); err != nil {
		t.Fatalf("with base_url %s/v1: %v", server.URL, err)
	}

	wrong := serveFile(t, writeFiles(t, server.URL, defaultPolicies, ""))
	cfg.BaseURL = wrong.url + "/v1"
	client := goopenai.NewClientWithConfig(cfg)
	_, chatErr := client.CreateChatCompletion(t.Context(), chat)
	_, embErr := client.CreateEmbeddings(t.Context(), goopenai.EmbeddingRequest{Model: goopenai.SmallEmbedding3, Input: []string{"hi"}})
	for name, err := range map[string]error{"chat": chatErr, "embeddings": embErr} {
		var ae *goopenai.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: %v (%T), want an *openai.APIError", name, err, err)
			continue
		}
		if ae.HTTPStatusCode != http.StatusNotFound || !strings.Contains(ae.Message, "404 Not Found") ||
			!strings.Contains(ae.Message, "check the base_url of the upstream") || !strings.Contains(ae.Message, "/v1") {
			t.Errorf("%s: %d %q, want the 404 quoted and a hint to check the upstream's base_url (/v1)", name, ae.HTTPStatusCode, ae.Message)
		}
	}
}
