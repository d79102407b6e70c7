package langchaingo_test

import (
	"net/http"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
)

// TestCacheKeysOnTheInnerClientsConfiguration: Models sharing one chain
// (one cache), each over an openai client of the same model name, one
// configured with a JSON schema (openai.WithResponseFormat, a client
// option the call's options do not show), one with another organization:
// the same call through each sends a different request, so they do not
// share an answer. Models over equally configured clients do.
func TestCacheKeysOnTheInnerClientsConfiguration(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(func(r *openaitest.ChatRequest) bool { return len(r.ResponseFormat) > 0 }).Reply(openaitest.Text(`{"final_answer":"4"}`))
	srv.On().Reply(openaitest.Text("2 + 2 is 4."))
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	newClient := func(opts ...openai.Option) *openai.LLM {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		llm, err := openai.New(append([]openai.Option{openai.WithBaseURL(srv.URL), openai.WithToken("test"),
			openai.WithModel("gpt-4o"), openai.WithHTTPClient(&http.Client{Transport: base})}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return llm
	}
	schema := &openai.ResponseFormat{Type: "json_schema", JSONSchema: &openai.ResponseFormatJSONSchema{Name: "math", Strict: true,
		Schema: &openai.ResponseFormatJSONSchemaProperty{Type: "object",
			Properties: map[string]*openai.ResponseFormatJSONSchemaProperty{"final_answer": {Type: "string"}}, Required: []string{"final_answer"}}}}
	structured := twlc.New(twlc.Models{"gpt-4o": newClient(openai.WithResponseFormat(schema))}, c.Middleware())
	plain := twlc.New(twlc.Models{"gpt-4o": newClient()}, c.Middleware())
	msgs := []llms.MessageContent{human("Solve 2 + 2")}
	if _, err := structured.GenerateContent(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	resp, err := plain.GenerateContent(t.Context(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Content; got != "2 + 2 is 4." {
		t.Fatalf("the plain client's call was answered %q, the structured client's answer", got)
	}
	other := twlc.New(twlc.Models{"gpt-4o": newClient(openai.WithOrganization("org-other"))}, c.Middleware())
	if _, err := other.GenerateContent(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count(); n != 3 {
		t.Fatalf("%d provider calls, want 3: the client of another organization shared an answer", n)
	}
	// Equally configured clients (in another process too) share answers.
	for _, llm := range []*twlc.Model{
		twlc.New(twlc.Models{"gpt-4o": newClient(openai.WithResponseFormat(schema))}, c.Middleware()),
		twlc.New(twlc.Models{"gpt-4o": newClient()}, c.Middleware()),
	} {
		if _, err := llm.GenerateContent(t.Context(), msgs); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count(); n != 3 {
		t.Fatalf("%d provider calls, want 3: equally configured clients did not share their answers", n)
	}
}
