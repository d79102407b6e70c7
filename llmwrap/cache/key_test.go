package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
)

func randText(r *rand.Rand) string {
	const alphabet = "ab c\x00é{}\"["
	b := make([]byte, r.IntN(6))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func randFloat(r *rand.Rand) *float64 {
	if r.IntN(3) == 0 {
		return nil
	}
	f := float64(r.IntN(5)) / 4
	return &f
}

func randRequest(r *rand.Rand) *middleware.Request {
	req := &middleware.Request{Model: []string{"gpt-4o", "gpt-4o-mini"}[r.IntN(2)], ToolChoice: []string{"", "auto", "none", "check"}[r.IntN(4)],
		Temperature: randFloat(r), TopP: randFloat(r), MaxTokens: r.IntN(3) * 100, N: r.IntN(3)}
	if r.IntN(2) == 0 {
		s := r.Int64N(3)
		req.Seed = &s
	}
	for range r.IntN(4) {
		m := middleware.Message{Role: []middleware.Role{"system", "user", "assistant", "tool"}[r.IntN(4)], Content: randText(r), Name: randText(r)}
		if r.IntN(3) == 0 {
			m.Parts = []middleware.Part{{Type: "text", Text: randText(r)}, {Type: "image_url", URL: randText(r), Detail: "low"}}
		}
		if r.IntN(3) == 0 {
			m.ToolCalls = []middleware.ToolCall{{ID: randText(r), Name: randText(r), Arguments: randText(r)}}
		}
		if r.IntN(5) == 0 {
			m.FunctionCall = &middleware.ToolCall{Name: randText(r), Arguments: randText(r)}
		}
		if r.IntN(5) == 0 {
			m.Refusal = randText(r)
		}
		req.Messages = append(req.Messages, m)
	}
	for range r.IntN(3) {
		req.Tools = append(req.Tools, middleware.Tool{Name: randText(r), Description: randText(r), Parameters: []byte(`{"type":"object"}`)})
	}
	if r.IntN(2) == 0 {
		req.Stop = []string{randText(r)}
	}
	if r.IntN(2) == 0 {
		req.ResponseFormat = []byte(`{"type":"json_object"}`)
	}
	if r.IntN(2) == 0 {
		req.Extra = []byte(`{"top_k":5}`)
	}
	return req
}

// mutations each change exactly one output-affecting field of a request
// (which was deep-cloned), and say so.
var mutations = []struct {
	name string
	fn   func(r *rand.Rand, q *middleware.Request) bool
}{
	{"model", func(_ *rand.Rand, q *middleware.Request) bool { q.Model += "x"; return true }},
	{"append message", func(r *rand.Rand, q *middleware.Request) bool {
		q.Messages = append(q.Messages, middleware.Message{Role: "user", Content: randText(r)})
		return true
	}},
	{"drop message", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		q.Messages = q.Messages[1:]
		return true
	}},
	{"message content", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		q.Messages[0].Content += "!"
		return true
	}},
	{"message role", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		q.Messages[0].Role += "x"
		return true
	}},
	{"message function call", func(r *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		if fc := q.Messages[0].FunctionCall; fc != nil && r.IntN(2) == 0 {
			fc.Arguments += "a"
		} else if fc != nil {
			q.Messages[0].FunctionCall = nil
		} else {
			q.Messages[0].FunctionCall = &middleware.ToolCall{}
		}
		return true
	}},
	{"message refusal", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		q.Messages[0].Refusal += "r"
		return true
	}},
	{"message name", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		q.Messages[0].Name += "n"
		return true
	}},
	{"content moved between messages", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) < 2 || q.Messages[0].Content == "" {
			return false
		}
		c := q.Messages[0].Content
		q.Messages[0].Content = c[:len(c)-1]
		q.Messages[1].Content = c[len(c)-1:] + q.Messages[1].Content
		return true
	}},
	{"part", func(_ *rand.Rand, q *middleware.Request) bool {
		for i := range q.Messages {
			if len(q.Messages[i].Parts) > 0 {
				q.Messages[i].Parts[1].Detail = "high"
				return true
			}
		}
		return false
	}},
	{"tool call arguments", func(_ *rand.Rand, q *middleware.Request) bool {
		for i := range q.Messages {
			if len(q.Messages[i].ToolCalls) > 0 {
				q.Messages[i].ToolCalls[0].Arguments += " "
				return true
			}
		}
		return false
	}},
	{"tool call id", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Messages) == 0 {
			return false
		}
		q.Messages[0].ToolCallID += "c"
		return true
	}},
	{"add tool", func(r *rand.Rand, q *middleware.Request) bool {
		q.Tools = append(q.Tools, middleware.Tool{Name: randText(r)})
		return true
	}},
	{"tool parameters", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Tools) == 0 {
			return false
		}
		q.Tools[0].Parameters = []byte(`{"type":"object","required":["x"]}`)
		return true
	}},
	{"tool strict", func(_ *rand.Rand, q *middleware.Request) bool {
		if len(q.Tools) == 0 {
			return false
		}
		q.Tools[0].Strict = !q.Tools[0].Strict
		return true
	}},
	{"tool_choice", func(_ *rand.Rand, q *middleware.Request) bool { q.ToolChoice += "z"; return true }},
	{"temperature", func(_ *rand.Rand, q *middleware.Request) bool {
		if q.Temperature == nil {
			zero := 0.0 // omitted is not 0
			q.Temperature = &zero
		} else {
			*q.Temperature += 0.1
		}
		return true
	}},
	{"temperature omitted", func(_ *rand.Rand, q *middleware.Request) bool {
		if q.Temperature == nil {
			return false
		}
		q.Temperature = nil
		return true
	}},
	{"top_p", func(_ *rand.Rand, q *middleware.Request) bool {
		if q.TopP == nil {
			one := 1.0
			q.TopP = &one
		} else {
			*q.TopP += 0.5
		}
		return true
	}},
	{"seed", func(_ *rand.Rand, q *middleware.Request) bool {
		if q.Seed == nil {
			zero := int64(0)
			q.Seed = &zero
		} else {
			*q.Seed++
		}
		return true
	}},
	{"stop", func(_ *rand.Rand, q *middleware.Request) bool { q.Stop = append(q.Stop, "END"); return true }},
	{"max tokens", func(_ *rand.Rand, q *middleware.Request) bool { q.MaxTokens++; return true }},
	{"response format", func(_ *rand.Rand, q *middleware.Request) bool {
		if q.ResponseFormat == nil {
			q.ResponseFormat = []byte(`{"type":"text"}`)
		} else {
			q.ResponseFormat = nil
		}
		return true
	}},
	{"n", func(_ *rand.Rand, q *middleware.Request) bool { q.N++; return true }},
	{"extra", func(_ *rand.Rand, q *middleware.Request) bool {
		q.Extra = append(append([]byte(nil), q.Extra...), ' ')
		return true
	}},
}

// TestKeyProperty: requests that differ in any single output-affecting
// field never share a key (many random pairs); requests that differ only
// in what does not change the answer (Stream, Native: trace ids, metadata,
// callbacks) always do.
func TestKeyProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tried := map[string]int{}
	for i := 0; i < 20000; i++ {
		a := randRequest(r)
		encA := cache.AppendCanonical(nil, "team:a", a)

		m := mutations[r.IntN(len(mutations))]
		b := a.DeepClone()
		if m.fn(r, b) {
			tried[m.name]++
			encB := cache.AppendCanonical(nil, "team:a", b)
			if bytes.Equal(encA, encB) || cache.Sum(encA) == cache.Sum(encB) {
				t.Fatalf("pair %d: %s changed but the key did not:\n%+v\n%+v", i, m.name, a, b)
			}
		}
		if bytes.Equal(encA, cache.AppendCanonical(nil, "team:b", a)) {
			t.Fatal("the scope is not in the key")
		}

		c := a.DeepClone()
		c.Native = map[string]string{"metadata": fmt.Sprint("trace-", i), "user": "u"}
		c.Stream = func(context.Context, middleware.Chunk) error { return nil }
		if !bytes.Equal(encA, cache.AppendCanonical(nil, "team:a", c)) {
			t.Fatalf("pair %d: Stream/Native changed the key", i)
		}
	}
	for _, m := range mutations {
		if tried[m.name] < 100 {
			t.Errorf("mutation %q tried only %d times", m.name, tried[m.name])
		}
	}
}

// TestKeyIsStable pins the encoding of one request: a change of the
// encoding must bump KeyVersion (shared Redis caches outlive a deploy).
func TestKeyIsStable(t *testing.T) {
	t.Parallel()
	zero := 0.0
	req := &middleware.Request{Model: "gpt-4o-mini", Temperature: &zero, Messages: []middleware.Message{{Role: "user", Content: "hi"}}}
	if got, want := fmt.Sprintf("%016x", cache.Sum(cache.AppendCanonical(nil, "team:", req))), "fb723b9370470ce3"; got != want {
		t.Fatalf("key %s, want %s: the canonical encoding changed; bump KeyVersion and update this test", got, want)
	}
}
