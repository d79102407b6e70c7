package tokens

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// convStep changes a conversation the way callers do between two calls.
type convStep struct {
	name string
	do   func(r *rand.Rand, msgs []middleware.Message, words string) []middleware.Message
}

// newMessage returns a message of a random shape: text, a tool call, a
// tool result, text and image parts, a binary part; its strings are
// pieces of words (so that two messages may share a data pointer with
// different lengths).
func newMessage(r *rand.Rand, words string) middleware.Message {
	piece := func() string {
		i := r.IntN(len(words) - 1)
		return words[i : i+1+r.IntN(min(len(words)-i-1, 300))]
	}
	switch r.IntN(7) {
	case 0:
		return middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{
			{ID: "c1", Name: "df", Arguments: `{"path":"` + piece() + `"}`}, {ID: "c2", Name: piece(), Arguments: "{}"}}}
	case 1:
		return middleware.Message{Role: middleware.RoleTool, ToolCallID: piece(), Content: piece()}
	case 2:
		return middleware.Message{Role: middleware.RoleUser, Parts: []middleware.Part{
			{Type: "text", Text: piece()}, {Type: "image_url", URL: "https://x/y.png", Detail: []string{"low", "high", ""}[r.IntN(3)]}}}
	case 3:
		return middleware.Message{Role: middleware.RoleUser, Parts: []middleware.Part{{Type: "input_audio", Data: []byte(piece())}}}
	case 4:
		return middleware.Message{Role: middleware.RoleUser, Name: piece(), Content: piece()}
	default:
		return middleware.Message{Role: middleware.RoleAssistant, Content: piece()}
	}
}

var convSteps = []convStep{
	{"resend", func(_ *rand.Rand, msgs []middleware.Message, _ string) []middleware.Message { return msgs }},
	{"append", func(r *rand.Rand, msgs []middleware.Message, w string) []middleware.Message {
		for range 1 + r.IntN(3) {
			msgs = append(msgs, newMessage(r, w))
		}
		return msgs
	}},
	{"copy of the slice", func(_ *rand.Rand, msgs []middleware.Message, _ string) []middleware.Message {
		return append([]middleware.Message(nil), msgs...)
	}},
	{"a string copied (same bytes, new pointer)", func(r *rand.Rand, msgs []middleware.Message, _ string) []middleware.Message {
		i := r.IntN(len(msgs))
		msgs[i].Content = strings.Clone(msgs[i].Content)
		msgs[i].Role = middleware.Role(strings.Clone(string(msgs[i].Role)))
		return msgs
	}},
	{"content changed in place", func(r *rand.Rand, msgs []middleware.Message, w string) []middleware.Message {
		i := r.IntN(len(msgs))
		if len(msgs[i].Content) > 1 {
			msgs[i].Content = msgs[i].Content[:len(msgs[i].Content)-1] // same pointer, shorter
		} else {
			msgs[i].Content = w[:7]
		}
		return msgs
	}},
	{"tool call or part changed in place", func(r *rand.Rand, msgs []middleware.Message, w string) []middleware.Message {
		for _, i := range r.Perm(len(msgs)) {
			m := &msgs[i]
			switch {
			case len(m.ToolCalls) > 0:
				m.ToolCalls[0].Arguments = w[3:40]
				return msgs
			case len(m.Parts) > 0 && m.Parts[0].Data != nil:
				m.Parts[0].Data = append(m.Parts[0].Data[:0], w[:20+r.IntN(40)]...)
				return msgs
			case len(m.Parts) > 1:
				m.Parts[1].Detail = []string{"low", "high"}[r.IntN(2)]
				return msgs
			}
		}
		return msgs
	}},
	{"truncate", func(r *rand.Rand, msgs []middleware.Message, _ string) []middleware.Message {
		return msgs[:max(2, len(msgs)-1-r.IntN(3))]
	}},
	{"drop a middle message (compaction)", func(r *rand.Rand, msgs []middleware.Message, _ string) []middleware.Message {
		if len(msgs) < 4 {
			return msgs
		}
		i := 2 + r.IntN(len(msgs)-2)
		return append(append([]middleware.Message(nil), msgs[:i]...), msgs[i+1:]...)
	}},
	{"sliding window", func(_ *rand.Rand, msgs []middleware.Message, _ string) []middleware.Message {
		if len(msgs) < 4 {
			return msgs
		}
		return append([]middleware.Message{msgs[0]}, msgs[2:]...)
	}},
	{"first messages replaced", func(r *rand.Rand, msgs []middleware.Message, w string) []middleware.Message {
		msgs[r.IntN(2)] = newMessage(r, w)
		return msgs
	}},
}

// The conversation table, in front of the identity table and the content
// memo, gives every request the count of an estimator without memos,
// whatever callers do between calls: re-send, append, copy strings,
// change a message in place (same pointer, another length), truncate,
// compact, slide a window, fork a conversation from another's prefix, and
// whatever the tables forget (small tables, deep chains).
func TestConversationMemoEqualsCold(t *testing.T) {
	t.Parallel()
	cold := New(WithCacheSize(0))
	for _, size := range []int{DefaultCacheSize, 64} {
		warm := New(WithCacheSize(size))
		runConvSteps(t, rand.New(rand.NewPCG(uint64(size), 17)), warm, cold, 3000)
		checkConvTable(t, warm.convs)
	}
}

// FuzzConversationMemoEqualsCold is TestConversationMemoEqualsCold over
// the sequences of changes the fuzzer's seeds draw.
func FuzzConversationMemoEqualsCold(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(0))
	f.Add(uint64(99), uint64(7), uint8(1))
	cold := New(WithCacheSize(0))
	f.Fuzz(func(t *testing.T, s1, s2 uint64, small uint8) {
		size := DefaultCacheSize
		if small&1 != 0 {
			size = 64
		}
		warm := New(WithCacheSize(size))
		runConvSteps(t, rand.New(rand.NewPCG(s1, s2)), warm, cold, 300)
		checkConvTable(t, warm.convs)
	})
}

// runConvSteps changes 8 conversations n times at random (convSteps,
// forks) and checks that warm counts each request as cold does, twice.
func runConvSteps(t *testing.T, r *rand.Rand, warm, cold *Estimator, n int) {
	t.Helper()
	words := strings.Repeat("the disk of web-3 is at 95 percent; /var/log holds 40 GB of archives. ", 12)
	models := []string{"gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "claude-sonnet-4"}
	convs := make([][]middleware.Message, 8)
	for i := range convs {
		convs[i] = []middleware.Message{{Role: middleware.RoleSystem, Content: words[:60]}, newMessage(r, words), newMessage(r, words)}
	}
	for step := range n {
		i := r.IntN(len(convs))
		s := convSteps[r.IntN(len(convSteps))]
		if r.IntN(20) == 0 { // a fork: another conversation's prefix
			j := r.IntN(len(convs))
			convs[i] = append([]middleware.Message(nil), convs[j][:2+r.IntN(len(convs[j])-1)]...)
		}
		convs[i] = s.do(r, convs[i], words)
		if len(convs[i]) > 60 {
			convs[i] = convs[i][:3]
		}
		req := &middleware.Request{Messages: convs[i]}
		model := models[r.IntN(len(models))]
		for range 2 {
			if a, b := warm.Request(model, req), cold.Request(model, req); a != b {
				t.Fatalf("step %d (%s), %s, %d messages: memoised %d, cold %d", step, s.name, model, len(req.Messages), a, b)
			}
		}
	}
}

// checkConvTable checks the table's invariants: the bytes accounted are the
// entries', within the bound; every chain within maxConvDepth, each entry
// extending its parent.
func checkConvTable(t *testing.T, tab *convTable) {
	t.Helper()
	var sum int64
	for i := range tab.es {
		e := tab.es[i].Load()
		if e == nil {
			continue
		}
		sum += e.size
		d := 0
		for x := e; x.parent != nil; x = x.parent {
			d++
			if x.base <= x.parent.base || x.base > x.parent.base+len(x.parent.msgs) {
				t.Fatalf("an entry from message %d under a parent holding %d..%d", x.base, x.parent.base, x.parent.base+len(x.parent.msgs))
			}
		}
		if d != e.depth || d > maxConvDepth {
			t.Fatalf("chain of %d entries, depth %d, bound %d", d, e.depth, maxConvDepth)
		}
	}
	if sum != tab.bytes.Load() || sum > tab.max {
		t.Fatalf("accounted %d bytes, entries hold %d, bound %d", tab.bytes.Load(), sum, tab.max)
	}
}

// An agent's turns take the conversation table: each call finds all the
// messages of the previous one, and a turn costs one entry, chained to
// the previous one up to maxConvDepth and then copied into a root.
func TestConversationMemoFindsPreviousTurn(t *testing.T) {
	t.Parallel()
	e := New()
	cold := New(WithCacheSize(0))
	variant := variantOf(O200kBase, false)
	msgs := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are terse."},
		{Role: middleware.RoleUser, Content: "Which disks are full?"},
	}
	for turn := range 3 * maxConvDepth {
		msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, Content: fmt.Sprintf("answer %d", turn)})
		req := &middleware.Request{Messages: msgs}
		h, ok := convKey(variant, msgs)
		if !ok {
			t.Fatal("text messages without an identity")
		}
		_, held, _ := e.convs.lookup(h, variant, msgs)
		if want := len(msgs) - 1; turn > 0 && held != want {
			t.Fatalf("turn %d: the table holds %d of the messages, want the previous call's %d", turn, held, want)
		}
		if a, b := e.Request("gpt-4o", req), cold.Request("gpt-4o", req); a != b {
			t.Fatalf("turn %d: %d, cold %d", turn, a, b)
		}
		last, held, _ := e.convs.lookup(h, variant, msgs)
		if held != len(msgs) || last.depth > maxConvDepth {
			t.Fatalf("turn %d: after the call the table holds %d of %d messages, chain depth %d", turn, held, len(msgs), last.depth)
		}
	}
	checkConvTable(t, e.convs)
}

// Tool lists, memoised as a whole, count as an estimator without memos
// counts them, through random changes: a tool added, dropped or reordered,
// a description changed, parameters rewritten in place (the caller's
// bytes), invalid JSON, enums and nested schemas.
func TestToolListMemoEqualsCold(t *testing.T) {
	t.Parallel()
	warm := New()
	cold := New(WithCacheSize(0))
	r := rand.New(rand.NewPCG(5, 6))
	params := []string{
		`{"type":"object","properties":{"host":{"type":"string","description":"the host."}},"required":["host"]}`,
		`{"type":"object","properties":{"unit":{"type":"string","enum":["c","f"]},"n":{"type":"integer"}}}`,
		`{"type":"object","properties":{"filter":{"type":"object","properties":{"x":{"type":"string"}}}}}`,
		`{"type":"object","properties":{"v":{"type":["string","null"]}}}`,
		`not json`, ``, `{}`,
	}
	newTool := func() middleware.Tool {
		return middleware.Tool{Name: fmt.Sprintf("tool_%d", r.IntN(6)), Description: strings.Repeat("Runs it. ", r.IntN(4)),
			Parameters: []byte(params[r.IntN(len(params))])}
	}
	var tools []middleware.Tool
	msgs := []middleware.Message{{Role: middleware.RoleUser, Content: "check the disks"}}
	for step := range 2000 {
		switch k := r.IntN(5); {
		case k == 0 || len(tools) == 0:
			tools = append(tools, newTool())
		case k == 1:
			tools = append(tools[:0:0], tools[1:]...)
		case k == 2:
			r.Shuffle(len(tools), func(i, j int) { tools[i], tools[j] = tools[j], tools[i] })
		case k == 3:
			tools[r.IntN(len(tools))].Description += "More. "
		default:
			p := &tools[r.IntN(len(tools))].Parameters
			*p = append((*p)[:0], params[r.IntN(len(params))]...) // in place when it fits
		}
		if len(tools) > 6 {
			tools = tools[:2]
		}
		req := &middleware.Request{Messages: msgs, Tools: tools}
		for _, model := range []string{"gpt-4o", "gpt-4", "claude-sonnet-4"} {
			if a, b := warm.Request(model, req), cold.Request(model, req); a != b {
				t.Fatalf("step %d, %s, %d tools: memoised %d, cold %d", step, model, len(tools), a, b)
			}
		}
	}
}

// TestLegacyCallAndRefusalAreCountedPastTheMemos: an assistant message's
// legacy function call and refusal are counted, and the memos (by
// identity, by content, of conversations) never give the count of the
// same message with another or without them.
func TestLegacyCallAndRefusalAreCountedPastTheMemos(t *testing.T) {
	args := strings.Repeat("disk ", 300)
	base := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "sys"},
		{Role: middleware.RoleUser, Content: "hi"},
		{Role: middleware.RoleAssistant},
		{Role: middleware.RoleUser, Content: "go on"},
	}
	variants := []func(m *middleware.Message){
		func(m *middleware.Message) {},
		func(m *middleware.Message) { m.FunctionCall = &middleware.ToolCall{Name: "df", Arguments: args} },
		func(m *middleware.Message) { m.FunctionCall = &middleware.ToolCall{Name: "df", Arguments: args + args} },
		func(m *middleware.Message) { m.Refusal = args },
		func(m *middleware.Message) {},
	}
	cold := func(msgs []middleware.Message) int64 {
		return New(WithCacheSize(0)).Request("gpt-4o", &middleware.Request{Messages: msgs})
	}
	warm := New()
	var plain int64
	for round := range 2 {
		for i, v := range variants {
			msgs := append([]middleware.Message(nil), base...)
			v(&msgs[2])
			want := cold(msgs)
			if got := warm.Request("gpt-4o", &middleware.Request{Messages: msgs}); got != want {
				t.Errorf("round %d, variant %d: %d, want %d", round, i, got, want)
			}
			if i == 0 {
				plain = want
			} else if i < 4 && want < plain+300 {
				t.Errorf("variant %d: %d, not counted (%d without)", i, want, plain)
			}
		}
	}
}
