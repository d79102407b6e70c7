package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/tokenwise/tokenwise/middleware"
)

// sharedWire is a spansWire that also gives shared copies of some of its
// body's ranges, as the OpenAI adapter's Wire gives its memo's messages.
type sharedWire struct {
	spansWire
	starts []uint32
	vals   [][]byte
}

func (w *sharedWire) SharedValues(starts []uint32, vals [][]byte) ([]uint32, [][]byte) {
	return append(starts, w.starts...), append(vals, w.vals...)
}

// randomSharedWire returns a body of random bytes with random spans
// (empty, overlapping none or each other, in order) and random shared
// values: most within a span, some across a span's end, out of order,
// overlapping the previous one, empty, or in no span at all (all of which
// newCanonShared must copy instead of sharing).
func randomSharedWire(r *rand.Rand) *sharedWire {
	body := make([]byte, r.IntN(800))
	for i := range body {
		body[i] = byte('a' + r.IntN(4))
	}
	w := &sharedWire{spansWire: spansWire{body: body, whole: true}}
	pos := 0
	for pos < len(body) && r.IntN(12) != 0 {
		s := pos + r.IntN(len(body)-pos+1)
		if r.IntN(4) == 0 && pos > 0 { // a span that overlaps the previous one
			s = r.IntN(pos + 1)
		}
		e := s + r.IntN(min(len(body)-s, 200)+1)
		w.spans = append(w.spans, uint32(s), uint32(e))
		pos = e
	}
	vpos := 0
	for range r.IntN(20) {
		if vpos >= len(body) {
			break
		}
		s := vpos + r.IntN(min(len(body)-vpos, 60)+1)
		if r.IntN(6) == 0 && vpos > 0 {
			s = r.IntN(vpos + 1) // out of order or overlapping
		}
		if s > len(body) {
			break
		}
		e := s + r.IntN(min(len(body)-s, 120)+1)
		w.starts = append(w.starts, uint32(s))
		w.vals = append(w.vals, bytes.Clone(body[s:e])) // a copy, as the memo's
		vpos = e
	}
	return w
}

// TestCanonSharedIsTheCanonicalRequest: for random bodies, spans and
// shared values, the pieces a miss keeps expand to exactly the canonical
// request, equal the state of that request (piece by piece and flat), and
// equal no request that differs from it by one byte of the body, one
// byte more or less in a span, or one span more; an entry keeping them
// round-trips through its binary form.
func TestCanonSharedIsTheCanonicalRequest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	shared := 0
	for range 5000 {
		w := randomSharedWire(r)
		req := &middleware.Request{Model: "m", Native: w}
		canon := AppendCanonical(nil, "team:x", req)
		st := statePool.Get().(*keyState)
		keyOf(st, nil, "team:", "x", req)
		if st.kind != kindSpans {
			t.Fatalf("kind %d, want kindSpans", st.kind)
		}
		c := newCanonShared(st, w, testKeep.vals)
		putState(st)
		if c == nil {
			continue
		}
		shared++
		if got := c.appendTo(nil); !bytes.Equal(got, canon) {
			t.Fatalf("pieces expand to %q, want %q", got, canon)
		}
		if !c.equal(canon) || c.equal(canon[:len(canon)-1]) || c.equal(append(bytes.Clone(canon), 0)) {
			t.Fatal("flat equality is wrong at the ends")
		}
		check := func(w2 *sharedWire, want bool, what string) {
			t.Helper()
			st := statePool.Get().(*keyState)
			defer putState(st)
			keyOf(st, nil, "team:", "x", &middleware.Request{Model: "m", Native: w2})
			if got := c.equalSpans(st); got != want {
				t.Fatalf("%s: equalSpans %v, want %v", what, got, want)
			}
			if got := (canon2{c}).matches(st); got != want {
				t.Fatalf("%s: matches %v, want %v", what, got, want)
			}
		}
		// The same request in a new body (no shared memory with the first).
		same := &sharedWire{spansWire: spansWire{body: bytes.Clone(w.body), spans: w.spans, whole: true}}
		check(same, true, "same bytes")
		if len(w.body) > 0 {
			mut := bytes.Clone(w.body)
			i := r.IntN(len(mut))
			mut[i] ^= 0x20
			inSpan := false
			for k := 0; k < len(w.spans); k += 2 {
				inSpan = inSpan || (int(w.spans[k]) <= i && i < int(w.spans[k+1]))
			}
			check(&sharedWire{spansWire: spansWire{body: mut, spans: w.spans, whole: true}}, !inSpan, "one byte changed")
		}
		if n := len(w.spans); n > 0 && w.spans[n-1] < uint32(len(w.body)) {
			longer := append([]uint32(nil), w.spans...)
			longer[n-1]++
			check(&sharedWire{spansWire: spansWire{body: w.body, spans: longer, whole: true}}, false, "one byte more")
		}
		if n := len(w.spans); n > 0 && w.spans[n-1] > w.spans[n-2] {
			shorter := append([]uint32(nil), w.spans...)
			shorter[n-1]--
			check(&sharedWire{spansWire: spansWire{body: w.body, spans: shorter, whole: true}}, false, "one byte less")
		}
		check(&sharedWire{spansWire: spansWire{body: w.body, spans: append(append([]uint32(nil), w.spans...), 0, 0), whole: true}}, false, "one span more")

		e := &Entry{shared: c, Response: middleware.Response{ID: "x"}}
		bin, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Entry
		if err := back.UnmarshalBinary(bin); err != nil || !bytes.Equal(back.Request, canon) || !back.matches(canon) || !e.matches(canon) {
			t.Fatalf("binary round trip: %v", err)
		}
	}
	if shared < 1500 {
		t.Fatalf("only %d of 5000 requests had shared pieces", shared)
	}
}

// canon2 wraps a canonShared as the canon a flight or entry keeps.
type canon2 struct{ c *canonShared }

func (c canon2) matches(st *keyState) bool { return canon{shared: c.c}.matches(st) }

// TestMissSharesTheValuesNotTheBody: through the cache layer on a Memory
// store, a miss of a request whose native request gives shared values
// stores an entry that refers to those values and copies only the rest:
// it keeps neither the body nor a copy of the shared bytes; the same
// request in a new body is a hit, one that differs by a byte in a shared
// value a miss.
func TestMissSharesTheValuesNotTheBody(t *testing.T) {
	store, h, calls := memoryCache(t)
	msg := bytes.Repeat([]byte("m"), 4000)
	memo := bytes.Clone(msg) // the memo's copy, shared by every request that sends msg
	mk := func(last string) *middleware.Request {
		body := append(append([]byte(`{"messages":[`), msg...), `,"`+last+`"]}`...)
		return &middleware.Request{Model: "m", Native: &sharedWire{
			spansWire: spansWire{body: body, spans: []uint32{1, uint32(len(body) - 1)}, whole: true},
			starts:    []uint32{13}, vals: [][]byte{memo}}}
	}
	ctx := context.Background()
	for i, step := range []struct {
		last string
		hit  bool
	}{{"a", false}, {"a", true}, {"b", false}, {"b", true}} {
		resp, err := h.Handle(ctx, mk(step.last))
		if err != nil || resp.FromCache != step.hit {
			t.Fatalf("step %d (%s): FromCache %v, err %v; want hit %v", i, step.last, resp.FromCache, err, step.hit)
		}
	}
	changed := mk("a")
	changed.Native.(*sharedWire).body[500] = 'x'
	if resp, err := h.Handle(ctx, changed); err != nil || resp.FromCache {
		t.Fatalf("a request changed inside a shared value: FromCache %v, err %v", resp.FromCache, err)
	}
	if *calls != 3 {
		t.Fatalf("%d provider calls, want 3", *calls)
	}
	var chains []*chainNode[sharedVal]
	for _, last := range []string{"a", "b"} {
		canon := AppendCanonical(nil, ScopeTeamPrefix, mk(last))
		e, _ := store.Get(ctx, Sum(canon))
		if e == nil || e.shared == nil || e.ref != nil || e.Request != nil || !bytes.Equal(e.Canonical(), canon) {
			t.Fatalf("stored entry %+v does not keep shared pieces", e)
		}
		if len(e.shared.own()) > 100 || e.shared.segs.length() != 1 || e.shared.segs.v.p != &memo[0] {
			t.Fatalf("entry keeps %d own bytes and %d shared values, want the memo's copy and a few bytes", len(e.shared.own()), e.shared.segs.length())
		}
		chains = append(chains, e.shared.segs)
	}
	// The two entries hold one chain node for the shared value.
	if chains[0] != chains[1] {
		t.Fatal("the entries of two requests with the same shared value do not share its chain node")
	}
}

// testKeep are the tables the key tests share, so that the slots of the
// tail table are taken by the tails of many random requests in turn, and
// the chains of random requests collide in the few slots of the chain
// tables.
var testKeep = &keepTables{tails: new(tailTable), encs: newEncChains(8), vals: newValChains(8)}

// TestRopesShareEqualTails: the ropes of requests whose tails (tools,
// settings) are equal share one copy of the tail, even when each request
// encodes its tools into new memory; a tail that differs by one byte, or
// one too short to share, is copied; every rope is still its request's
// canonical encoding and matches only its request.
func TestRopesShareEqualTails(t *testing.T) {
	tails := new(tailTable)
	tools := func(desc string) []middleware.Tool {
		params := []byte(`{"type":"object","properties":{"host":{"type":"string","description":"` + strings.Repeat("h", 300) + `"}}}`)
		return []middleware.Tool{{Name: "check_disk", Description: desc, Parameters: params}} // new bytes every call
	}
	mk := func(last, desc string, withTools bool) *middleware.Request {
		req := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: "user", Content: last}}}
		if withTools {
			req.Tools = tools(desc)
		}
		return req
	}
	rope := func(req *middleware.Request) *canonRope {
		st := statePool.Get().(*keyState)
		defer putState(st)
		keyOf(st, nil, "team:", "x", req)
		r := newRope(st, tails, nil)
		if !r.equalState(st) || !bytes.Equal(r.appendTo(nil), AppendCanonical(nil, "team:x", req)) {
			t.Fatal("the rope is not its request's encoding")
		}
		return r
	}
	a, b := rope(mk("a", "Runs df.", true)), rope(mk("b", "Runs df.", true))
	if a.tail == nil || unsafe.SliceData(a.tail) != unsafe.SliceData(b.tail) {
		t.Fatal("two ropes of equal tails do not share them")
	}
	c := rope(mk("c", "Runs du.", true))
	if c.tail == nil || unsafe.SliceData(c.tail) == unsafe.SliceData(a.tail) {
		t.Fatal("a tail that differs by one byte is shared")
	}
	if d := rope(mk("d", "", false)); d.tail != nil {
		t.Fatal("a short tail is shared")
	}
	// Each matches its own request only.
	for _, x := range []struct {
		r   *canonRope
		req *middleware.Request
	}{{a, mk("a", "Runs df.", true)}, {c, mk("c", "Runs du.", true)}} {
		if !x.r.equal(AppendCanonical(nil, "team:x", x.req)) {
			t.Fatal("a rope does not equal its request")
		}
		other := mk(x.req.Messages[0].Content, "Runs dx.", true)
		st := statePool.Get().(*keyState)
		keyOf(st, nil, "team:", "x", other)
		if x.r.equalState(st) || x.r.equal(AppendCanonical(nil, "team:x", other)) {
			t.Fatal("a rope equals a request with other tools")
		}
		putState(st)
	}
}

// FuzzCanonShared: for any body, and spans and shared values drawn from
// seed (within and across spans, out of order, overlapping), the pieces a
// miss keeps expand to the canonical request, equal the same request in
// another buffer, and equal no request with one byte of a span changed.
func FuzzCanonShared(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"}]}`), uint64(1))
	f.Add([]byte("abcdefgh"), uint64(7))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		w := &sharedWire{spansWire: spansWire{body: body, whole: true}}
		for range r.IntN(8) {
			s := r.IntN(len(body) + 1)
			e := s + r.IntN(len(body)-s+1)
			w.spans = append(w.spans, uint32(s), uint32(e))
		}
		for range r.IntN(12) {
			s := r.IntN(len(body) + 1)
			e := s + r.IntN(len(body)-s+1)
			w.starts = append(w.starts, uint32(s))
			w.vals = append(w.vals, bytes.Clone(body[s:e]))
		}
		req := &middleware.Request{Model: "m", Native: w}
		canon := AppendCanonical(nil, "team:x", req)
		st := &keyState{}
		keyOf(st, nil, "team:", "x", req)
		c := newCanonShared(st, w, testKeep.vals)
		if c == nil {
			return
		}
		if got := c.appendTo(nil); !bytes.Equal(got, canon) {
			t.Fatalf("pieces expand to %q, want %q", got, canon)
		}
		other := &keyState{}
		keyOf(other, nil, "team:", "x", &middleware.Request{Model: "m", Native: &spansWire{body: bytes.Clone(body), spans: w.spans, whole: true}})
		if !c.equalSpans(other) || !c.equal(canon) {
			t.Fatal("the pieces do not equal their request in another buffer")
		}
		if n := len(w.spans); n > 0 && w.spans[n-1] > w.spans[n-2] {
			mut := bytes.Clone(body)
			mut[w.spans[n-2]] ^= 1
			keyOf(other, nil, "team:", "x", &middleware.Request{Model: "m", Native: &spansWire{body: mut, spans: w.spans, whole: true}})
			if c.equalSpans(other) {
				t.Fatal("the pieces equal a request with a byte of a span changed")
			}
		}
	})
}
