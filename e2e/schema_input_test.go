package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// TestStructuredOutputSchemaCountsAsInput: a Structured Outputs schema
// (response_format of type json_schema) is added to the prompt by the
// provider and billed as input, as tool definitions are: it counts in the
// estimate the budget checks. A short question with a schema of 60
// described properties is over a 1,000-token input cap and refused,
// unsent; the same question with a plain json_object format passes.
// Before, the schema was not counted: the call passed the cap (and a
// budget reserved too little for it).
func TestStructuredOutputSchemaCountsAsInput(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text(`{"ok":true}`))
	client := goClient(t, srv, mustPolicy(t, "version: 1\nbudget:\n  request: {max_input_tokens: 1000}\n"))
	props := map[string]any{}
	for i := range 60 {
		props[fmt.Sprintf("mount_%d", i)] = map[string]any{"type": "string",
			"description": fmt.Sprintf("The usage of mount point %d, in percent, as df reports it for that host.", i)}
	}
	schema, err := json.Marshal(map[string]any{"type": "object", "properties": props})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(rf *goopenai.ChatCompletionResponseFormat) error {
		_, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", ResponseFormat: rf,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "How full are the disks? " + strings.Repeat("Be precise. ", 3)}}})
		return err
	}
	if err := ask(&goopenai.ChatCompletionResponseFormat{Type: goopenai.ChatCompletionResponseFormatTypeJSONObject}); err != nil {
		t.Fatalf("the question in JSON mode: %v", err)
	}
	err = ask(&goopenai.ChatCompletionResponseFormat{Type: goopenai.ChatCompletionResponseFormatTypeJSONSchema,
		JSONSchema: &goopenai.ChatCompletionResponseFormatJSONSchema{Name: "disks", Schema: json.RawMessage(schema), Strict: true}})
	var e *budget.ExceededError
	if !errors.As(err, &e) {
		t.Fatalf("the question with a 60-property schema (about 1,500 tokens): %v, want the input cap's refusal", err)
	}
	if n := srv.Count(); n != 1 {
		t.Fatalf("the server got %d calls, want 1 (the refused call unsent)", n)
	}
}
