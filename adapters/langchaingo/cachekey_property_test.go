package langchaingo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

// optionPool is the pool of langchaingo call options the property draws
// from, each a family of variants: a request has at most one variant of
// each family (or none).
var optionPool = [][]llms.CallOption{
	{llms.WithTemperature(0), llms.WithTemperature(0.7)},
	{llms.WithTopP(0.5), llms.WithTopP(1)},
	{llms.WithSeed(1), llms.WithSeed(2)},
	{llms.WithN(2), llms.WithCandidateCount(2), llms.WithN(3)},
	{llms.WithMaxTokens(50), llms.WithMaxTokens(51)},
	{llms.WithStopWords([]string{"x"}), llms.WithStopWords([]string{"y"})},
	{llms.WithJSONMode(), llms.WithResponseMIMEType("application/json"), llms.WithResponseMIMEType("text/plain")},
	{llms.WithFrequencyPenalty(0.5), llms.WithPresencePenalty(0.5)},
	{llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "f", Parameters: map[string]any{"type": "object"}}}}),
		llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "f", Description: "d", Parameters: map[string]any{"type": "object"}}}})},
	{llms.WithMetadata(map[string]any{"openai:use_legacy_max_tokens": true}), llms.WithMetadata(map[string]any{"tag": "a"})},
	{llms.WithModel("gpt-4o-mini")},
}

// draw returns a random request's options: for each family, none or one
// variant (its index in the family, -1 for none).
func draw(r *rand.Rand) []int {
	pick := make([]int, len(optionPool))
	for i, fam := range optionPool {
		pick[i] = r.IntN(len(fam)+1) - 1
	}
	return pick
}

func optionsOf(pick []int) []llms.CallOption {
	var opts []llms.CallOption
	for i, v := range pick {
		if v >= 0 {
			opts = append(opts, optionPool[i][v])
		}
	}
	return opts
}

// sentBody is what the provider reads of a recorded request: its body
// decoded, the neutral members left out.
func sentBody(t *testing.T, rec openaitest.Recorded) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body, &m); err != nil {
		t.Fatal(err)
	}
	for k := range m {
		if middleware.NeutralField(k) {
			delete(m, k)
		}
	}
	return m
}

func sameSent(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// call is one GenerateContent call: its messages and options.
type call struct {
	msgs []llms.MessageContent
	opts []llms.CallOption
}

// checkNoSharedAnswer fails t when b, made after a, is answered from the
// cache although langchaingo's openai backend sends it otherwise than a
// (its neutral members aside); what = the difference, for the message.
func checkNoSharedAnswer(t *testing.T, srv *openaitest.Server, a, b call, what string) {
	t.Helper()
	models := func(mw middleware.Middleware) *twlc.Model {
		return twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true), "gpt-4o-mini": newOpenAI(t, srv, "gpt-4o-mini", true)},
			mw, twlc.WithDefaultModel("gpt-4o"))
	}
	run := func(llm *twlc.Model) {
		t.Helper()
		srv.Reset()
		srv.Default(openaitest.Text("an answer"))
		for _, c := range []call{a, b} {
			if _, err := llm.GenerateContent(t.Context(), c.msgs, c.opts...); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What each request sends, without a cache.
	run(models(nil))
	recs := srv.Requests()
	if sameSent(sentBody(t, recs[0]), sentBody(t, recs[1])) {
		return // the same request: may share an answer
	}
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	run(models(c.Middleware()))
	if srv.Count() != 2 {
		t.Fatalf("%s: the second call was a hit, yet it sends\n%s\nnot\n%s", what, recs[1].Body, recs[0].Body)
	}
}

// TestCacheNeverAnswersARequestLangchaingoSendsDifferently is the cache's
// property through the langchaingo adapter: two GenerateContent calls
// whose options make langchaingo's openai backend send bodies that differ
// (neutral members aside) never share an answer. Each pair differs in one
// option family.
func TestCacheNeverAnswersARequestLangchaingoSendsDifferently(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	srv := openaitest.NewServer(t)
	for i := range 300 {
		a := draw(r)
		b := append([]int(nil), a...)
		fam := r.IntN(len(optionPool))
		for b[fam] == a[fam] {
			b[fam] = r.IntN(len(optionPool[fam])+1) - 1
		}
		msgs := []llms.MessageContent{human(fmt.Sprint("q", i))}
		checkNoSharedAnswer(t, srv, call{msgs, optionsOf(a)}, call{msgs, optionsOf(b)}, fmt.Sprintf("family %d: options %v then %v", fam, a, b))
	}
}

// TestCacheNeverAnswersMessagesLangchaingoSendsDifferently: the same
// property over messages that the core could confuse.
func TestCacheNeverAnswersMessagesLangchaingoSendsDifferently(t *testing.T) {
	srv := openaitest.NewServer(t)
	call1 := llms.MessageContent{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.ToolCall{ID: "c1", Type: "function",
		FunctionCall: &llms.FunctionCall{Name: "f", Arguments: "{}"}}}}
	result := func(role llms.ChatMessageType) llms.MessageContent {
		return llms.MessageContent{Role: role, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "c1", Name: "f", Content: "42"}}}
	}
	q := human("what is f?")
	for _, c := range []struct {
		what string
		a, b []llms.MessageContent
	}{
		{"a tool result, then a legacy function result", []llms.MessageContent{q, call1, result(llms.ChatMessageTypeTool)},
			[]llms.MessageContent{q, call1, result(llms.ChatMessageTypeFunction)}},
		{"a generic message, then a human one", []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeGeneric, "hi")}, []llms.MessageContent{human("hi")}},
		{"two text parts, then one", []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.TextContent{Text: "a"}, llms.TextContent{Text: "b"}}}},
			[]llms.MessageContent{human("ab")}},
		{"an image, then its detail", []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.ImageURLContent{URL: "https://x/i.png"}}}},
			[]llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.ImageURLContent{URL: "https://x/i.png", Detail: "low"}}}}},
	} {
		checkNoSharedAnswer(t, srv, call{c.a, nil}, call{c.b, nil}, c.what)
	}
}

// TestAnswerWithACutCandidateIsNotCached: with n: 2, langchaingo's openai
// backend returns every choice; an answer whose second choice was cut
// (length) or filtered is not kept, as through the go-openai transport,
// so that the next identical call is not served the cut candidate again.
// One whose choices all finished is kept.
func TestAnswerWithACutCandidateIsNotCached(t *testing.T) {
	const body = `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"full answer"},"finish_reason":"stop"},` +
		`{"index":1,"message":{"role":"assistant","content":"cut ans"},"finish_reason":"%s"}],` +
		`"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`
	for _, tc := range []struct {
		finish string // the second choice's
		cached bool
	}{{"stop", true}, {"length", false}, {"content_filter", false}} {
		for _, capture := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/transport=%v", tc.finish, capture), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(openaitest.Reply{Body: fmt.Appendf(nil, body, tc.finish)})
				c, err := cache.New(cache.Config{})
				if err != nil {
					t.Fatal(err)
				}
				llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", capture)}, c.Middleware())
				for range 2 {
					resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hi")}, llms.WithN(2))
					if err != nil {
						t.Fatal(err)
					}
					if len(resp.Choices) != 2 || resp.Choices[1].StopReason != tc.finish {
						t.Fatalf("choices %s, want the two the server sent", dump(resp))
					}
				}
				if want := map[bool]int{true: 1, false: 2}[tc.cached]; srv.Count() != want {
					t.Fatalf("%d provider calls for two identical calls, want %d", srv.Count(), want)
				}
			})
		}
	}
}

// TestStreamedCandidatesAreNotKept: langchaingo's openai backend streams
// the first of n > 1 candidates only (without NewTransport it even mixes
// the others' text into it), so a streamed answer of n: 2 holds one
// candidate: a cache must not keep it, or a plain call of n: 2 would be
// served that one candidate (garbled, without the transport) instead of
// the two the provider answers with.
func TestStreamedCandidatesAreNotKept(t *testing.T) {
	for _, capture := range []bool{false, true} {
		t.Run(fmt.Sprintf("transport=%v", capture), func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Content: "first answer", ChunkSize: 4,
				Alternatives: []openaitest.Reply{{Content: "second answer"}}})
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", capture)}, c.Middleware())
			msgs := []llms.MessageContent{human("hi")}
			if _, err := llm.GenerateContent(t.Context(), msgs, llms.WithN(2),
				llms.WithStreamingFunc(func(context.Context, []byte) error { return nil })); err != nil {
				t.Fatal(err)
			}
			resp, err := llm.GenerateContent(t.Context(), msgs, llms.WithN(2))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 2 || resp.Choices[0].Content != "first answer" || resp.Choices[1].Content != "second answer" {
				t.Fatalf("plain call of n: 2 answered %s, want the provider's two candidates", dump(resp))
			}
			if srv.Count() != 2 {
				t.Fatalf("%d provider calls, want 2 (the streamed answer is not kept)", srv.Count())
			}
		})
	}
}

// TestDeterministicOnlyJudgesWhatLangchaingoSends: deterministic_only keeps
// requests sent with temperature 0 or a seed; langchaingo's openai backend
// sends no seed of 0 and no temperature to the models it takes for
// reasoning models, so such calls, non-deterministic as sent, are not
// kept, where the same settings that are sent are.
func TestDeterministicOnlyJudgesWhatLangchaingoSends(t *testing.T) {
	for _, tc := range []struct {
		name   string
		model  string
		opt    llms.CallOption
		cached bool
	}{
		{"temperature 0", "gpt-4o-mini", llms.WithTemperature(0), true},
		{"seed 7", "gpt-4o-mini", llms.WithSeed(7), true},
		{"seed 0, not sent", "gpt-4o-mini", llms.WithSeed(0), false},
		{"reasoning model, temperature 0 not sent", "o3-mini", llms.WithTemperature(0), false},
		{"reasoning model, seed 7", "o3-mini", llms.WithSeed(7), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.Default(openaitest.Text("an answer"))
			c, err := cache.New(cache.Config{DeterministicOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{tc.model: newOpenAI(t, srv, tc.model, false)}, c.Middleware())
			for range 2 {
				if _, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hi")}, tc.opt); err != nil {
					t.Fatal(err)
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tc.cached]; srv.Count() != want {
				t.Fatalf("%d provider calls for two identical calls sending %s, want %d", srv.Count(), srv.Requests()[0].Body, want)
			}
		})
	}
}
