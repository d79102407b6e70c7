package middleware_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// fragments cuts s into 1..n random pieces (empty pieces included).
func fragments(rng *rand.Rand, s string) []string {
	var out []string
	for s != "" {
		n := rng.IntN(len(s) + 1)
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(out) == 0 || rng.IntN(4) == 0 {
		out = append(out, "")
	}
	return out
}

// scatter returns a random chunk sequence whose deltas, merged by index,
// give want: the calls' fragments interleaved at random, the ID and name of
// each call in a random one of its fragments (or repeated in all), several
// fragments in one chunk, and, when reuse is set, every call at index 0
// told apart by its ID alone.
func scatter(rng *rand.Rand, want *middleware.Response, reuse bool) []middleware.Chunk {
	type frag struct {
		call int
		d    middleware.ToolCallDelta
	}
	queues := make([][]frag, len(want.Message.ToolCalls))
	for i, c := range want.Message.ToolCalls {
		parts := fragments(rng, c.Arguments)
		idx := i
		if reuse {
			idx = 0
		}
		idAt, nameAt, repeat := rng.IntN(len(parts)), rng.IntN(len(parts)), rng.IntN(3) == 0
		if reuse {
			idAt = 0 // the ID tells the calls apart: it must come first
		}
		for j, p := range parts {
			d := middleware.ToolCallDelta{Index: idx, Arguments: p}
			if j == idAt || repeat {
				d.ID = c.ID
			}
			if j == nameAt || repeat {
				d.Name = c.Name
			}
			queues[i] = append(queues[i], frag{i, d})
		}
	}
	var out []middleware.Chunk
	for _, p := range fragments(rng, want.Message.Reasoning) {
		out = append(out, middleware.Chunk{Reasoning: p})
	}
	for _, p := range fragments(rng, want.Refusal) {
		out = append(out, middleware.Chunk{Refusal: p})
	}
	content := fragments(rng, want.Message.Content)
	next := 0 // with reuse, calls go strictly one after the other
	for {
		var live []int
		for i, q := range queues {
			if len(q) > 0 && (!reuse || i == next) {
				live = append(live, i)
			}
		}
		if len(live) == 0 && len(content) == 0 {
			break
		}
		var c middleware.Chunk
		if len(content) > 0 && (len(live) == 0 || rng.IntN(2) == 0) {
			c.Content, content = content[0], content[1:]
		}
		for k := rng.IntN(3); k >= 0 && len(live) > 0; k-- {
			i := live[rng.IntN(len(live))]
			c.ToolCalls = append(c.ToolCalls, queues[i][0].d)
			queues[i] = queues[i][1:]
			if len(queues[i]) == 0 {
				if reuse {
					next++
					break
				}
				live = nil
				for j, q := range queues {
					if len(q) > 0 {
						live = append(live, j)
					}
				}
			}
		}
		out = append(out, c)
	}
	u := want.Usage
	out = append(out, middleware.Chunk{FinishReason: want.FinishReason}, middleware.Chunk{Usage: &u})
	return out
}

func randomAnswer(rng *rand.Rand) *middleware.Response {
	words := []string{"disk", "ok", "é", "日本", `"q"`, "\\", " ", "{", "}"}
	text := func(n int) string {
		var b strings.Builder
		for range rng.IntN(n + 1) {
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String()
	}
	r := &middleware.Response{
		Message:      middleware.Message{Role: middleware.RoleAssistant, Content: text(12), Reasoning: text(4)},
		FinishReason: "stop",
		Usage:        middleware.Usage{InputTokens: rng.Int64N(100), OutputTokens: rng.Int64N(100)},
	}
	if rng.IntN(5) == 0 {
		r.Refusal = "I can't" + text(3)
	}
	for i := range rng.IntN(5) {
		r.Message.ToolCalls = append(r.Message.ToolCalls, middleware.ToolCall{
			ID: "call_" + string(rune('a'+i)), Name: "tool_" + text(1), Arguments: `{"a":"` + text(6) + `"}`,
		})
		r.FinishReason = "tool_calls"
	}
	return r
}

// TestInterleavedToolCallFragmentsAssembleByIndex: whatever the order of
// the fragments and wherever the IDs and names are, the assembled answer
// is the answer that was cut up (this once panicked with "strings.Builder
// copied by value").
func TestInterleavedToolCallFragmentsAssembleByIndex(t *testing.T) {
	t.Parallel()
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 12))
		want := randomAnswer(rng)
		reuse := rng.IntN(4) == 0
		var acc middleware.Accumulator
		chunks := scatter(rng, want, reuse)
		for _, c := range chunks {
			acc.Add(c)
		}
		got := acc.Response()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d (reuse index 0: %t): assembled\n%+v\nwant\n%+v\nfrom %+v", seed, reuse, got, want, chunks)
		}
	}
}

func TestNewIDAtAUsedIndexIsANewCall(t *testing.T) {
	t.Parallel()
	var acc middleware.Accumulator
	for _, d := range []middleware.ToolCallDelta{
		{Index: 0, ID: "a", Name: "f"}, {Index: 0, Arguments: `{"x"`}, {Index: 0, Arguments: `:1}`},
		{Index: 0, ID: "b", Name: "g"}, {Index: 0, Arguments: `{}`},
		{Index: 0, ID: "b", Arguments: ``}, // the same ID again: the same call
	} {
		acc.Add(middleware.Chunk{ToolCalls: []middleware.ToolCallDelta{d}})
	}
	want := []middleware.ToolCall{{ID: "a", Name: "f", Arguments: `{"x":1}`}, {ID: "b", Name: "g", Arguments: `{}`}}
	if got := acc.Response().Message.ToolCalls; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAccumulatorBoundsIndexesAndCalls(t *testing.T) {
	t.Parallel()
	var acc middleware.Accumulator
	acc.Add(middleware.Chunk{ToolCalls: []middleware.ToolCallDelta{{Index: -1, ID: "x"}, {Index: middleware.MaxToolCalls, ID: "y"}}})
	for i := range 2 * middleware.MaxToolCalls {
		acc.Add(middleware.Chunk{ToolCalls: []middleware.ToolCallDelta{{Index: 0, ID: string(rune('a' + i))}}})
	}
	if n := len(acc.Response().Message.ToolCalls); n != middleware.MaxToolCalls {
		t.Fatalf("%d calls, want at most %d", n, middleware.MaxToolCalls)
	}
}

func TestSafeHandleTurnsAPanicIntoAnError(t *testing.T) {
	t.Parallel()
	var events []middleware.Event
	ctx := middleware.WithObserver(context.Background(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		events = append(events, e)
	}))
	boom := errors.New("boom")
	h := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) { panic(boom) })
	resp, err := middleware.SafeHandle(ctx, h, &middleware.Request{}, "test")
	var pe *middleware.PanicError
	if resp != nil || !errors.Is(err, middleware.ErrPanic) || !errors.Is(err, boom) || !errors.As(err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("resp %v, err %v", resp, err)
	}
	if len(events) != 1 {
		t.Fatalf("events %v", events)
	}
	if e, ok := events[0].(middleware.PanicRecovered); !ok || e.Where != "test" || !strings.Contains(string(e.Stack), "accumulate_test.go") {
		t.Fatalf("event %+v", events[0])
	}
}
