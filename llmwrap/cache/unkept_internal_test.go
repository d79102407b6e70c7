package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// TestMissNotStoredKeepsNothing: a miss whose answer is not stored (a
// truncated answer, finish_reason length) keeps no copy of its request:
// the cache layer allocates at most its flight per call (it made the rope
// of the request, two allocations of about 1 KB for the agent request,
// before the call, then dropped it).
func TestMissNotStoredKeepsNothing(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	truncated := &middleware.Response{Model: "gpt-4o-mini", FinishReason: "length",
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: "The disks of web-1"}}
	calls := 0
	h := c.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		calls++
		return truncated, nil
	}))
	req := middlewaretest.AgentRequest("Summarise.", 1)
	ctx := context.Background()
	for range 3 { // the memo keeps the messages met twice
		if _, err := h.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		resp, err := h.Handle(ctx, req)
		if err != nil || resp != truncated {
			t.Fatal(resp, err)
		}
	})
	if calls != 104 {
		t.Fatalf("%d calls of the model, want 104 (a miss every call)", calls)
	}
	t.Logf("%.1f allocations a miss", allocs)
	if allocs > 1 && !raceEnabled {
		t.Fatalf("%.1f allocations a miss not stored, want at most 1 (its flight)", allocs)
	}
}

// TestSamePiecesIsEqualEncodings: for random pairs of requests (often
// with the same messages, as values, copies or substrings), keyed with and
// without the memo, two states have the same pieces exactly when their
// canonical encodings are equal (both are kindCore).
func TestSamePiecesIsEqualEncodings(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(21, 22))}
	memo := newMsgMemo(1<<10, 1<<20, 16)
	var prev *middleware.Request
	same := 0
	for i := range 4000 {
		req := g.request()
		if prev != nil && i%3 == 0 {
			// The previous request, or a copy of it with a change.
			cp := *prev
			cp.Messages = append([]middleware.Message(nil), prev.Messages...)
			if len(cp.Messages) > 0 && g.r.IntN(2) == 0 {
				cp.Messages[g.r.IntN(len(cp.Messages))].Content += "x"
			}
			req = &cp
		}
		var a, b keyState
		keyOf(&a, memo, "team:", "a", req)
		other := prev
		if other == nil {
			other = req
		}
		var m *msgMemo
		if g.r.IntN(2) == 0 {
			m = memo
		}
		keyOf(&b, m, "team:", "a", other)
		want := bytes.Equal(AppendCanonical(nil, "team:a", req), AppendCanonical(nil, "team:a", other))
		if got := a.samePieces(&b); got != want || b.samePieces(&a) != want {
			t.Fatalf("request %d: samePieces %v, equal encodings %v", i, got, want)
		}
		if want {
			same++
		}
		prev = req
	}
	if same < 300 {
		t.Fatalf("%d pairs of equal requests: the test tests too little", same)
	}
}

// TestKeptMissPacksItsAnswerWithItsRope: a miss of the agent request whose
// answer a Memory store keeps makes the rope's bytes and the packed
// answer one allocation (respInRope), which its size counts once: a miss
// allocates at most 4 objects in the cache layer (flight, rope, its bytes
// with the answer's, the LRU's element; the answer's bytes were a fifth),
// and the entry serves the answer on a hit.
func TestKeptMissPacksItsAnswerWithItsRope(t *testing.T) {
	const n = 400
	mem := NewMemory(MemoryOptions{MaxEntries: 4 * n})
	c, err := New(Config{}, WithStore(mem))
	if err != nil {
		t.Fatal(err)
	}
	answer := &middleware.Response{ID: "chatcmpl-1", Model: "gpt-4o-mini", FinishReason: "stop",
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: "web-3 and web-5 need cleanup."},
		Usage:   middleware.Usage{InputTokens: 2100, OutputTokens: 20}}
	h := c.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return answer, nil
	}))
	reqs := make([]*middleware.Request, n+1)
	for i := range reqs {
		reqs[i] = middlewaretest.AgentRequest("Summarise (request "+strconv.Itoa(i)+").", 1)
	}
	ctx := context.Background()
	for _, r := range reqs[:2] { // the memo keeps the messages met twice
		if _, err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	i := 2
	allocs := testing.AllocsPerRun(n-2, func() {
		resp, err := h.Handle(ctx, reqs[i])
		if err != nil || resp.FromCache {
			t.Fatal(resp, err)
		}
		i++
	})
	t.Logf("%.2f allocations a kept miss", allocs)
	if allocs > 4.1 && !raceEnabled { // the LRU's map grows now and then
		t.Fatalf("%.2f allocations a kept miss, want at most 4", allocs)
	}
	st := &keyState{}
	keyOf(st, c.c.memo, ScopeTeamPrefix, "", reqs[5])
	v, ok := mem.shard(st.key).lru.Peek(st.key)
	if !ok || v.p.rope == nil || !v.p.respInRope {
		t.Fatalf("entry %+v (found %v): want a rope with the answer in its bytes", v.p, ok)
	}
	if v.size != v.p.size() || v.p.size() >= int64(v.p.rope.size()+allocSize(cap(v.p.resp))+perEntryOverhead) {
		t.Fatalf("size %d: the answer's bytes are counted apart from the rope's allocation", v.size)
	}
	resp, err := h.Handle(ctx, reqs[5])
	if err != nil || !resp.FromCache || resp.Message.Content != answer.Message.Content || resp.ID != answer.ID {
		t.Fatalf("hit %+v, %v", resp, err)
	}
}
