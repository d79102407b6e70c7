package openai_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// capAt is a layer that caps a call's output as a budget does on a
// request without a limit.
func capAt(n int) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if req.MaxTokens > 0 && req.MaxTokens <= n {
				return next.Handle(ctx, req)
			}
			r := req.Clone()
			r.MaxTokens = n
			return next.Handle(ctx, r)
		})
	}
}

// TestCapSentAsMaxTokensWhereMaxCompletionTokensIsRefused: Azure OpenAI
// (many deployments and api-versions, go-openai's default 2023-05-15
// among them) refuses max_completion_tokens with a 400 "Unrecognized
// request argument supplied". A cap the chain sets on a request that had
// none (a budget's) is sent as max_completion_tokens; where it is refused
// so, the call goes again with max_tokens, which such a server knows, and
// so do the endpoint's later calls, at once. Before, every capped call
// failed with that 400, though the caller had sent a valid request. A
// caller's own max_completion_tokens is never rewritten.
func TestCapSentAsMaxTokensWhereMaxCompletionTokensIsRefused(t *testing.T) {
	var mu sync.Mutex
	var sent []map[string]any
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		sent = append(sent, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if _, ok := body["max_completion_tokens"]; ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"Unrecognized request argument supplied: max_completion_tokens","type":"invalid_request_error","param":null,"code":null}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}`)
	}))
	defer up.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	cfg := openai.DefaultAzureConfig("azure-key", up.URL)
	cfg.HTTPClient = twopenai.NewHTTPClient(capAt(500), twopenai.WithBaseTransport(base))
	c := openai.NewClientWithConfig(cfg)
	ask := func(stream bool, capped int) error {
		req := openai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: capped,
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Check the disk."}}}
		if !stream {
			_, err := c.CreateChatCompletion(context.Background(), req)
			return err
		}
		req.Stream = true
		s, err := c.CreateChatCompletionStream(context.Background(), req)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			if _, err := s.Recv(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}
	caps := func() (out []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range sent {
			switch {
			case b["max_completion_tokens"] != nil:
				out = append(out, "max_completion_tokens")
			case b["max_tokens"] != nil:
				out = append(out, "max_tokens")
			default:
				out = append(out, "none")
			}
		}
		sent = nil
		return out
	}
	if err := ask(false, 0); err != nil {
		t.Fatalf("capped call: %v", err)
	}
	if got := caps(); len(got) != 2 || got[0] != "max_completion_tokens" || got[1] != "max_tokens" {
		t.Fatalf("sent %q, want the refused max_completion_tokens, then max_tokens", got)
	}
	for _, stream := range []bool{false, true} {
		if err := ask(stream, 0); err != nil {
			t.Fatalf("capped call (stream %v): %v", stream, err)
		}
		if got := caps(); len(got) != 1 || got[0] != "max_tokens" {
			t.Fatalf("the endpoint's later call (stream %v) sent %q, want max_tokens at once", stream, got)
		}
	}
	// The caller's own member is the caller's: refused as it is.
	if err := ask(false, 100); err == nil {
		t.Fatal("the caller's max_completion_tokens was rewritten; want the server's refusal")
	}
	if got := caps(); len(got) != 1 || got[0] != "max_completion_tokens" {
		t.Fatalf("sent %q, want the caller's max_completion_tokens once", got)
	}
}
