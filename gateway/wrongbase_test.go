package gateway_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
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

// TestNewWarnsOfABaseURLWithoutAPath: the gateway logs, as it starts, an
// upstream whose base_url has no path (Config.Warnings, which gateway
// check prints); one with its /v1 is not named.
func TestNewWarnsOfABaseURLWithoutAPath(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	for _, c := range []struct {
		base string
		warn bool
	}{{"http://127.0.0.1:8000", true}, {"http://127.0.0.1:8000/v1", false}} {
		cfg, err := gateway.LoadConfig(writeFiles(t, c.base, defaultPolicies, ""))
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		got := strings.Contains(logs.String(), "upstreams[0].base_url: http://127.0.0.1:8000 has no path")
		if got != c.warn {
			t.Errorf("base_url %s: logged a warning %v, want %v:\n%s", c.base, got, c.warn, logs.String())
		}
	}
	if w := (&gateway.Config{Upstreams: []gateway.Upstream{{Name: "a", BaseURL: "http://user:secret@10.0.0.1:8000?key=abc"}}}).Warnings(); len(w) != 1 ||
		strings.Contains(w[0].Msg, "secret") || strings.Contains(w[0].Msg, "abc") || !strings.Contains(w[0].Msg, "http://10.0.0.1:8000/v1") {
		t.Errorf("warnings of a base_url with user info and a query: %v, want one naming http://10.0.0.1:8000/v1 and neither the password nor the query", w)
	}
}
