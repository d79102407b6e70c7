package openai_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestProviderBaseURLWithAQuery: a Provider of an Azure deployment, whose
// base URL carries its api-version as a query, sends its chat completions
// to the deployment's path with that query (it sent them to the base with
// /chat/completions appended after the query).
func TestProviderBaseURLWithAQuery(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RequestURI()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`)
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	p := twopenai.NewProvider(srv.URL+"/openai/deployments/d/?api-version=2024-10-21", "k", twopenai.WithBaseTransport(base))
	if _, err := p.Handle(context.Background(), &middleware.Request{Model: "gpt-4o",
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	if want := "/openai/deployments/d/chat/completions?api-version=2024-10-21"; got != want {
		t.Fatalf("the request went to %q, want %q", got, want)
	}
}
