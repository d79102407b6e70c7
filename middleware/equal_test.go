package middleware_test

import (
	"math/rand/v2"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// randMessage draws a message from a small alphabet, so that equal and
// unequal pairs both come up often, with nil and empty slices alike.
func randMessage(rng *rand.Rand) middleware.Message {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	m := middleware.Message{Role: middleware.Role(pick("user", "assistant")), Content: pick("", "a"), Name: pick("", "n"),
		ToolCallID: pick("", "c"), Reasoning: pick("", "r")}
	switch rng.IntN(3) {
	case 1:
		m.Parts = []middleware.Part{}
	case 2:
		p := middleware.Part{Type: pick("text", "image_url"), Text: pick("", "t")}
		switch rng.IntN(3) {
		case 1:
			p.Data = []byte{}
		case 2:
			p.Data = []byte(pick("x", "y"))
		}
		m.Parts = []middleware.Part{p}
	}
	if rng.IntN(2) == 1 {
		m.ToolCalls = []middleware.ToolCall{{ID: pick("1", "2"), Name: "f", Arguments: pick("{}", `{"a":1}`)}}
	}
	return m
}

// Property: Equal is reflexive and symmetric, a deep copy is equal to its
// original, and equal messages have equal fields (checked field by field,
// with nil and empty slices told apart).
func TestMessageEqual(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(16, 2))
	for i := range 20_000 {
		a, b := randMessage(rng), randMessage(rng)
		if !a.Equal(&a) {
			t.Fatalf("case %d: not equal to itself: %+v", i, a)
		}
		if c := a.Clone(); !a.Equal(&c) || !c.Equal(&a) {
			t.Fatalf("case %d: a clone differs: %+v", i, a)
		}
		if a.Equal(&b) != b.Equal(&a) {
			t.Fatalf("case %d: not symmetric: %+v %+v", i, a, b)
		}
		same := a.Role == b.Role && a.Content == b.Content && a.Name == b.Name && a.ToolCallID == b.ToolCallID &&
			a.Reasoning == b.Reasoning && len(a.ToolCalls) == len(b.ToolCalls) && (a.Parts == nil) == (b.Parts == nil) &&
			len(a.Parts) == len(b.Parts)
		if same && len(a.ToolCalls) == 1 {
			same = a.ToolCalls[0] == b.ToolCalls[0]
		}
		if same && len(a.Parts) == 1 {
			p, q := a.Parts[0], b.Parts[0]
			same = p.Type == q.Type && p.Text == q.Text && (p.Data == nil) == (q.Data == nil) && string(p.Data) == string(q.Data)
		}
		if a.Equal(&b) != same {
			t.Fatalf("case %d: Equal = %v, fields say %v: %+v %+v", i, a.Equal(&b), same, a, b)
		}
		if got := middleware.EqualMessages([]middleware.Message{a}, []middleware.Message{b}); got != same {
			t.Fatalf("case %d: EqualMessages = %v", i, got)
		}
	}
}

func TestToolEqual(t *testing.T) {
	t.Parallel()
	a := []middleware.Tool{{Name: "f", Description: "d", Parameters: []byte(`{}`)}}
	b := []middleware.Tool{{Name: "f", Description: "d", Parameters: []byte(`{}`)}}
	if !middleware.EqualTools(a, b) || !middleware.EqualTools(a, a) || !middleware.EqualTools(nil, []middleware.Tool{}) {
		t.Fatal("equal tools differ")
	}
	b[0].Strict = true
	if middleware.EqualTools(a, b) || middleware.EqualTools(a, nil) {
		t.Fatal("different tools are equal")
	}
	if x, y := (middleware.Tool{Name: "f"}), (middleware.Tool{Name: "f", Parameters: []byte{}}); !x.Equal(&y) {
		t.Fatal("nil and empty parameters both mean no schema")
	}
}
