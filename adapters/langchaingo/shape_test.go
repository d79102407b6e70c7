package langchaingo_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestEveryStreamShapeAssemblesThroughLangchaingo: for random answers
// streamed in random valid shapes (openaitest.Shape: tool-call fragments
// interleaved, ids and names moved, index 0 reused, n > 1, comments,
// CRLF, ...), a streaming call through twlc gives the same content,
// reasoning, tool calls and finish reason as the call without streaming,
// with langchaingo's openai backend behind twlc.NewTransport, alone or
// over the go-openai Transport of adapters/openai.
func TestEveryStreamShapeAssemblesThroughLangchaingo(t *testing.T) {
	words := []string{"disk", " ok", "é", "日本", `"q"`, "\n", "🙂", `\`}
	for _, be := range backends {
		if !strings.Contains(be.name, "NewTransport") {
			continue // langchaingo's backend alone mis-assembles interleaved tool calls
		}
		t.Run(be.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			sp := &spy{}
			llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, sp.mw)
			for seed := range uint64(60) {
				rng := rand.New(rand.NewPCG(seed, 11))
				text := func(n int) string {
					var b strings.Builder
					for range rng.IntN(n + 1) {
						b.WriteString(words[rng.IntN(len(words))])
					}
					return b.String()
				}
				reply := openaitest.Reply{Content: text(20), Reasoning: text(4), Shape: &openaitest.Shape{Seed: seed}}
				if seed%3 == 0 {
					reply.Shape.ReasoningField = "reasoning" // which the backend alone does not read
				}
				for i := range rng.IntN(4) {
					reply.ToolCalls = append(reply.ToolCalls, openaitest.Call(fmt.Sprintf("call_%d_%d", seed, i), "check_disk",
						`{"path":"`+strings.NewReplacer(`"`, "", `\`, "", "\n", "").Replace(text(4))+`"}`))
				}
				if rng.IntN(5) == 0 {
					reply.Alternatives = []openaitest.Reply{{Content: "another answer " + text(5)}}
				}
				srv.Reset()
				srv.On().Reply(reply)
				msgs := []llms.MessageContent{human("q")}
				opts := []llms.CallOption{llms.WithTools(weatherTools("check_disk"))}
				want, err := llm.GenerateContent(t.Context(), msgs, opts...)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				got, err := llm.GenerateContent(t.Context(), msgs, append(opts, streaming())...)
				if err != nil {
					t.Fatalf("seed %d: streamed: %v", seed, err)
				}
				w, g := want.Choices[0], got.Choices[0]
				if w.Content != g.Content || w.ReasoningContent != g.ReasoningContent || w.StopReason != g.StopReason ||
					!reflect.DeepEqual(w.ToolCalls, g.ToolCalls) {
					t.Fatalf("seed %d: streamed\n%s\nthe answer\n%s", seed, dump(got), dump(want))
				}
				_, core := sp.last(t)
				if sc := sp.lastStream(t); !reflect.DeepEqual(sc.Message.ToolCalls, core.Message.ToolCalls) || sc.Message.Content != core.Message.Content {
					t.Fatalf("seed %d: the chain's chunks assemble to %+v, the core answer is %+v", seed, sc.Message, core.Message)
				}
			}
		})
	}
}

// TestLargeToolCallArgumentsSurviveTheReshapedStream: arguments far larger
// than langchaingo's 64 KiB line limit, streamed interleaved, arrive whole.
func TestLargeToolCallArgumentsSurviveTheReshapedStream(t *testing.T) {
	srv := openaitest.NewServer(t)
	big := `{"path":"` + strings.Repeat(`é"\`, 30000) + `"}`
	srv.On().Reply(openaitest.Reply{ToolCalls: []openaitest.ToolCall{
		openaitest.Call("call_a", "check_disk", big), openaitest.Call("call_b", "check_disk", `{"path":"/"}`),
	}, Shape: &openaitest.Shape{Seed: 1, NoReuseIndex: true}})
	llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, nil)
	resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, llms.WithTools(weatherTools("check_disk")), streaming())
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.Choices[0].ToolCalls
	if len(calls) != 2 || calls[0].FunctionCall.Arguments != big || calls[1].FunctionCall.Arguments != `{"path":"/"}` {
		t.Fatalf("%d calls, first arguments %d bytes, want %d", len(calls), len(calls[0].FunctionCall.Arguments), len(big))
	}
}
