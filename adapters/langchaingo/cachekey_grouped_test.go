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

// TestCacheTellsGenericMessagesApart: a generic message is not a human
// one to langchaingo's backends, though both are the user's to the core:
// the openai backend merges the system prompt into the first human message
// for the models it takes as without system messages (o1, o3: a generic
// message goes without it), and the anthropic backend refuses a generic
// message. A conversation that differs only so never shares its answer, in
// either order.
func TestCacheTellsGenericMessagesApart(t *testing.T) {
	srv := openaitest.NewServer(t)
	conv := func(role llms.ChatMessageType) []llms.MessageContent {
		return []llms.MessageContent{{Role: llms.ChatMessageTypeSystem, Parts: []llms.ContentPart{llms.TextContent{Text: "Answer in French."}}},
			{Role: role, Parts: []llms.ContentPart{llms.TextContent{Text: "how full is the disk?"}}}}
	}
	for _, order := range [][2]llms.ChatMessageType{{llms.ChatMessageTypeHuman, llms.ChatMessageTypeGeneric}, {llms.ChatMessageTypeGeneric, llms.ChatMessageTypeHuman}} {
		models := func(mw middleware.Middleware) *twlc.Model {
			return twlc.New(twlc.Models{"o1-mini": newOpenAI(t, srv, "o1-mini", true)}, mw, twlc.WithDefaultModel("o1-mini"))
		}
		run := func(llm *twlc.Model) {
			t.Helper()
			srv.Reset()
			srv.Default(openaitest.Text("an answer"))
			for _, role := range order {
				if _, err := llm.GenerateContent(t.Context(), conv(role)); err != nil {
					t.Fatal(err)
				}
			}
		}
		run(models(nil))
		recs := srv.Requests()
		if sameSent(sentBody(t, recs[0]), sentBody(t, recs[1])) {
			t.Fatalf("%s then %s: the backend sends the same body; the test needs it to differ", order[0], order[1])
		}
		c, err := cache.New(cache.Config{})
		if err != nil {
			t.Fatal(err)
		}
		run(models(c.Middleware()))
		if srv.Count() != 2 {
			t.Fatalf("a %s message after a %s one was a hit, yet it sends\n%s\nnot\n%s", order[1], order[0], recs[1].Body, recs[0].Body)
		}
	}
}

// TestCacheTellsToolResultsOfOtherRolesApart: a tool call response is a
// tool message's to the core whatever the role of the message that carries
// it, but langchaingo's openai backend sends an assistant or a human
// message as what it is, leaving the response out (an empty assistant or
// user message, which OpenAI refuses after tool calls). Such a
// conversation never shares the answer of the one with the tool message,
// in either order.
func TestCacheTellsToolResultsOfOtherRolesApart(t *testing.T) {
	srv := openaitest.NewServer(t)
	call1 := llms.ToolCall{ID: "c1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "f", Arguments: "{}"}}
	conv := func(role llms.ChatMessageType, parts ...llms.ContentPart) []llms.MessageContent {
		return []llms.MessageContent{human("what is f?"), {Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{call1}},
			{Role: role, Parts: append(parts, llms.ToolCallResponse{ToolCallID: "c1", Name: "f", Content: "42"})}}
	}
	tool := conv(llms.ChatMessageTypeTool)
	for _, other := range []llms.ChatMessageType{llms.ChatMessageTypeAI, llms.ChatMessageTypeHuman, llms.ChatMessageTypeSystem, llms.ChatMessageTypeGeneric} {
		checkNoSharedAnswer(t, srv, call{tool, nil}, call{conv(other), nil}, "a tool message, then the result in a message of role "+string(other))
		checkNoSharedAnswer(t, srv, call{conv(other), nil}, call{tool, nil}, "the result in a message of role "+string(other)+", then a tool message")
	}
}
