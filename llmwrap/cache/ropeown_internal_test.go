package cache

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"

	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// TestRopeOfMixedMessagesIsTheCanonicalEncoding: for random requests
// (some of over 64 messages) whose messages are partly the memo's
// (shared, in the rope's chain) and partly the state's scratch (copied
// into the rope), in every interleaving, the rope kept of the request is
// its canonical encoding, before and after the state is reused for
// other requests; it matches the request's state and flat encoding, and
// matches neither for the request with one message changed.
func TestRopeOfMixedMessagesIsTheCanonicalEncoding(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(11, 12))}
	memo := newMsgMemo(1<<10, 1<<20, 16)
	keep := newKeepTables()
	st := &keyState{}
	type kept struct {
		r    *canonRope
		want []byte
	}
	var held []kept
	mixed, long := 0, 0
	for i := range 3000 {
		req := g.request()
		if i%40 == 0 {
			for range 60 + g.r.IntN(20) {
				req.Messages = append(req.Messages, g.message())
			}
		}
		want := AppendCanonical(nil, "team:a", req)
		keyOf(st, memo, "team:", "a", req)
		if st.kind != kindCore {
			t.Fatalf("kind %d for a core request", st.kind)
		}
		r := newRope(st, keep.tailTable(), keep.encChains())
		memo.adopt(st, r)
		held = append(held, kept{r, want})
		own := 0
		for _, m := range st.msgs {
			if m.tmp {
				own++
			}
		}
		if own > 0 && own < len(st.msgs) {
			mixed++
			if len(st.msgs) > 64 {
				long++
			}
		}
		if r.nown != own || r.msgs.length() != len(st.msgs)-own {
			t.Fatalf("request %d: %d copies and a chain of %d, want %d and %d", i, r.nown, r.msgs.length(), own, len(st.msgs)-own)
		}
		if got := r.appendTo(nil); !bytes.Equal(got, want) {
			t.Fatalf("request %d: rope %x, want %x", i, got, want)
		}
		if !r.equal(want) || !r.equalState(st) {
			t.Fatalf("request %d: the rope does not match its request", i)
		}
		if len(req.Messages) == 0 {
			continue
		}
		other := *req
		other.Messages = slices.Clone(req.Messages)
		other.Messages[g.r.IntN(len(other.Messages))].Content += "x"
		ost := &keyState{}
		keyOf(ost, memo, "team:", "a", &other)
		if r.equalState(ost) || r.equal(AppendCanonical(nil, "team:a", &other)) {
			t.Fatalf("request %d: the rope matches the request with a message changed", i)
		}
	}
	if mixed < 500 || long < 10 {
		t.Fatalf("%d requests of shared and copied messages, %d of them over 64 messages: the test tests too little", mixed, long)
	}
	for i, k := range held {
		if got := k.r.appendTo(nil); !bytes.Equal(got, k.want) {
			t.Fatalf("request %d: rope %x after the state was reused, want %x", i, got, k.want)
		}
	}
}

// TestRopesAreLittleToScan: a rope's copies of its scratch encodings are
// in its pointer-free byte allocation, so what the garbage collector
// scans of a rope kept of the 19-message agent request, all of whose
// messages are copies (no memo), is its head: at most 160 bytes (a copy
// as a msgEnc, with its slice and weak pointer, in the rope's
// allocation, was 64 bytes to scan a message).
func TestRopesAreLittleToScan(t *testing.T) {
	const n = 2000
	st := &keyState{}
	keyOf(st, nil, "team:", "a", middlewaretest.AgentRequest("Summarise.", 1))
	if len(st.msgs) != 19 {
		t.Fatalf("%d messages, want 19", len(st.msgs))
	}
	ropes := make([]*canonRope, n)
	before := scannableHeap()
	for i := range ropes {
		ropes[i] = newRope(st, nil, nil)
	}
	per := float64(scannableHeap()-before) / n
	runtime.KeepAlive(ropes)
	t.Logf("%.0f bytes to scan per rope", per)
	if per > 160 {
		t.Fatalf("%.0f bytes to scan per rope, want at most 160", per)
	}
}

// scannableHeap returns the heap the garbage collector scans, after a
// full collection.
func scannableHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
