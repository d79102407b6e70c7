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

// TestLegacyFunctionsCountAsInput: the function definitions of go-openai's
// legacy functions API (ChatCompletionRequest.Functions, deprecated but
// sent as the model reads tools) are input the provider bills: they count
// in the estimate the budget checks, as tools do. A short question with
// 40 large definitions is over a 2,000-token input cap and refused,
// unsent; the same question without them passes. Before, the definitions
// were not counted: the call passed the cap (and a budget reserved too
// little for it).
func TestLegacyFunctionsCountAsInput(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text("ok"))
	client := goClient(t, srv, mustPolicy(t, "version: 1\nbudget:\n  request: {max_input_tokens: 2000}\n"))
	var fns []goopenai.FunctionDefinition
	for i := range 40 {
		fns = append(fns, goopenai.FunctionDefinition{Name: fmt.Sprintf("check_%d", i),
			Description: strings.Repeat(fmt.Sprintf("Checks the disk usage of host %d and reports each mount. ", i), 4),
			Parameters:  json.RawMessage(`{"type":"object","properties":{"host":{"type":"string","description":"the host name"}}}`)})
	}
	ask := func(fns []goopenai.FunctionDefinition) error {
		//lint:ignore SA1019 the legacy functions API is what is tested
		_, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Functions: fns,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}})
		return err
	}
	if err := ask(nil); err != nil {
		t.Fatalf("the question alone: %v", err)
	}
	err := ask(fns)
	var e *budget.ExceededError
	if !errors.As(err, &e) {
		t.Fatalf("the question with 40 function definitions (about 3,000 tokens): %v, want the input cap's refusal", err)
	}
	if n := srv.Count(); n != 1 {
		t.Fatalf("the server got %d calls, want 1 (the refused call unsent)", n)
	}
}
