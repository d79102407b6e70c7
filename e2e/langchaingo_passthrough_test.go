package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// randomLangchaingoCall is a conversation and call options as a
// langchaingo agent makes them, drawn at random: system, human (text and
// image parts), AI (text, tool calls) and tool messages; max tokens,
// temperature, top_p, n, stop words, seed, JSON mode, tools and tool
// choice, streaming.
func randomLangchaingoCall(rng *rand.Rand) ([]llms.MessageContent, []llms.CallOption) {
	coin := func() bool { return rng.IntN(2) == 0 }
	text := func() string {
		return []string{"Check the disk.", "é 日本 \"q\" \\ <t> & \u2028", "line\nbreak\ttab", "ok"}[rng.IntN(4)]
	}
	var msgs []llms.MessageContent
	if coin() {
		msgs = append(msgs, llms.TextParts(llms.ChatMessageTypeSystem, text()))
	}
	for range 1 + rng.IntN(3) {
		h := llms.MessageContent{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.TextContent{Text: text()}}}
		if rng.IntN(4) == 0 {
			h.Parts = append(h.Parts, llms.ImageURLContent{URL: "https://x.test/" + fmt.Sprint(rng.IntN(9)) + ".png", Detail: []string{"", "low", "high"}[rng.IntN(3)]})
		}
		msgs = append(msgs, h)
		if coin() {
			id := fmt.Sprintf("call_%d", rng.IntN(100))
			msgs = append(msgs,
				llms.MessageContent{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.ToolCall{ID: id, Type: "function",
					FunctionCall: &llms.FunctionCall{Name: "check_disk", Arguments: `{"host":"web-1"}`}}}},
				llms.MessageContent{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: id, Name: "check_disk", Content: text()}}})
		} else if coin() {
			msgs = append(msgs, llms.TextParts(llms.ChatMessageTypeAI, text()))
			msgs = append(msgs, llms.TextParts(llms.ChatMessageTypeHuman, text()))
		}
	}
	var opts []llms.CallOption
	if coin() {
		opts = append(opts, llms.WithMaxTokens(1+rng.IntN(2000)))
	}
	if coin() {
		opts = append(opts, llms.WithTemperature(float64(rng.IntN(20))/10))
	}
	if rng.IntN(4) == 0 {
		opts = append(opts, llms.WithTopP(0.5))
	}
	if rng.IntN(5) == 0 {
		opts = append(opts, llms.WithN(1+rng.IntN(2)))
	}
	if rng.IntN(4) == 0 {
		opts = append(opts, llms.WithStopWords([]string{"END", "\n\n"}[:1+rng.IntN(2)]))
	}
	if rng.IntN(4) == 0 {
		opts = append(opts, llms.WithSeed(rng.IntN(1000)))
	}
	if rng.IntN(5) == 0 {
		opts = append(opts, llms.WithJSONMode())
	}
	if coin() {
		opts = append(opts, llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "check_disk", Description: "Disk usage",
			Parameters: map[string]any{"type": "object", "properties": map[string]any{"host": map[string]any{"type": "string"}}}}}}))
		if coin() {
			opts = append(opts, llms.WithToolChoice([]any{"auto", "none", "required"}[rng.IntN(3)]))
		}
	}
	if rng.IntN(3) == 0 {
		opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
	}
	return msgs, opts
}

// TestEveryLangchaingoCallPassesThrough: whatever a langchaingo agent sends
// through langchaingo's openai backend — messages and options drawn at
// random — goes through tokenwise's transports (the go-openai transport,
// and twlc.NewTransport over it) and through twlc.Models, never refused as
// undecodable, and reaches the server as the backend sent it without
// tokenwise, byte for byte, when no layer changes it.
func TestEveryLangchaingoCallPassesThrough(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(41, 43))
	pass := func(next middleware.Handler) middleware.Handler { return next }
	sent := 0
	for i := range 200 {
		msgs, opts := randomLangchaingoCall(rng)
		srv := openaitest.NewServer(t)
		srv.Default(openaitest.Text("ok"))
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		newLLM := func(c *http.Client) *lcopenai.LLM {
			llm, err := lcopenai.New(lcopenai.WithToken("test-key"), lcopenai.WithBaseURL(srv.URL), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(c))
			if err != nil {
				t.Fatal(err)
			}
			return llm
		}
		raw := newLLM(&http.Client{Transport: base})
		if _, err := raw.GenerateContent(context.Background(), msgs, opts...); err != nil {
			continue // a call langchaingo itself refuses to make
		}
		sent++
		tr := twopenai.NewTransport(pass, twopenai.WithBaseTransport(base))
		for name, llm := range map[string]llms.Model{
			"go-openai transport": newLLM(&http.Client{Transport: tr}),
			"twlc.NewTransport":   newLLM(&http.Client{Transport: twlc.NewTransport(tr)}),
			"twlc.Models":         twlc.New(twlc.Models{"gpt-4o-mini": newLLM(&http.Client{Transport: base})}, pass),
		} {
			before := len(srv.Requests())
			if _, err := llm.GenerateContent(context.Background(), msgs, opts...); err != nil {
				t.Fatalf("call %d through %s: %v\nthe backend sent\n%s", i, name, err, srv.Requests()[0].Body)
			}
			recs := srv.Requests()
			if len(recs) != before+1 || !bytes.Equal(recs[len(recs)-1].Body, recs[0].Body) {
				t.Fatalf("call %d through %s: the server got\n%s\nwant the backend's\n%s", i, name, recs[len(recs)-1].Body, recs[0].Body)
			}
		}
	}
	if sent < 150 {
		t.Fatalf("only %d of 200 calls were made (langchaingo refused the others): the property is barely checked", sent)
	}
}
