package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// gen makes random requests whose messages are often the very values
// (same strings) of earlier requests, as an agent resends them, and
// sometimes copies of them (equal bytes, other strings) or substrings of
// them (same data pointer, another length).
type gen struct {
	r    *rand.Rand
	pool []middleware.Message
}

func (g *gen) text() string {
	const alphabet = "ab c\x00é{}\"[\n"
	n := g.r.IntN(8)
	if g.r.IntN(10) == 0 {
		n = 100 + g.r.IntN(300) // lengths of two-byte uvarints
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (g *gen) data() []byte {
	switch g.r.IntN(3) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return []byte(g.text())
}

func (g *gen) message() middleware.Message {
	if len(g.pool) > 0 && g.r.IntN(3) != 0 {
		m := g.pool[g.r.IntN(len(g.pool))]
		switch g.r.IntN(8) {
		case 0: // equal bytes, other strings
			m.Content = strings.Clone(m.Content)
		case 1: // same pointer, shorter
			if m.Content != "" {
				m.Content = m.Content[:len(m.Content)-1]
			}
		}
		return m
	}
	m := middleware.Message{Role: []middleware.Role{"system", "user", "assistant", "tool"}[g.r.IntN(4)], Content: g.text()}
	if g.r.IntN(4) == 0 {
		m.Name = g.text()
	}
	if g.r.IntN(4) == 0 {
		m.ToolCallID = g.text()
	}
	if g.r.IntN(5) == 0 {
		m.Reasoning = g.text()
	}
	if g.r.IntN(4) == 0 {
		for range 1 + g.r.IntN(2) {
			p := middleware.Part{Type: "text", Text: g.text(), URL: g.text(), Detail: g.text(), MIMEType: g.text()}
			if g.r.IntN(3) == 0 {
				p.Data = g.data()
			}
			m.Parts = append(m.Parts, p)
		}
	}
	if g.r.IntN(4) == 0 {
		for range 1 + g.r.IntN(2) {
			m.ToolCalls = append(m.ToolCalls, middleware.ToolCall{ID: g.text(), Name: g.text(), Arguments: g.text()})
		}
	}
	g.pool = append(g.pool, m)
	return m
}

func (g *gen) request() *middleware.Request {
	req := &middleware.Request{Model: []string{"gpt-4o", "gpt-4o-mini"}[g.r.IntN(2)]}
	for range g.r.IntN(6) {
		req.Messages = append(req.Messages, g.message())
	}
	if g.r.IntN(3) == 0 {
		req.Tools = []middleware.Tool{{Name: g.text(), Description: g.text(), Parameters: g.data()}}
	}
	if g.r.IntN(2) == 0 {
		s := g.r.Int64N(3)
		req.Seed = &s
	}
	if g.r.IntN(3) == 0 {
		req.Extra = g.data()
	}
	return req
}

// flatKey is the key of req computed the slow way: every message encoded
// and hashed, with no memo.
func flatKey(scope string, req *middleware.Request) (uint64, []byte) {
	canon := AppendCanonical(nil, scope, req)
	st := &keyState{}
	keyOf(st, nil, scope, "", req)
	return st.key, canon
}

// checkKey checks that the key and pieces keyOf gives for req with memo
// are those without a memo, and that the pieces are the canonical
// encoding.
func checkKey(t *testing.T, memo *msgMemo, scope string, req *middleware.Request) *keyState {
	t.Helper()
	st := &keyState{}
	keyOf(st, memo, scope, "", req)
	want, flat := flatKey(scope, req)
	if st.key != want {
		t.Fatalf("key with the memo %x, without %x, for %+v", st.key, want, req)
	}
	if !bytes.Equal(st.flatBytes(), flat) {
		t.Fatalf("pieces %x, canonical encoding %x", st.flatBytes(), flat)
	}
	if st.kind == kindCore {
		for i := range req.Messages {
			enc := appendMessage([]byte{tagMessage}, &req.Messages[i])
			if n := messageLenBound(&req.Messages[i]); n < len(enc) {
				t.Fatalf("length bound %d of a message of %d bytes", n, len(enc))
			}
			if !bytes.Equal(st.msgs[i].b, enc) || st.msgs[i].h != xxhash.Sum64(enc) {
				t.Fatalf("message %d: encoding %x, want %x", i, st.msgs[i].b, enc)
			}
		}
	}
	for _, c := range []canon{st.keep(true, testKeep), st.keep(true, nil), st.keep(false, nil)} {
		if !c.matches(st) || !c.matches(&keyState{kind: kindFlat, buf: flat}) {
			t.Fatal("a request does not match its own kept encoding")
		}
	}
	return st
}

// TestKeyWithTheMemoIsTheKeyWithout: for random requests whose messages
// are often those of earlier requests (the same strings, copies, or
// substrings of them), the key through the identity memo equals the key
// computed with no memo, the pieces are the canonical encoding, and a
// request matches what an entry would keep of it.
func TestKeyWithTheMemoIsTheKeyWithout(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(7, 8))}
	memo := newMsgMemo(64, 1<<20, 0) // small: slots collide, entries are evicted
	var keep []canon                 // entries hold the encodings the memo refers to
	for i := range 10000 {
		st := checkKey(t, memo, "team:"+fmt.Sprint(i%3), g.request())
		keep = append(keep, st.keep(true, testKeep))
		if len(keep) > 50 {
			keep = keep[1:]
		}
		if len(g.pool) > 200 {
			g.pool = g.pool[100:]
		}
	}
}

// TestMemoKeepsAMessageMetTwice: a message met once is encoded into
// scratch and not memoized (a one-shot request costs what it cost without
// the memo); met again, it is memoized; met a third time, its encoding is
// the memo's (the same bytes, not encoded again).
func TestMemoKeepsAMessageMetTwice(t *testing.T) {
	memo := newMsgMemo(1024, 1<<20, 0)
	// The table of messages met once is direct-mapped by the identity of
	// their strings (their addresses): two messages of one slot, met in
	// turn, would forget each other. Their strings are made again until
	// their slots differ (a 1-in-1024 draw).
	var msgs []middleware.Message
	for {
		msgs = []middleware.Message{
			{Role: "system", Content: strings.Repeat("You are terse. ", 40)},
			{Role: "user", Content: strings.Repeat("Check the disks. ", 30)},
		}
		h0, _ := identityHash(&msgs[0])
		h1, _ := identityHash(&msgs[1])
		if max(h0, 1)&memo.mask != max(h1, 1)&memo.mask {
			break
		}
	}
	live := func() int {
		n := 0
		for i := range memo.slots {
			if memo.slots[i].Load() != nil {
				n++
			}
		}
		return n
	}
	var sc encScratch
	encs, ihs := memo.encodings(nil, nil, &sc, msgs)
	if n := live(); n != 0 {
		t.Fatalf("after one sighting the memo keeps %d messages, want 0", n)
	}
	for _, e := range encs {
		if !e.tmp {
			t.Fatal("a message met once was not encoded into scratch")
		}
	}
	encs, ihs = memo.encodings(encs, ihs, &sc, msgs)
	if n := live(); n != len(msgs) {
		t.Fatalf("after two sightings the memo keeps %d messages, want %d", n, len(msgs))
	}
	second := slices.Clone(encs)
	var sc3 encScratch
	encs, _ = memo.encodings(nil, ihs, &sc3, msgs)
	for i := range msgs {
		if encs[i] != second[i] {
			t.Fatalf("message %d: the third sighting did not take the memo's encoding", i)
		}
		if !bytes.Equal(encs[i].b, appendMessage([]byte{tagMessage}, &msgs[i])) {
			t.Fatalf("message %d: the memo's encoding is not the message's", i)
		}
	}
	runtime.KeepAlive(second)
}

// FuzzKeyWithTheMemo: for any request (built from the fuzzer's bytes),
// sent three times so that the third key comes from the memo (a message
// is memoized the second time it is met), the key is the
// one computed without a memo.
func FuzzKeyWithTheMemo(f *testing.F) {
	f.Add(uint64(1), "hello", "world", byte(3))
	f.Add(uint64(2), "", "\x00\xff", byte(0))
	f.Fuzz(func(t *testing.T, seed uint64, a, b string, flags byte) {
		g := &gen{r: rand.New(rand.NewPCG(seed, uint64(flags)))}
		req := g.request()
		req.Messages = append(req.Messages, middleware.Message{Role: "user", Content: a, Name: b})
		if flags&1 != 0 {
			req.Messages = append(req.Messages, middleware.Message{Role: middleware.Role(b), Content: a + b,
				ToolCalls: []middleware.ToolCall{{ID: a, Arguments: b}}})
		}
		if flags&2 != 0 && len(req.Messages) > 0 {
			req.Messages[0].Parts = append(req.Messages[0].Parts, middleware.Part{Type: a, Data: []byte(b)})
		}
		memo := newMsgMemo(64, 1<<20, 0)
		first := checkKey(t, memo, "team:"+a, req)
		second := checkKey(t, memo, "team:"+a, req) // memoized: met twice
		third := checkKey(t, memo, "team:"+a, req)
		if first.key != second.key || first.key != third.key {
			t.Fatal("the same request has two keys")
		}
		runtime.KeepAlive(second) // its encodings, which the memo refers to
	})
}

// TestNeverAWrongHit: random requests through the cache layer on a Memory
// store (whose entries keep their requests in pieces), from several
// goroutines; then each stored request again, and again with one field or
// one byte changed (a new string, the same string shorter, a copy of the
// same bytes, the caller's bytes changed in place). The provider answers
// each request with its own canonical encoding, so an answer served for
// another request is seen: every hit must be the answer to the very
// request, every request whose encoding was stored must hit.
//
// With colliding keys (a store that keeps 8 keys, every key folded onto
// one of them), every lookup finds some other request's entry and every
// such hit must be refused by the exact compare; a stored request may then
// miss (its entry was overwritten), never get another's answer.
func TestNeverAWrongHit(t *testing.T) {
	for _, tc := range []struct {
		global, collide, shortToo bool
	}{{false, false, true}, {true, false, true}, {false, true, true}, {false, true, false}} {
		t.Run(fmt.Sprintf("global=%v/collide=%v/memo_short=%v", tc.global, tc.collide, tc.shortToo), func(t *testing.T) {
			global := tc.global
			store := NewMemory(MemoryOptions{MaxEntries: 1 << 16})
			c, err := New(Config{Global: global}, WithStore(store))
			if err != nil {
				t.Fatal(err)
			}
			if tc.collide {
				c.c.store = collidingStore{store} // still kept as a Memory keeps them
			}
			if tc.shortToo {
				// Every message through the memo, however short (by
				// default only those of memoMinBytes and more).
				c.c.memo = newMsgMemo(64, 1<<20, 0)
			}
			h := c.Middleware()(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
				return &middleware.Response{FinishReason: "stop", Message: middleware.Message{Role: "assistant",
					Content: hex.EncodeToString(AppendCanonical(nil, "", req))}}, nil
			}))
			ctx := middleware.WithTeam(context.Background(), "t")
			var mu sync.Mutex
			stored := map[string]bool{}
			send := func(t *testing.T, req *middleware.Request) bool {
				t.Helper()
				want := hex.EncodeToString(AppendCanonical(nil, "", req))
				resp, err := h.Handle(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Message.Content != want {
					t.Fatalf("wrong answer (hit %v) for %+v", resp.FromCache, req)
				}
				mu.Lock()
				defer mu.Unlock()
				if !tc.collide && resp.FromCache != stored[want] || resp.FromCache && !stored[want] {
					t.Fatalf("hit %v for a request stored %v: %+v", resp.FromCache, stored[want], req)
				}
				stored[want] = true
				return resp.FromCache
			}
			var reqs [4][]*middleware.Request
			var wg sync.WaitGroup
			for w := range reqs {
				wg.Go(func() {
					g := &gen{r: rand.New(rand.NewPCG(uint64(w), 5))}
					for range 800 {
						req := g.request()
						reqs[w] = append(reqs[w], req)
						// Concurrent identical requests may hit or share a
						// flight: only the answer is checked here.
						want := hex.EncodeToString(AppendCanonical(nil, "", req))
						resp, err := h.Handle(ctx, req)
						if err != nil || resp.Message.Content != want {
							t.Errorf("wrong answer (hit %v, err %v)", resp.FromCache, err)
							return
						}
						mu.Lock()
						stored[want] = true
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			r := rand.New(rand.NewPCG(11, 12))
			hits := 0
			for _, rs := range reqs {
				for _, req := range rs {
					send(t, req) // a hit, unless an earlier mutation changed its bytes in place
					mut := req.Clone()
					mutateOne(r, mut)
					if send(t, mut) {
						hits++ // the mutation made another stored request
					}
				}
			}
			if !tc.collide && hits > len(reqs)*800/4 {
				t.Fatalf("%d mutated requests hit: the mutations change little", hits)
			}
		})
	}
}

// mutateOne changes one field or one byte of req, replacing any slice it
// changes but the one mutation that edits the caller's bytes in place
// (which a stored entry must not see).
func mutateOne(r *rand.Rand, req *middleware.Request) {
	msgs := append([]middleware.Message(nil), req.Messages...)
	req.Messages = msgs
	if len(msgs) == 0 || r.IntN(6) == 0 {
		switch r.IntN(3) {
		case 0:
			req.Model += "x"
		case 1:
			req.Messages = append(msgs, middleware.Message{Role: "user"})
		default:
			s := int64(9)
			req.Seed = &s
		}
		return
	}
	m := &msgs[r.IntN(len(msgs))]
	flip := func(s string) string {
		if s == "" {
			return "x"
		}
		b := []byte(s)
		b[r.IntN(len(b))] ^= 1 << r.IntN(8)
		return string(b)
	}
	switch r.IntN(7) {
	case 0:
		m.Content = flip(m.Content)
	case 1:
		if m.Content != "" { // the same data pointer, one byte shorter
			m.Content = m.Content[:len(m.Content)-1]
		} else {
			m.Content = "y"
		}
	case 2:
		m.Role = middleware.Role(flip(string(m.Role)))
	case 3:
		m.Name = flip(m.Name)
	case 4:
		m.Reasoning = flip(m.Reasoning)
	case 5:
		if len(m.ToolCalls) > 0 {
			calls := append([]middleware.ToolCall(nil), m.ToolCalls...)
			calls[0].Arguments = flip(calls[0].Arguments)
			m.ToolCalls = calls
		} else {
			m.ToolCallID = flip(m.ToolCallID)
		}
	default:
		if len(m.Parts) > 0 {
			parts := append([]middleware.Part(nil), m.Parts...)
			if len(parts[0].Data) > 0 {
				parts[0].Data[0] ^= 1 // in place: the caller's bytes, which an entry must have copied
				return
			}
			parts[0].Text = flip(parts[0].Text)
			m.Parts = parts
		} else {
			m.ToolCallID = flip(m.ToolCallID)
		}
	}
}

// collidingStore folds every key onto one of 8.
type collidingStore struct{ m *Memory }

func (s collidingStore) Get(ctx context.Context, key uint64) (*Entry, error) {
	return s.m.Get(ctx, key&7)
}
func (s collidingStore) Set(ctx context.Context, key uint64, e *Entry, ttl time.Duration) error {
	return s.m.Set(ctx, key&7, e, ttl)
}

// BenchmarkKeyAgentTurn: the key of the 8 KB agent request of ./bench
// (18 messages, 3 tools) whose 17 first messages were sent before (the
// same strings) and whose last is new: memo=on is the cache layer's key
// with a Memory store (the earlier turns' entries hold their encodings),
// memo=off every message encoded and hashed, flat the encoding of
// [AppendCanonical] and its [Sum] (the key before the memo).
//
// size=80KB is the same request with tool results ten times larger.
func BenchmarkKeyAgentTurn(b *testing.B) {
	for _, size := range []int{8, 80} {
		base := middlewaretest.AgentRequest("Summarise.", size/8)
		for _, mode := range []string{"on", "off", "flat"} {
			b.Run(fmt.Sprintf("size=%dKB/memo=%s", size, mode), func(b *testing.B) {
				var memo *msgMemo
				if mode == "on" {
					memo = newMsgMemo(memoSlots, memoMaxBytes, memoMinBytes)
				}
				req := *base
				req.Messages = append([]middleware.Message(nil), base.Messages...)
				last := &req.Messages[len(req.Messages)-1]
				st := &keyState{}
				keyOf(st, memo, ScopeTeamPrefix, "t", &req)
				held := st.keep(true, nil) // an entry of the previous turn
				var buf []byte
				n := 0
				b.ReportAllocs()
				for b.Loop() {
					n++
					last.Content = "Summarise (request " + strconv.Itoa(n) + ")."
					if mode == "flat" {
						buf = AppendCanonical(buf[:0], "team:t", &req)
						_ = Sum(buf)
						continue
					}
					keyOf(st, memo, ScopeTeamPrefix, "t", &req)
				}
				runtime.KeepAlive(held)
			})
		}
	}
}

// TestRopeOwnsItsScratchEncodings: a rope kept from a state whose
// messages are all in scratch (no memo), for every number of messages
// around the sizes of the rope's arrays, is still the request's canonical
// encoding after the state is reused for another request, matches the
// request, and counts at least the memory newRope allocated for it.
func TestRopeOwnsItsScratchEncodings(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(3, 4))}
	st := &keyState{}
	for _, n := range []int{0, 1, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 25, 40, 63, 64, 65, 100} {
		req := &middleware.Request{Model: "gpt-4o"}
		for range n {
			req.Messages = append(req.Messages, g.message())
		}
		want := AppendCanonical(nil, "s", req)
		keyOf(st, nil, "s", "", req)
		// What newRope allocates: the least of five measures, as what
		// the runtime or another goroutine allocates meanwhile (now and
		// then 16 bytes) is counted in TotalAlloc too.
		var r *canonRope
		got := uint64(math.MaxUint64)
		for range 5 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r = newRope(st, nil, nil)
			runtime.ReadMemStats(&after)
			got = min(got, after.TotalAlloc-before.TotalAlloc)
		}
		if uint64(r.size()) < got {
			t.Errorf("%d messages: size %d, allocated %d", n, r.size(), got)
		}
		if !r.equalState(st) {
			t.Fatalf("%d messages: the rope does not match its state", n)
		}
		other := g.request()
		other.Messages = append(other.Messages, middleware.Message{Role: "user", Content: strings.Repeat("x", 500)})
		keyOf(st, nil, "s", "", other) // overwrites the scratch
		if got := r.appendTo(nil); !bytes.Equal(got, want) {
			t.Fatalf("%d messages: rope %x after the scratch was reused, want %x", n, got, want)
		}
		if !r.equal(want) {
			t.Fatalf("%d messages: the rope does not equal the flat encoding", n)
		}
	}
}

// TestCompactIsADeepCopy: compact sets the entry's response to one equal
// to the answer that shares none of its memory (but constants), whatever
// was in the entry's response before.
func TestCompactIsADeepCopy(t *testing.T) {
	body := string(bytes.Repeat([]byte("abcdefgh"), 16)) // strings into one body, as decoded
	r := &middleware.Response{ID: body[:5], Model: body[5:20], FinishReason: "stop",
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: body[20:60],
			Parts:     []middleware.Part{{Type: "text", Text: body[60:70], Data: []byte{1, 2, 3}}},
			ToolCalls: []middleware.ToolCall{{ID: body[70:75], Name: body[75:80], Arguments: body[80:100]}}},
		Usage: middleware.Usage{InputTokens: 3, OutputTokens: 4}}
	e := &Entry{Response: middleware.Response{ID: "stale", Refusal: "stale"}}
	compact(&e.Response, r, nil)
	if !reflect.DeepEqual(e.Response, *r) {
		t.Fatalf("compact gave %+v, want %+v", e.Response, *r)
	}
	for _, s := range []string{e.Response.ID, e.Response.Model, e.Response.Message.Content, e.Response.Message.Parts[0].Text,
		e.Response.Message.ToolCalls[0].Arguments} {
		if p := unsafe.StringData(s); uintptr(unsafe.Pointer(p)) >= uintptr(unsafe.Pointer(unsafe.StringData(body))) &&
			uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(unsafe.StringData(body)))+uintptr(len(body)) {
			t.Fatalf("%q still points into the body", s)
		}
	}
	if &e.Response.Message.Parts[0] == &r.Message.Parts[0] || &e.Response.Message.Parts[0].Data[0] == &r.Message.Parts[0].Data[0] ||
		&e.Response.Message.ToolCalls[0] == &r.Message.ToolCalls[0] {
		t.Fatal("compact shares the answer's slices")
	}
	// With the entry's room for tool calls (entryAlloc): the same copy,
	// the calls in that room when they fit, in a slice of their own when
	// not, never past their number (an append copies).
	for n := range 4 {
		r.Message.ToolCalls = nil
		for i := range n {
			r.Message.ToolCalls = append(r.Message.ToolCalls, middleware.ToolCall{ID: body[i : i+3], Name: "f", Arguments: body[i+3 : i+20]})
		}
		var ea entryAlloc
		compact(&ea.Response, r, ea.calls[:0])
		var want Entry
		compact(&want.Response, r, nil)
		if !reflect.DeepEqual(ea.Response, want.Response) || !reflect.DeepEqual(ea.Response, *r) {
			t.Fatalf("%d calls: compact with room gave %+v, want %+v", n, ea.Response, want.Response)
		}
		calls := ea.Response.Message.ToolCalls
		if inRoom := n > 0 && &calls[0] == &ea.calls[0]; inRoom != (n == 1) || cap(calls) != n {
			t.Fatalf("%d calls: in the entry's room %v, capacity %d", n, inRoom, cap(calls))
		}
	}
}
