package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	goopenai "github.com/sashabaranov/go-openai"
)

// TestGatewayKeepsALargeStoredChatCompletionToItsTeam: a chat completion
// stored (store: true) whose answer is over 4 MiB — a JSON answer through
// openai-go, a stream whose one content chunk is 5 MB through go-openai —
// is its team's: in its own team's list, and another team's retrieval of
// it is the 404, without the upstream. Before, the gateway read a stored
// answer for its id up to 4 MiB only (a stream's line up to 1 MiB): the
// 5 MB answer was no team's, missing from devops' list and readable by
// payments by its id.
func TestGatewayKeepsALargeStoredChatCompletionToItsTeam(t *testing.T) {
	up := newObjectStore()
	big := strings.Repeat("lorem ipsum ", 5<<20/12) // 5 MiB of content
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			up.ServeHTTP(w, r)
			return
		}
		var req struct {
			Stream bool `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		up.mu.Lock()
		id := up.add(5, `,"model":"gpt-4o-mini","choices":[]`)
		up.mu.Unlock()
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%q},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1000000,\"total_tokens\":1000005}}\n\n", id, big)
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1000000,"total_tokens":1000005}}`, id, big)
	}))
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	ctx := context.Background()
	dev, pay := newObjectAPI(t, e.url, devopsKey, "devops"), newObjectAPI(t, e.url, paymentsKey, "payments")
	c1, err := dev.c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Store: openai.Bool(true),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("devops: write a long report")}})
	if err != nil || len(c1.Choices) != 1 || c1.Choices[0].Message.Content != big {
		t.Fatalf("devops' large stored completion: %v", err)
	}
	goDev := goopenai.NewClientWithConfig(func() goopenai.ClientConfig {
		c := goopenai.DefaultConfig(devopsKey)
		c.BaseURL = e.url + "/v1"
		return c
	}())
	st, err := goDev.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Store: true, Stream: true,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "devops: stream a long report"}}})
	if err != nil {
		t.Fatal(err)
	}
	var c2, content string
	for {
		ch, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c2 = ch.ID
		if len(ch.Choices) > 0 {
			content += ch.Choices[0].Delta.Content
		}
	}
	st.Close()
	if c2 == "" || content != big {
		t.Fatalf("devops' large stored stream: id %q, %d bytes of content", c2, len(content))
	}
	for _, id := range []string{c1.ID, c2} {
		before := up.uses()
		_, err := pay.c.Chat.Completions.Get(ctx, id)
		refusedObject(t, "payments retrieves devops' large stored chat completion", 5, id, err)
		if n := up.uses() - before; n != 0 {
			t.Errorf("payments' retrieval of %s reached the upstream (%d requests)", id, n)
		}
	}
	if l := dev.list(5, 0, false); !slices.Equal(l, []string{c1.ID, c2}) {
		t.Errorf("devops lists its stored chat completions: %q, want %q", l, []string{c1.ID, c2})
	}
}
