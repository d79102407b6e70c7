package langchaingo_test

import (
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestCacheTellsGroupedToolResultsApart: one tool (or function) message
// carrying two tool call responses is not two tool messages of one each
// on the wire: langchaingo's openai backend refuses the first (it takes
// exactly one part for a tool message) and sends the second. Answered
// after the two messages, the grouped one is not a hit: it fails as it
// does without a cache, and the provider never sees it.
func TestCacheTellsGroupedToolResultsApart(t *testing.T) {
	for _, role := range []llms.ChatMessageType{llms.ChatMessageTypeTool, llms.ChatMessageTypeFunction} {
		t.Run(string(role), func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.Default(openaitest.Text("an answer"))
			res := func(id, content string) llms.ToolCallResponse {
				return llms.ToolCallResponse{ToolCallID: id, Name: "f", Content: content}
			}
			head := []llms.MessageContent{human("check both disks"),
				{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{
					llms.ToolCall{ID: "c1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "f", Arguments: `{"d":1}`}},
					llms.ToolCall{ID: "c2", Type: "function", FunctionCall: &llms.FunctionCall{Name: "f", Arguments: `{"d":2}`}}}}}
			separate := append(head[:2:2],
				llms.MessageContent{Role: role, Parts: []llms.ContentPart{res("c1", "40%")}},
				llms.MessageContent{Role: role, Parts: []llms.ContentPart{res("c2", "90%")}})
			grouped := append(head[:2:2], llms.MessageContent{Role: role, Parts: []llms.ContentPart{res("c1", "40%"), res("c2", "90%")}})
			models := func(mw middleware.Middleware) *twlc.Model {
				return twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, mw, twlc.WithDefaultModel("gpt-4o"))
			}
			// Without a cache: what the backend does with each.
			_, errGrouped := models(nil).GenerateContent(t.Context(), grouped)
			sepOut, errSep := models(nil).GenerateContent(t.Context(), separate)
			if errSep != nil {
				t.Fatalf("the separate results: %v", errSep)
			}
			sent := srv.Count()
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := models(c.Middleware())
			if _, err := llm.GenerateContent(t.Context(), separate); err != nil {
				t.Fatal(err)
			}
			out, err := llm.GenerateContent(t.Context(), grouped)
			if (err == nil) != (errGrouped == nil) {
				t.Fatalf("the grouped results after the separate ones, with a cache: %v (answer %v); without one: %v (answer of the separate ones %q)",
					err, out != nil, errGrouped, sepOut.Choices[0].Content)
			}
			if errGrouped == nil && srv.Count() != sent+2 {
				t.Fatalf("the grouped results were answered from the cache, yet they are sent otherwise: %d provider calls, want %d", srv.Count(), sent+2)
			}
		})
	}
}
