package tokens

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// cookbookMessages is the 6-message example of OpenAI's cookbook notebook
// "How to count tokens with tiktoken".
func cookbookMessages() []middleware.Message {
	return []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
		{Role: middleware.RoleSystem, Name: "example_user", Content: "New synergies will help drive top-line growth."},
		{Role: middleware.RoleSystem, Name: "example_assistant", Content: "Things working well together will increase revenue."},
		{Role: middleware.RoleSystem, Name: "example_user", Content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
		{Role: middleware.RoleSystem, Name: "example_assistant", Content: "Let's talk later when we're less busy about how to do better."},
		{Role: middleware.RoleUser, Content: "This late pivot means we don't have time to boil the ocean for the client deliverable."},
	}
}

// The notebook's published figures: 129 prompt tokens for gpt-3.5-turbo and
// gpt-4 models, 124 for gpt-4o and gpt-4o-mini.
func TestCookbookMessages(t *testing.T) {
	t.Parallel()
	e := New()
	for _, tc := range []struct {
		model string
		want  int64
	}{
		{"gpt-3.5-turbo-0125", 129},
		{"gpt-4-0613", 129},
		{"gpt-4", 129},
		{"gpt-4o", 124},
		{"gpt-4o-mini", 124},
		{"gpt-4o-2024-08-06", 124},
	} {
		req := &middleware.Request{Model: tc.model, Messages: cookbookMessages()}
		for range 2 { // cold, then memoised
			if got := e.Request(tc.model, req); got != tc.want {
				t.Errorf("Request(%s) = %d, want %d", tc.model, got, tc.want)
			}
		}
	}
}

func weatherTool() middleware.Tool {
	return middleware.Tool{
		Name:        "get_current_weather",
		Description: "Get the current weather in a given location",
		Parameters: []byte(`{"type":"object","properties":{
			"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
			"unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
			"required":["location"]}`),
	}
}

// The notebook's tool example: 105 tokens for gpt-3.5-turbo and gpt-4, 101
// for gpt-4o and gpt-4o-mini.
func TestCookbookTools(t *testing.T) {
	t.Parallel()
	e := New()
	req := &middleware.Request{
		Messages: []middleware.Message{
			{Role: middleware.RoleSystem, Content: "You are a helpful assistant that can answer to questions about the weather."},
			{Role: middleware.RoleUser, Content: "What's the weather like in San Francisco?"},
		},
		Tools: []middleware.Tool{weatherTool()},
	}
	for _, tc := range []struct {
		model string
		want  int64
	}{
		{"gpt-3.5-turbo", 105}, {"gpt-4", 105}, {"gpt-4o", 101}, {"gpt-4o-mini", 101},
	} {
		if got := e.Request(tc.model, req); got != tc.want {
			t.Errorf("Request(%s) with tools = %d, want %d", tc.model, got, tc.want)
		}
	}
}

// Single-message figures published with the cookbook's rules (also used by
// openai-messages-token-helper's tests): cl100k_base, then o200k_base.
func TestCookbookSingleMessages(t *testing.T) {
	t.Parallel()
	e := New()
	for _, tc := range []struct {
		msg         middleware.Message
		gpt4, gpt4o int64
	}{
		{middleware.Message{Role: middleware.RoleSystem, Content: "You are a bot."}, 12, 12},
		{middleware.Message{Role: middleware.RoleSystem, Content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."}, 25, 24},
		{middleware.Message{Role: middleware.RoleSystem, Name: "example_user", Content: "New synergies will help drive top-line growth."}, 20, 20},
		{middleware.Message{Role: middleware.RoleSystem, Content: "á"}, 8, 8},
	} {
		req := &middleware.Request{Messages: []middleware.Message{tc.msg}}
		if got := e.Request("gpt-4", req); got != tc.gpt4 {
			t.Errorf("gpt-4 %q = %d, want %d", tc.msg.Content, got, tc.gpt4)
		}
		if got := e.Request("gpt-4o", req); got != tc.gpt4o {
			t.Errorf("gpt-4o %q = %d, want %d", tc.msg.Content, got, tc.gpt4o)
		}
	}
}

func TestEncodingTable(t *testing.T) {
	t.Parallel()
	e := New(WithModelEncoding("my-gpt", O200kBase))
	for model, want := range map[string]string{
		"gpt-4o": O200kBase, "gpt-4o-mini": O200kBase, "gpt-4o-2024-08-06": O200kBase,
		"chatgpt-4o-latest": O200kBase, "gpt-4.1": O200kBase, "gpt-4.1-nano": O200kBase,
		"o1": O200kBase, "o1-mini": O200kBase, "o3": O200kBase, "o3-mini": O200kBase, "o4-mini": O200kBase,
		"gpt-4": Cl100kBase, "gpt-4-turbo": Cl100kBase, "gpt-4-0613": Cl100kBase, "gpt-3.5-turbo": Cl100kBase,
		"openai/gpt-4o": O200kBase, "ft:gpt-4o-mini:org::abc": O200kBase, "my-gpt-v2": O200kBase,
		"claude-3-5-sonnet": "", "gemini-2.0-flash": "", "o10": "", "gpt-40": "", "": "",
		"text-embedding-3-small": Cl100kBase, "text-embedding-3-large": Cl100kBase, "text-embedding-ada-002": Cl100kBase,
		"text-embedding-30": "", "text-embedding-ada-003": "",
	} {
		if got := e.Encoding(model); got != want {
			t.Errorf("Encoding(%q) = %q, want %q", model, got, want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	e := New()
	if got := e.Text("gpt-4", "tiktoken is great!"); got != 6 {
		t.Errorf("Text(gpt-4) = %d, want 6", got)
	}
	// Conservative rule: 3/2 of the cl100k_base count, rounded up.
	if got := e.Text("claude-sonnet-4", "tiktoken is great!"); got != 9 {
		t.Errorf("conservative Text = %d, want 9", got)
	}
	if got := e.Text("claude-sonnet-4", "tiktoken is great"); got != 8 {
		t.Errorf("conservative Text = %d, want 8 (5 tokens * 3/2 rounded up)", got)
	}
}

// The conservative estimate must not undercount: for a mix of prose, code
// and CJK it stays above the exact o200k and cl100k counts.
func TestConservativeIsUpperBound(t *testing.T) {
	t.Parallel()
	e := New()
	texts := []string{
		strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40),
		strings.Repeat("func (e *Estimator) Request(model string, req *middleware.Request) int64 {\n\treturn 0\n}\n", 20),
		strings.Repeat("日本語のテキストを数える。", 30),
		`{"id": 12345, "values": [1.5, 2.25, 3.125], "ok": true, "name": "x-y_z"}`,
	}
	for _, s := range texts {
		c := e.Text("claude-3-haiku", s)
		for _, m := range []string{"gpt-4o", "gpt-4"} {
			if x := e.Text(m, s); c < x {
				t.Errorf("conservative %d < exact %s %d for %.30q", c, m, x, s)
			}
		}
	}
}

func TestMemoisationMatchesColdAndSeesChanges(t *testing.T) {
	t.Parallel()
	warm := New()
	cold := New(WithCacheSize(0))
	msgs := cookbookMessages()
	req := &middleware.Request{Messages: msgs, Tools: []middleware.Tool{weatherTool()}}
	for _, m := range []string{"gpt-4o", "gpt-4", "gemini-2.5-pro"} {
		if a, b := warm.Request(m, req), cold.Request(m, req); a != b {
			t.Fatalf("%s: memoised %d != cold %d", m, a, b)
		}
	}
	before := warm.Request("gpt-4o", req)
	req2 := req.DeepClone()
	req2.Messages[5].Content += " Really."
	if after := warm.Request("gpt-4o", req2); after <= before {
		t.Fatalf("changed message not recounted: %d then %d", before, after)
	}
	req3 := req.DeepClone()
	req3.Messages = append(req3.Messages, middleware.Message{Role: middleware.RoleAssistant,
		ToolCalls: []middleware.ToolCall{{ID: "c1", Name: "get_current_weather", Arguments: `{"location":"Paris"}`}}},
		middleware.Message{Role: middleware.RoleTool, ToolCallID: "c1", Content: "20C"})
	if a, b := warm.Request("gpt-4o", req3), cold.Request("gpt-4o", req3); a != b || a <= before {
		t.Fatalf("tool calls: memoised %d, cold %d, before %d", a, b, before)
	}
}

func TestForCallMemoisesPerEncodingAndMessages(t *testing.T) {
	t.Parallel()
	e := New()
	ci := &middleware.CallInfo{}
	ctx := middleware.WithCallInfo(context.Background(), ci)
	req := &middleware.Request{Messages: cookbookMessages()}
	a := ForCall(ctx, e, "gpt-4", req)
	// A router's clone that only changes the model keeps the slices: the
	// count of the same encoding is reused, not recomputed.
	routed := req.Clone()
	routed.Model = "gpt-3.5-turbo"
	if b := ForCall(ctx, e, "gpt-3.5-turbo", routed); b != a {
		t.Fatalf("same encoding, same messages: %d then %d", a, b)
	}
	if c := ForCall(ctx, e, "claude-3-haiku", req); c == a {
		t.Fatalf("ForCall for another encoding returned the memoised %d", c)
	}
	// A layer that rewrites the messages gets a fresh count.
	rewritten := req.Clone()
	rewritten.Messages = append(cookbookMessages(), middleware.Message{Role: middleware.RoleUser, Content: "more"})
	if d := ForCall(ctx, e, "gpt-4", rewritten); d <= a {
		t.Fatalf("a rewritten request got %d, want more than %d", d, a)
	}
	if got := ForCall(context.Background(), e, "gpt-4", &middleware.Request{Messages: cookbookMessages()}); got != 129 {
		t.Fatalf("ForCall outside a call = %d, want 129", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	e := New(WithCacheSize(64))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				req := &middleware.Request{Messages: append(cookbookMessages(),
					middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf("msg %d %d", g, i)})}
				if n := e.Request("gpt-4o", req); n < 124 {
					t.Errorf("count %d < 124", n)
				}
			}
		})
	}
	wg.Wait()
}
