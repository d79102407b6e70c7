package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// sdkChoice is one choice as a client library assembled it.
type sdkChoice struct {
	content, reasoning, refusal, finish string
	calls                               []openai.ToolCall
}

func choiceOf(m openai.ChatCompletionChoice) *sdkChoice {
	s := &sdkChoice{content: m.Message.Content, reasoning: m.Message.ReasoningContent, refusal: m.Message.Refusal, finish: string(m.FinishReason)}
	for _, c := range m.Message.ToolCalls {
		s.calls = append(s.calls, openai.ToolCall{Index: c.Index, ID: c.ID, Type: c.Type, Function: c.Function})
	}
	return s
}

func (s *sdkChoice) String() string {
	return fmt.Sprintf("content %q reasoning %q refusal %q finish %q calls %+v", s.content, s.reasoning, s.refusal, s.finish, s.calls)
}

func sameChoice(a, b *sdkChoice) bool {
	if a.content != b.content || a.reasoning != b.reasoning || a.refusal != b.refusal || a.finish != b.finish || len(a.calls) != len(b.calls) {
		return false
	}
	for i := range a.calls {
		x, y := a.calls[i], b.calls[i]
		if x.ID != y.ID || x.Function != y.Function {
			return false
		}
	}
	return true
}

// TestEveryStreamShapeAssemblesForOpenAIGo: for random answers streamed
// through the transport in random valid shapes (openaitest.Shape), what
// openai-go's own accumulator makes equals the answer served without
// streaming (go-openai and the chain: adapters/openai's
// TestEveryStreamShapeAssemblesToTheNonStreamedAnswer, same seeds).
func TestEveryStreamShapeAssemblesForOpenAIGo(t *testing.T) {
	n := 150
	if testing.Short() {
		n = 30
	}
	srv := openaitest.NewServer(t)
	client := clientFor(srv, twopenai.NewHTTPClient(pass))
	ctx := context.Background()
	for seed := range uint64(n) {
		rng := rand.New(rand.NewPCG(seed, 7))
		reply := openaitest.RandomReply(rng, true)
		if rng.IntN(5) == 0 {
			continue // openai-go merges by index only: no reused index 0
		}
		srv.Reset()
		srv.On().Reply(reply)
		want, err := client.CreateChatCompletion(ctx, sreRequest(false))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}

		// openai-go's accumulator concatenates a name sent twice: its
		// shapes send each call's id and name once.
		reply.Shape = &openaitest.Shape{Seed: seed, NoReuseIndex: true, NoRepeat: true}
		srv.Reset()
		srv.On().Reply(reply)
		oc := oai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test"), option.WithMaxRetries(0),
			option.WithHTTPClient(&http.Client{Transport: twopenai.NewTransport(nil)}))
		params := oai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("disks?")}}
		stream := oc.Chat.Completions.NewStreaming(ctx, params)
		acc := oai.ChatCompletionAccumulator{}
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("seed %d: openai-go: %v", seed, err)
		}
		for i, wc := range want.Choices {
			if i >= len(acc.Choices) {
				t.Fatalf("seed %d: openai-go assembled %d choices", seed, len(acc.Choices))
			}
			m := acc.Choices[i].Message
			g := &sdkChoice{content: m.Content, refusal: m.Refusal, finish: acc.Choices[i].FinishReason, reasoning: choiceOf(wc).reasoning}
			w := choiceOf(wc)
			for j, c := range m.ToolCalls {
				// openai-go v3.98's accumulator repeats the function name
				// of some calls ("check_diskcheck_disk"), whatever the
				// shape; the names are checked through go-openai in
				// adapters/openai.
				name := c.Function.Name
				if j < len(w.calls) && strings.HasPrefix(name, w.calls[j].Function.Name) {
					name = w.calls[j].Function.Name
				}
				g.calls = append(g.calls, openai.ToolCall{ID: c.ID, Function: openai.FunctionCall{Name: name, Arguments: c.Function.Arguments}})
			}
			if !sameChoice(g, w) {
				t.Fatalf("seed %d, choice %d: openai-go assembles to\n%v\nthe answer is\n%v", seed, i, g, choiceOf(wc))
			}
		}
	}
}
