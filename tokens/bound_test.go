package tokens

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

var boundModels = []string{"gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "claude-sonnet-4"}

// checkBound checks Bound and Within of req on model against cold's
// count: the bound is at least the count, and Within answers as the count
// does at the limits around it.
func checkBound(t *testing.T, what string, e, cold *Estimator, model string, req *middleware.Request) {
	t.Helper()
	want := cold.Request(model, req)
	b := e.Bound(model, req)
	if b < want {
		t.Fatalf("%s, %s: Bound %d < count %d", what, model, b, want)
	}
	for _, limit := range []int64{want - 1, want, b, b - 1} {
		if got := e.Within(model, req, limit); got != (want <= limit) {
			t.Fatalf("%s, %s: Within(%d) = %v, count %d (bound %d)", what, model, limit, got, want, b)
		}
	}
}

// The bound is never below the count, whatever the text (any rune,
// invalid UTF-8, tiktoken's special tokens, long runs of one byte), the
// message's shape and the model, cold or with the tables holding some of
// the messages; Within says what comparing the count says.
func TestBoundIsAtLeastTheCount(t *testing.T) {
	t.Parallel()
	cold := New(WithCacheSize(0))
	r := rand.New(rand.NewPCG(5, 8))
	texts := corpus(400, 3)
	for range 200 {
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.IntN(256)) // mostly invalid UTF-8
		}
		texts = append(texts, string(b))
	}
	texts = append(texts, "", "<|endoftext|><|fim_prefix|>", strings.Repeat("1", 300), strings.Repeat("\xff", 50),
		strings.Repeat(" ", 200), strings.Repeat("日本語", 40), "\xed\xa0\x80 surrogate")
	text := func() string { return texts[r.IntN(len(texts))] }
	tools := []middleware.Tool{weatherTool(), {Name: text(), Description: text(), Parameters: []byte(`{"properties":{"a":{"type":"string","enum":[1,2,"x"]}}}`)}}
	for _, e := range []*Estimator{New(), New(WithCacheSize(64)), cold} {
		for i := range 600 {
			var msgs []middleware.Message
			for range 1 + r.IntN(6) {
				m := middleware.Message{Role: middleware.RoleUser, Content: text()}
				switch r.IntN(5) {
				case 0:
					m.Name = text()
				case 1:
					m.Role, m.ToolCalls = middleware.RoleAssistant, []middleware.ToolCall{{ID: "c", Name: text(), Arguments: text()}}
				case 2:
					m.Role, m.ToolCallID = middleware.RoleTool, text()
				case 3:
					m.Content, m.Parts = "", []middleware.Part{{Type: "text", Text: text()}, {Type: "image_url", URL: "https://x/y.png"},
						{Type: "input_audio", Data: []byte(text())}}
				}
				msgs = append(msgs, m)
			}
			req := &middleware.Request{Messages: msgs}
			if i%3 == 0 {
				req.Tools = tools[:1+r.IntN(len(tools))]
			}
			model := boundModels[r.IntN(len(boundModels))]
			checkBound(t, "cold", e, cold, model, req)
			e.Request(model, req) // the tables hold some messages now
			e.Request(model, req)
			checkBound(t, "counted", e, cold, model, req)
			req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleUser, Content: text()})
			checkBound(t, "one new message", e, cold, model, req)
		}
	}
}

// The bound over the changes callers make between two calls, with the
// conversation and identity tables warm: never below the count.
func TestBoundOverConversations(t *testing.T) {
	t.Parallel()
	cold := New(WithCacheSize(0))
	warm := New()
	r := rand.New(rand.NewPCG(11, 12))
	words := strings.Repeat("the disk of web-3 is at 95 percent; /var/log holds 40 GB of archives. ", 12)
	convs := make([][]middleware.Message, 8)
	for i := range convs {
		convs[i] = []middleware.Message{{Role: middleware.RoleSystem, Content: words[:60]}, newMessage(r, words), newMessage(r, words)}
	}
	for step := range 3000 {
		i := r.IntN(len(convs))
		s := convSteps[r.IntN(len(convSteps))]
		convs[i] = s.do(r, convs[i], words)
		if len(convs[i]) > 60 {
			convs[i] = convs[i][:3]
		}
		req := &middleware.Request{Messages: convs[i]}
		model := boundModels[r.IntN(len(boundModels))]
		checkBound(t, s.name, warm, cold, model, req)
		if step%2 == 0 {
			warm.Request(model, req) // counted on some steps only, as a layer that needs the count does
		}
	}
}

// BoundForCall answers with the call's count when a layer made it, and
// with the bound, which it does not memoise, otherwise.
func TestBoundForCallTakesTheCallsCount(t *testing.T) {
	t.Parallel()
	e := New()
	req := &middleware.Request{Model: "gpt-4o", Messages: cookbookMessages()}
	want := New(WithCacheSize(0)).Request("gpt-4o", req) // 124
	ctx, ci := middleware.StartCall(context.Background(), middleware.CallFacts{})
	if n, exact := BoundForCall(ctx, e, "gpt-4o", req); exact || n != e.Bound("gpt-4o", req) || n <= want {
		t.Fatalf("BoundForCall before a count = %d, %v; want the bound %d (> %d), not exact", n, exact, e.Bound("gpt-4o", req), want)
	}
	if _, ok := ci.EstimateOf(e.callKey("gpt-4o", req)); ok {
		t.Fatal("the bound was memoised as the call's count")
	}
	if got := ForCall(ctx, e, "gpt-4o", req); got != want {
		t.Fatalf("ForCall = %d, want %d", got, want)
	}
	if n, exact := BoundForCall(ctx, e, "gpt-4o", req); !exact || n != want {
		t.Fatalf("BoundForCall after ForCall = %d, %v; want %d, exact", n, exact, want)
	}
	if n, exact := BoundForCall(ctx, e, "gpt-4", req); exact || n < 129 {
		t.Fatalf("BoundForCall of another model = %d, %v; want its own bound, not gpt-4o's count", n, exact)
	}
	if n, exact := BoundForCall(context.Background(), e, "gpt-4o", req); exact || n < want {
		t.Fatalf("BoundForCall outside a call = %d, %v", n, exact)
	}
}

// FuzzBoundIsAtLeastTheCount: any strings in any field of a message.
func FuzzBoundIsAtLeastTheCount(f *testing.F) {
	f.Add("hello world", "bob", `{"a":1}`, uint8(0))
	f.Add("\xff\xfe<|endoftext|>", "", "", uint8(1))
	f.Add(strings.Repeat("9", 100), "x", "\x00", uint8(3))
	cold := New(WithCacheSize(0))
	warm := New()
	f.Fuzz(func(t *testing.T, content, name, args string, m uint8) {
		model := boundModels[int(m)%len(boundModels)]
		req := &middleware.Request{Messages: []middleware.Message{
			{Role: middleware.RoleUser, Name: name, Content: content},
			{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{Name: name, Arguments: args}}},
			{Role: middleware.RoleTool, ToolCallID: args, Parts: []middleware.Part{{Type: "text", Text: content}}},
		}}
		checkBound(t, "fuzz", warm, cold, model, req)
		warm.Request(model, req)
		checkBound(t, "fuzz, counted", warm, cold, model, req)
	})
}

// The bound entries of the conversation table (boundPrefix) give Bound
// exactly what an estimator without memos bounds, whatever callers do
// between calls (convSteps: re-send, append, copy strings, change or drop
// messages, fork), whatever the text (invalid UTF-8 included: a string
// of the entry was bounded at three tokens a byte if it was not valid) and
// the model (its encoding, none, the legacy framing) on the same
// conversation; with some requests counted too (their count entries
// taking over), the bound stays between the count and the cold bound.
func TestBoundEntriesGiveTheColdBound(t *testing.T) {
	t.Parallel()
	cold := New(WithCacheSize(0))
	words := strings.Repeat("the disk of web-3 is at 95 percent; /var/log holds 40 GB of archives. \xff\xfe日本語 \xe6\x97 ", 8)
	for _, tc := range []struct {
		size  int
		count bool
	}{{DefaultCacheSize, false}, {64, false}, {DefaultCacheSize, true}} {
		warm := New(WithCacheSize(tc.size))
		r := rand.New(rand.NewPCG(uint64(tc.size), 23))
		convs := make([][]middleware.Message, 8)
		for i := range convs {
			convs[i] = []middleware.Message{{Role: middleware.RoleSystem, Content: words[:60]}, newMessage(r, words), newMessage(r, words)}
		}
		for step := range 3000 {
			i := r.IntN(len(convs))
			s := convSteps[r.IntN(len(convSteps))]
			if r.IntN(20) == 0 {
				j := r.IntN(len(convs))
				convs[i] = append([]middleware.Message(nil), convs[j][:2+r.IntN(len(convs[j])-1)]...)
			}
			convs[i] = s.do(r, convs[i], words)
			if len(convs[i]) > 60 {
				convs[i] = convs[i][:3]
			}
			req := &middleware.Request{Messages: convs[i]}
			model := boundModels[r.IntN(len(boundModels))]
			want := cold.Bound(model, req)
			for range 2 {
				got := warm.Bound(model, req)
				if !tc.count && got != want {
					t.Fatalf("step %d (%s), %s, %d messages: Bound %d, cold %d", step, s.name, model, len(req.Messages), got, want)
				}
				if n := cold.Request(model, req); tc.count && (got > want || got < n) {
					t.Fatalf("step %d (%s), %s, %d messages: Bound %d, cold bound %d, count %d", step, s.name, model, len(req.Messages), got, want, n)
				}
			}
			if tc.count && step%3 == 0 {
				warm.Request(model, req)
			}
		}
		checkConvTable(t, warm.convs)
	}
}

// A conversation gets a bound entry on its second sight, holding every
// message but the last: a one-shot request costs Bound no allocation, and
// the next call of a conversation whose last message changed reads only
// that message's bytes.
func TestBoundEntryOnSecondSight(t *testing.T) {
	e := New()
	variant := variantOf(O200kBase, false)
	msgs := []middleware.Message{
		{Role: middleware.RoleSystem, Content: strings.Repeat("You are terse. ", 20)},
		{Role: middleware.RoleUser, Content: "Which disks are full?"},
		{Role: middleware.RoleAssistant, Content: "web-3's /var."},
		{Role: middleware.RoleUser, Content: "Clean it."},
	}
	req := &middleware.Request{Messages: msgs}
	ck, _ := convKey(variant, msgs)
	held := func() int {
		_, p, _ := e.convs.find(ck^boundSalt, variant, msgs, true)
		return p
	}
	want := New(WithCacheSize(0)).Bound("gpt-4o", req)
	// One-shot requests: each another conversation (other strings).
	var oneShots []*middleware.Request
	for range 11 {
		m := append([]middleware.Message(nil), msgs...)
		for i := range m {
			m[i].Content = strings.Clone(m[i].Content)
		}
		oneShots = append(oneShots, &middleware.Request{Messages: m})
	}
	k := 0
	if allocs := testing.AllocsPerRun(10, func() { e.Bound("gpt-4o", oneShots[k]); k++ }); allocs != 0 {
		t.Fatalf("one-shot requests: %v allocations each, want none", allocs)
	}
	if e.Bound("gpt-4o", req); held() != 0 {
		t.Fatalf("first sight: entry of %d messages, want none", held())
	}
	if got := e.Bound("gpt-4o", req); got != want || held() != len(msgs)-1 {
		t.Fatalf("second sight: Bound %d (want %d), entry of %d messages, want %d", got, want, held(), len(msgs)-1)
	}
	if _, p, _ := e.convs.lookup(ck, variant, msgs); p != 0 {
		t.Fatalf("the bound entry was found as a count entry of %d messages", p)
	}
	msgs[3].Content = "Clean it now."
	want = New(WithCacheSize(0)).Bound("gpt-4o", req)
	if allocs := testing.AllocsPerRun(10, func() {
		if got := e.Bound("gpt-4o", req); got != want {
			t.Fatalf("last message changed: Bound %d, want %d", got, want)
		}
	}); allocs != 0 {
		t.Fatalf("last message changed: %v allocations, want none", allocs)
	}
	if n := New(WithCacheSize(0)).Request("gpt-4o", req); e.Request("gpt-4o", req) != n {
		t.Fatalf("Request after Bound = %d, want %d", e.Request("gpt-4o", req), n)
	}
}

// Bound entries give the cold bound of conversations that share their
// first two messages (the same strings: one conversation key) and then
// reorder their messages (two swapped, the last moved into the middle),
// swap a message for an equal copy or a message of another conversation,
// or change a binary part's bytes in place, each step on a random model;
// the bound stays at least the exact count.
func TestBoundEntriesFollowReorderedConversations(t *testing.T) {
	t.Parallel()
	cold := New(WithCacheSize(0))
	words := strings.Repeat("the disk of web-3 is at 95 percent; \xff\xfe日本語 \xe6\x97 ", 12)
	for _, size := range []int{DefaultCacheSize, 64} {
		warm := New(WithCacheSize(size))
		r := rand.New(rand.NewPCG(uint64(size), 41))
		first := []middleware.Message{{Role: middleware.RoleSystem, Content: words[:80]}, {Role: middleware.RoleUser, Content: words[3:50]}}
		convs := make([][]middleware.Message, 6)
		for i := range convs {
			convs[i] = append([]middleware.Message(nil), first...)
			for range 2 + r.IntN(6) {
				convs[i] = append(convs[i], newMessage(r, words))
			}
		}
		for step := range 4000 {
			c := convs[r.IntN(len(convs))]
			if len(c) > 3 {
				i, j := 2+r.IntN(len(c)-2), 2+r.IntN(len(c)-2)
				switch r.IntN(5) {
				case 0:
					c[i], c[j] = c[j], c[i]
				case 1:
					last := c[len(c)-1]
					copy(c[i+1:], c[i:len(c)-1])
					c[i] = last
				case 2:
					c[i].Content = strings.Clone(c[i].Content)
				case 3:
					o := convs[r.IntN(len(convs))]
					c[i] = o[2+r.IntN(len(o)-2)]
				case 4:
					for k := range c[i].Parts {
						if d := c[i].Parts[k].Data; len(d) > 0 {
							d[r.IntN(len(d))] ^= 0x80 // in place: the entry must not see it
						}
					}
				}
			}
			if r.IntN(4) == 0 && len(c) < 30 {
				c = append(c, newMessage(r, words))
			}
			convs[r.IntN(len(convs))] = c
			req := &middleware.Request{Messages: c}
			model := boundModels[r.IntN(len(boundModels))]
			want := cold.Bound(model, req)
			for range 2 {
				if got := warm.Bound(model, req); got != want {
					t.Fatalf("size %d, step %d, %s, %d messages: Bound %d, cold %d", size, step, model, len(c), got, want)
				}
			}
			if n := cold.Request(model, req); want < n {
				t.Fatalf("size %d, step %d, %s: bound %d < count %d", size, step, model, want, n)
			}
		}
		checkConvTable(t, warm.convs)
	}
}
