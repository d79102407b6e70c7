package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestCompactionKeepsTheDeveloperPrompt: OpenAI's newer models take their
// instructions in a "developer" message, the system prompt of the chat
// completions API. Compaction keeps it, and the first user message after
// it, as it keeps a system prompt; a developer message among old turns
// survives a drop as a system message does.
func TestCompactionKeepsTheDeveloperPrompt(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	srv.On().Reply(openaitest.Text("ok"))
	p := mustPolicy(t, "version: 1\ncontext: {max_input_tokens: 3000, strategies: [drop], keep_last_turns: 1, block_size: 2}\n")
	client := goClient(t, srv, p)
	ctx, _ := middleware.StartRun(context.Background(), "developer")
	msgs := []goopenai.ChatCompletionMessage{
		{Role: goopenai.ChatMessageRoleDeveloper, Content: "You are a DevOps agent. Never delete files."},
		{Role: goopenai.ChatMessageRoleUser, Content: "The disk of web-1 is full: fix it."},
	}
	for i := range 6 {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleAssistant, Content: strings.Repeat(fmt.Sprintf("word%d ", i), 500)},
			goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleUser, Content: "Go on."})
		if i == 1 {
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleDeveloper, Content: "Answer in French from now on."})
		}
	}
	if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	got := srv.Requests()[0].Chat.Messages
	if len(got) >= len(msgs) {
		t.Fatalf("the conversation was not compacted: %d messages sent of %d", len(got), len(msgs))
	}
	if got[0].Role != "developer" || got[0].Content.String() != msgs[0].Content || got[1].Role != "user" || got[1].Content.String() != msgs[1].Content {
		t.Errorf("the developer prompt and the task were not kept at the start: %s, %s", got[0].Role, got[1].Role)
	}
	var kept bool
	roles := make([]string, len(got))
	for i, m := range got {
		roles[i] = m.Role
		kept = kept || i >= 2 && m.Role == "developer" && m.Content.String() == "Answer in French from now on."
	}
	if !kept {
		t.Errorf("the later developer message was dropped: roles %v", roles)
	}
}
