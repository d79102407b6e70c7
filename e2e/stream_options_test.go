package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// A server that does not know stream_options (Azure OpenAI before
// api-version 2024-09-01-preview answers 400 "Unrecognized request argument
// supplied: stream_options") streams through tokenwise as it does for
// go-openai alone: the stream tokenwise sent with stream_options (to learn
// its usage) goes again without it, and the endpoint's later streams are
// sent without it at once. Its spend is settled at the estimate, as any
// stream's without usage. Another 400 is the caller's error, not retried.
func TestStreamWithoutStreamOptions(t *testing.T) {
	t.Parallel()
	var withOptions, without, other atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case bytes.Contains(body, []byte(`"model":"gpt-4o-mini"`)):
			other.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"The model does not exist","type":"invalid_request_error","param":"model","code":null}}`)
		case bytes.Contains(body, []byte(`"stream_options"`)):
			withOptions.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error","param":null,"code":null}}`)
		default:
			without.Add(1)
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
		}
	}))
	t.Cleanup(srv.Close)
	p := mustPolicy(t, "version: 1\nname: azure\nbudget: {team: {period: daily, max_usd: 10}}\n")
	store := budget.NewMemoryStore()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store)), twopenai.WithBaseTransport(base))
	client := goopenai.NewClientWithConfig(cfg)
	ctx := middleware.WithTeam(context.Background(), "sre")
	stream := func(model string) (string, error) {
		return streamText(ctx, client, goopenai.ChatCompletionRequest{
			Model: model, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hello"}}})
	}
	for i := range 2 {
		text, err := stream("gpt-4o")
		if err != nil || text != "hi" {
			t.Fatalf("stream %d: %q, %v", i+1, text, err)
		}
		if withOptions.Load() != 1 || without.Load() != int64(i+1) {
			t.Fatalf("after stream %d: %d requests with stream_options, %d without; want 1 and %d", i+1, withOptions.Load(), without.Load(), i+1)
		}
	}
	b, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	if rem, err := b.Remaining(ctx, "sre"); err != nil || rem.Used.Tokens == 0 || !rem.Reserved.IsZero() {
		t.Fatalf("team ledger %+v, %v: want the two streams settled at their estimates, nothing held", rem, err)
	}
	var apiErr *goopenai.APIError
	if _, err := stream("gpt-4o-mini"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusBadRequest || other.Load() != 1 {
		t.Fatalf("another 400: %v, sent %d times; want the server's 400, once", err, other.Load())
	}
}
