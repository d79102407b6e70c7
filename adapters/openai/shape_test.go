package openai_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// sdkChoice is one choice assembled from go-openai stream chunks the way
// the official SDKs do: tool-call fragments merged by index, a new id at a
// used index starting a new call.
type sdkChoice struct {
	content, reasoning, refusal, finish string
	calls                               []openai.ToolCall
	at                                  map[int]int // index -> position in calls
}

func assembleGoOpenAI(chunks []openai.ChatCompletionStreamResponse) (map[int]*sdkChoice, *openai.Usage) {
	out := map[int]*sdkChoice{}
	var usage *openai.Usage
	for _, c := range chunks {
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			s := out[ch.Index]
			if s == nil {
				s = &sdkChoice{at: map[int]int{}}
				out[ch.Index] = s
			}
			s.content += ch.Delta.Content
			s.reasoning += ch.Delta.ReasoningContent
			s.refusal += ch.Delta.Refusal
			if ch.FinishReason != "" {
				s.finish = string(ch.FinishReason)
			}
			for _, d := range ch.Delta.ToolCalls {
				idx := 0
				if d.Index != nil {
					idx = *d.Index
				}
				pos, ok := s.at[idx]
				if ok && d.ID != "" && s.calls[pos].ID != "" && d.ID != s.calls[pos].ID {
					ok = false
				}
				if !ok {
					s.calls = append(s.calls, openai.ToolCall{Index: &idx})
					pos = len(s.calls) - 1
					s.at[idx] = pos
				}
				tc := &s.calls[pos]
				if d.ID != "" {
					tc.ID = d.ID
				}
				if d.Type != "" {
					tc.Type = d.Type
				}
				if d.Function.Name != "" {
					tc.Function.Name = d.Function.Name
				}
				tc.Function.Arguments += d.Function.Arguments
			}
		}
	}
	for _, s := range out {
		slices.SortStableFunc(s.calls, func(a, b openai.ToolCall) int { return *a.Index - *b.Index })
	}
	return out, usage
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

// coreAnswer is what the chain's recorder saw, for comparison.
func coreAnswer(r *middleware.Response) *middleware.Response {
	c := r.Clone()
	c.Native = nil
	c.ID = strings.TrimRight(c.ID, "0123456789") // the server numbers its answers
	// The tier of the usage is what the answer or, in a stream, its
	// chunks name (a shape may name it in no chunk): compared by
	// TestStreamUsageNamesItsServiceTier, not here.
	c.Usage = c.Usage.Counts()
	if len(c.Message.ToolCalls) == 0 {
		c.Message.ToolCalls = nil
	}
	return c
}

// TestEveryStreamShapeAssemblesToTheNonStreamedAnswer is the property
// behind stream assembly: for random answers streamed in random valid
// shapes (openaitest.Shape: fragments cut and interleaved at random, ids
// and names moved, index 0 reused, role-only and finish-only chunks,
// filter annotations, logprobs, n > 1, comments, CRLF, reads split at any
// byte), what go-openai's Recv gives and what the transport assembles for
// the chain equal the answer served without streaming (what openai-go's own
// accumulator makes: e2e's TestEveryStreamShapeAssemblesForOpenAIGo).
func TestEveryStreamShapeAssemblesToTheNonStreamedAnswer(t *testing.T) {
	n := 150
	if testing.Short() {
		n = 30
	}
	srv := openaitest.NewServer(t)
	for seed := range uint64(n) {
		rng := rand.New(rand.NewPCG(seed, 7))
		reply := openaitest.RandomReply(rng, true)
		reuse := rng.IntN(5) == 0
		reply.Shape = &openaitest.Shape{Seed: seed, ReuseIndex: reuse, NoReuseIndex: !reuse}
		srv.Reset()
		srv.On().Reply(reply)
		rec := &middlewaretest.Tap{}
		client := clientFor(srv, twopenai.NewHTTPClient(passChain(rec)))
		ctx := context.Background()

		creq := chatRequest(false)
		want, err := client.CreateChatCompletion(ctx, creq)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		_, wantCore, _ := rec.Last(t)

		creq.Stream = true
		if rng.IntN(2) == 0 {
			creq.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
		}
		s, err := client.CreateChatCompletionStream(ctx, creq)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		chunks, err := recvAll(t, s)
		if err.Error() != "EOF" {
			t.Fatalf("seed %d: stream ended with %v", seed, err)
		}
		got, usage := assembleGoOpenAI(chunks)
		if len(got) != len(want.Choices) {
			t.Fatalf("seed %d: %d choices streamed, %d answered", seed, len(got), len(want.Choices))
		}
		for _, wc := range want.Choices {
			if g := got[wc.Index]; g == nil || !sameChoice(g, choiceOf(wc)) {
				t.Fatalf("seed %d, choice %d: go-openai stream assembles to\n%v\nthe answer is\n%v", seed, wc.Index, g, choiceOf(wc))
			}
		}
		if creq.StreamOptions != nil && (usage == nil || !reflect.DeepEqual(*usage, want.Usage)) {
			t.Errorf("seed %d: usage %+v, want %+v", seed, usage, want.Usage)
		}
		_, gotCore, err := rec.Last(t)
		if err != nil {
			t.Fatalf("seed %d: the chain saw %v", seed, err)
		}
		if gotCore.ID == "" {
			t.Fatalf("seed %d: no id", seed)
		}
		if w, g := coreAnswer(wantCore), coreAnswer(gotCore); !reflect.DeepEqual(w, g) {
			t.Fatalf("seed %d: the transport assembled\n%+v\nthe answer is\n%+v", seed, g, w)
		}

	}
}

// stripNative is a layer that passes every chunk on as a copy the adapter
// did not decode, so that the transport encodes each one itself.
func stripNative(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		if req.Stream != nil {
			inner := req.Stream
			req = req.Clone()
			req.Stream = func(ctx context.Context, c middleware.Chunk) error {
				c.Native = nil
				return inner(ctx, c)
			}
		}
		return next.Handle(ctx, req)
	})
}

// TestEveryStreamShapeSurvivesReEncoding: when a layer passes chunks on as
// its own (the transport encodes them instead of forwarding the provider's
// bytes), go-openai still assembles the first choice of the non-streamed
// answer, whatever the shape.
func TestEveryStreamShapeSurvivesReEncoding(t *testing.T) {
	srv := openaitest.NewServer(t)
	client := clientFor(srv, twopenai.NewHTTPClient(stripNative))
	for seed := range uint64(80) {
		rng := rand.New(rand.NewPCG(seed, 13))
		reply := openaitest.RandomReply(rng, false)
		reply.Shape = &openaitest.Shape{Seed: seed}
		srv.Reset()
		srv.On().Reply(reply)
		creq := chatRequest(false)
		want, err := client.CreateChatCompletion(context.Background(), creq)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		creq.Stream = true
		s, err := client.CreateChatCompletionStream(context.Background(), creq)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		chunks, err := recvAll(t, s)
		if err.Error() != "EOF" {
			t.Fatalf("seed %d: stream ended with %v", seed, err)
		}
		got, _ := assembleGoOpenAI(chunks)
		if g, w := got[0], choiceOf(want.Choices[0]); g == nil || !sameChoice(g, w) {
			t.Fatalf("seed %d: re-encoded stream assembles to\n%v\nthe answer is\n%v", seed, g, w)
		}
	}
}
