package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

type convBytes struct {
	b []byte
	i int
}

func (f *convBytes) n(k int) int {
	if f.i >= len(f.b) {
		return 0
	}
	f.i++
	return int(f.b[f.i-1]) % k
}

func (f *convBytes) text(i int) string {
	switch f.n(6) {
	case 0:
		return ""
	case 1:
		return "\xff\xfe broken " + fmt.Sprint(i)
	case 2:
		return strings.Repeat("日本語のログ行 ", 1+f.n(60))
	case 3:
		return strings.Repeat(fmt.Sprintf("web-%d /var/log/app.log: request served status=200\n", i), 1+f.n(80))
	default:
		return fmt.Sprintf("message %d about the disk of web-%d", i, f.n(9))
	}
}

// fuzzAgentConversation builds, from the byte stream, a conversation as
// an agent sends it with go-openai: instructions (system or developer) at
// the start and anywhere, user texts and multimodal parts, names,
// assistant texts and tool calls (one or parallel) each followed by all
// their results, in any order.
func fuzzAgentConversation(f *convBytes) []goopenai.ChatCompletionMessage {
	var msgs []goopenai.ChatCompletionMessage
	if f.n(4) != 0 {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: []string{"system", "developer"}[f.n(2)], Content: "You are a DevOps agent. " + f.text(0)})
	}
	msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "user", Content: "Fix the disk of web-1. " + f.text(1)})
	for t := range f.n(48) {
		i := len(msgs)
		switch f.n(8) {
		case 0:
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "user", Content: f.text(i)})
		case 1:
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "user", Name: "alice", MultiContent: []goopenai.ChatMessagePart{
				{Type: goopenai.ChatMessagePartTypeText, Text: f.text(i) + "."},
				{Type: goopenai.ChatMessagePartTypeImageURL, ImageURL: &goopenai.ChatMessageImageURL{URL: "https://example.com/disk.png", Detail: goopenai.ImageURLDetailLow}},
			}})
		case 2:
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: []string{"system", "developer"}[f.n(2)], Content: "Note: " + f.text(i)})
		case 3:
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "assistant", Content: f.text(i) + "."})
		default:
			a := goopenai.ChatCompletionMessage{Role: "assistant"}
			for c := range 1 + f.n(3) {
				a.ToolCalls = append(a.ToolCalls, goopenai.ToolCall{ID: fmt.Sprintf("call_%d_%d", t, c), Type: goopenai.ToolTypeFunction,
					Function: goopenai.FunctionCall{Name: "read_log", Arguments: fmt.Sprintf(`{"host":"web-%d"}`, c)}})
			}
			msgs = append(msgs, a)
			order := make([]int, len(a.ToolCalls))
			for c := range order {
				order[c] = c
			}
			if f.n(2) == 1 {
				for c := len(order) - 1; c > 0; c-- {
					k := f.n(c + 1)
					order[c], order[k] = order[k], order[c]
				}
			}
			for _, c := range order {
				msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "tool", ToolCallID: a.ToolCalls[c].ID, Content: f.text(len(msgs)) + "ok"})
			}
		}
	}
	if f.n(3) != 0 {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "user", Content: "And now? " + f.text(len(msgs))})
	}
	return msgs
}

// FuzzCompactedConversationsOpenAIAccepts sends random agent conversations
// with the real go-openai client through the default policy with a small
// context budget (drop, summarise, 1,000 to 8,000 input tokens) to the
// scripted server over HTTP: every request the server receives, the
// compacted calls and the summary calls alike, keeps OpenAI's rules for
// tool messages (a request OpenAI would refuse with a 400 for its
// structure never leaves), and a conversation that cannot fit fails with
// the compactor's typed error.
func FuzzCompactedConversationsOpenAIAccepts(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("G\xeb\xc9&\x1b\xec\xe5MX~\x82\x90i\xbaS\xea]\x17-R3\x8d\xdcR\xd1{\x00)\xc6\xf2\xabQ>\x95\xa7\xca3\xadᛎL}\xb2;\xba\xf9(ς;.\xfd\x9e\xd0k\xd6\xda\xda\xd2J\xbc\xb1\xa8M\xda\x10\xf7\xe7\x13\xb5z\xf7\xd6H5\\\x19\xe1\x0e\xc5\x1e\xc0\x81\x8eL\x9d,3}\x00\xc1\x85\xe18\x9e\x9f\x88\xe7l7Z\x1cE\x96\x11Y\x80f.C\xaa\xb2\xeaD\xdd}\x06\xdac\x16\x80\xdcD"))                                                                                                                                                                               // 55 messages, 35569 bytes
	f.Add([]byte("[\x8b\x165\xb0\x8d\v\xd5=\xb9\xbfQ\xf3~ ٖ\x89Ê\xf0\xaa`\x1aI\x7f\xfe\xbf\x89pP\xf7\xd3;}\xbe\xe0\xd7\r/0g\xdc\xcaf\x8d\x1c \xc5\xf1\xf4ې\xd5խ\x87\x8b)\xb5\x89\x17\x02\xdb\xf9\xef\xc0qa\xdaEo_\xaa\x83\x13Fa\x85\xf7UaC\x12J\x85B\f\xa2\xebI\x8c\xb3\"g\xb0\x05\x9f\xa4\xdd\xd5&úd=\xe4$\x02x\x06\x83\xc2Ay\xf2\x97$c\xbe\x96\xbf\xc7\xc9\xde1\u05f8\xbdۍ㔾%\xe5\x1d\x17\x05\"7VǊr\xc5/YƴJ\xcc\xceGH\xe6O\xb3d\x96\xc6C)5v\xe7\xc8\\\xe6\xe4ھC h[\x01r\xd1Ӄ\xcaG\x19\xa2\x03\t\xe8C\x97\x05\x9f\x16\xc2-\x06\xf3PU\xb9\xac2.\x1d")) // 42 messages, 19853 bytes
	f.Add([]byte("\xa0+d\x17\xe4\x81.Y\x8cn\xe1<\x12\xef\x87\xd5%_\x94]\x8b3}tR\xd6K9φ\x14\x8eTa:\b\xe1I\x0f\x81\xffd\xf5L[z\b\xb3j;\x82\x80\"14\xedd\x02\x10>E\xe6\xa0渘\f\x06\xa1\xefw\xd3MF\x85\x83\x90_\x02s\x12:\xa3\xc6G\xe0\x8d}X\xd5קä\xb3\x80@\xb3\xdf\xe2bG\x82\x80H\xe2;\xd4JE\x83\xbch6\t\xb1Ǎ\xae\xaa\x9c\x0e]\xa7\xd9g&\xe1"))                                                                                                                                                                                                           // 74 messages, 23642 bytes
	srv := openaitest.NewServer(f)
	srv.On().Reply(openaitest.Text("Checked; the logs filled the disk."))
	clients := make([]*goopenai.Client, 4)
	for i := range clients {
		p := policies.Default()
		p.Context = policies.ContextPolicy{MaxInputTokens: int64(1000 + 2000*i), KeepLastTurns: 1 + i%2, BlockSize: 1 + i,
			Strategies: []policies.ContextStrategy{policies.StrategyDrop}, SummaryModel: "gpt-4o-mini"}
		if i%2 == 1 {
			p.Context.Strategies = []policies.ContextStrategy{policies.StrategySummarise, policies.StrategyDrop}
		}
		base := &http.Transport{}
		f.Cleanup(base.CloseIdleConnections)
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithLogger(slog.New(slog.DiscardHandler))), twopenai.WithBaseTransport(base))
		clients[i] = goopenai.NewClientWithConfig(cfg)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := &convBytes{b: data}
		client := clients[fb.n(len(clients))]
		msgs := fuzzAgentConversation(fb)
		seen := len(srv.Requests())
		ctx, _ := middleware.StartRun(context.Background(), "fuzz")
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs,
			Tools: []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{Name: "read_log"}}}})
		if err != nil && !errors.Is(err, compact.ErrTooLarge) {
			t.Fatalf("%d messages: %v", len(msgs), err)
		}
		for _, r := range srv.Requests()[seen:] {
			if r.Chat == nil {
				t.Fatalf("request %d: not a chat completion: %s", r.Seq, r.Body)
			}
			if err := openaitest.CheckToolPairing(r.Chat.Messages); err != nil {
				t.Fatalf("request %d (%d messages, sent %d): OpenAI refuses it: %v", r.Seq, len(r.Chat.Messages), len(msgs), err)
			}
		}
	})
}
