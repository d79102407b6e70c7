package langchaingo_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestGeminiErrorInAnArrayIsRead: Gemini's OpenAI-compatible endpoint
// wraps its error object in an array ([{"error":{...}}]). Through
// langchaingo's openai backend with twlc.NewTransport, the call's
// ProviderError carries Gemini's message and status, streamed or not.
// Before, the body did not decode as an error object: the message was the
// whole body, its JSON included, and the status (RESOURCE_EXHAUSTED) was
// lost.
func TestGeminiErrorInAnArrayIsRead(t *testing.T) {
	const msg = "Resource has been exhausted (e.g. check quota)."
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "[{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \""+msg+"\",\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n]\n")
	}))
	defer hs.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	backend, err := openai.New(openai.WithBaseURL(hs.URL), openai.WithToken("test"), openai.WithModel("gemini-2.0-flash"),
		openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gemini-2.0-flash": backend}, passThrough)
	for _, opts := range [][]llms.CallOption{nil, {streaming()}} {
		_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, opts...)
		var pe *middleware.ProviderError
		if !errors.Is(err, middleware.ErrRateLimited) || !errors.As(err, &pe) {
			t.Fatalf("stream %t: err %v (%T), want a rate limit", opts != nil, err, err)
		}
		if pe.Message != msg || pe.Type != "RESOURCE_EXHAUSTED" || pe.StatusCode != 429 {
			t.Errorf("stream %t: message %q, type %q, status %d; want %q, RESOURCE_EXHAUSTED, 429", opts != nil, pe.Message, pe.Type, pe.StatusCode, msg)
		}
	}
}
