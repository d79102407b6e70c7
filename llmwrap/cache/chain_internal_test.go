package cache

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestChainsAreTheirValues: chains made through tables of 4, 8 and 4096
// slots from random sequences (many sharing prefixes, from a small set of
// values) hold exactly their values, in order; a chain made right after
// another with one value more shares all of its nodes when the table is
// large enough for both.
func TestChainsAreTheirValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pool := make([]sharedVal, 6)
	for i := range pool {
		b := make([]byte, 1+i%3) // equal lengths, distinct copies
		pool[i] = sharedVal{p: &b[0], n: uint32(len(b))}
	}
	for _, slots := range []int{4, 8, 4096} {
		tab := newValChains(slots)
		var seqs [][]sharedVal
		var kept []*chainNode[sharedVal]
		for range 3000 {
			var seq []sharedVal
			if len(seqs) > 0 && r.IntN(4) > 0 {
				prev := seqs[r.IntN(len(seqs))]
				seq = slices.Clone(prev[:r.IntN(len(prev)+1)])
			}
			for range r.IntN(5) {
				seq = append(seq, pool[r.IntN(len(pool))])
			}
			if r.IntN(50) == 0 {
				for range 100 { // longer than pieces' stack array
					seq = append(seq, pool[r.IntN(len(pool))])
				}
			}
			c := tab.make(slices.Clone(seq))
			if got := c.appendValues(nil); c.length() != len(seq) || !slices.Equal(got, seq) {
				t.Fatalf("%d slots: chain of %v holds %v (length %d)", slots, seq, got, c.length())
			}
			if got := c.appendValues([]sharedVal{pool[0]}); !slices.Equal(got[1:], seq) || got[0] != pool[0] {
				t.Fatalf("%d slots: appendValues overwrote dst", slots)
			}
			seqs = append(seqs, seq)
			kept = append(kept, c)
		}
		// Every chain still holds its values after the others were made.
		for i, c := range kept {
			if got := c.appendValues(nil); !slices.Equal(got, seqs[i]) {
				t.Fatalf("%d slots: chain %d changed to %v, want %v", slots, i, got, seqs[i])
			}
		}
	}
	tab := newValChains(4096)
	cycle := func(n int) []sharedVal {
		var vs []sharedVal
		for i := range n {
			vs = append(vs, pool[i%len(pool)])
		}
		return vs
	}
	a := tab.make(cycle(50))
	b := tab.make(cycle(51))
	if b.prev != a {
		t.Fatal("a chain with one value more does not share the nodes of the chain before it")
	}
	if c := newValChains(4096).make(pool[:3]); c.length() != 3 || c.prev.prev.prev != nil {
		t.Fatal("a chain of 3 values is not 3 nodes")
	}
	if (*chainTable[sharedVal])(nil).make(nil) != nil || tab.make(nil) != nil {
		t.Fatal("an empty chain is not nil")
	}
	if c := (*chainTable[sharedVal])(nil).make(pool[:4]); !slices.Equal(c.appendValues(nil), pool[:4]) {
		t.Fatal("a chain made without a table is not its values")
	}
}

// TestEncodingChainsCompareBytes: the chains of message encodings share
// the nodes of encodings of equal bytes (another copy of the same
// message), never of other bytes with the same hash.
func TestEncodingChainsCompareBytes(t *testing.T) {
	tab := newEncChains(64)
	enc := func(s string) *msgEnc { return &msgEnc{b: []byte(s), h: 7} } // one hash for all
	first := tab.make([]*msgEnc{enc("system prompt"), enc("question")})
	again := tab.make([]*msgEnc{enc("system prompt"), enc("question"), enc("answer")})
	if again.prev != first {
		t.Fatal("copies of equal encodings do not share their nodes")
	}
	if string(again.prev.v.b) != "question" || string(again.v.b) != "answer" {
		t.Fatalf("chain holds %q, %q", again.prev.v.b, again.v.b)
	}
	other := tab.make([]*msgEnc{enc("system prompt"), enc("questioN")})
	if other.prev != first.prev || other == first || string(other.v.b) != "questioN" {
		t.Fatal("an encoding of other bytes with the same hash shares a node")
	}
}

// TestChainTableKeepsNoNode: the table's slots hold weak pointers, so the
// nodes of chains no one holds any more are freed.
func TestChainTableKeepsNoNode(t *testing.T) {
	b := []byte("value")
	tab := newValChains(64)
	var vs []sharedVal
	for range 20 {
		vs = append(vs, sharedVal{p: &b[0], n: uint32(len(b))})
	}
	c := tab.make(vs)
	if c.length() != 20 {
		t.Fatal("no chain")
	}
	c = nil
	runtime.GC()
	runtime.GC()
	for i := range tab.buckets {
		for j := range tab.buckets[i].slots {
			if tab.buckets[i].slots[j].node() != nil {
				t.Fatalf("slot %d of bucket %d keeps a node of a chain no one holds", j, i)
			}
		}
	}
	runtime.KeepAlive(c)
}

// TestSuccessiveTurnsShareTheirChains: through the cache layer on a
// Memory store, the entries of an agent's successive turns (each request
// resends the conversation with a message more) share the chain of the
// messages they have in common that the memo keeps (of 256 bytes or more,
// from their second request on; the rope copies the others): a new entry
// adds a node for the message before its new one, if the memo keeps that,
// whose previous node is the last node of the entry before it, or holds
// that node itself; every entry is still its request's canonical encoding
// and hits.
func TestSuccessiveTurnsShareTheirChains(t *testing.T) {
	store, h, calls := memoryCache(t)
	ctx := context.Background()
	var conv []middleware.Message
	var prev *chainNode[*msgEnc]
	long := 0
	for turn := range 70 {
		size := 300 + turn*10
		if turn%3 == 1 {
			size = 20 // short: copied into the rope
		}
		conv = append(conv, middleware.Message{Role: "user", Content: fmt.Sprintf("turn %d: %s", turn, strings.Repeat("x", size))})
		req := &middleware.Request{Model: "m", Messages: slices.Clone(conv)}
		if resp, err := h.Handle(ctx, req); err != nil || resp.FromCache {
			t.Fatalf("turn %d: FromCache %v, err %v; want a miss", turn, resp.FromCache, err)
		}
		canon := AppendCanonical(nil, ScopeTeamPrefix, req)
		e := storedWith(store, canon)
		if e == nil || e.rope == nil || !bytes.Equal(e.Canonical(), canon) {
			t.Fatalf("turn %d: entry %+v is not a rope of its request", turn, e)
		}
		if turn > 0 && (turn-1)%3 != 1 {
			long++ // the message before is memoised now
		}
		if e.rope.msgs.length() != long || e.rope.nown != turn+1-long {
			t.Fatalf("turn %d: a chain of %d messages and %d copies, want %d and %d", turn, e.rope.msgs.length(), e.rope.nown, long, turn+1-long)
		}
		switch {
		case turn == 0:
		case (turn-1)%3 != 1 && e.rope.msgs.prev != prev:
			t.Fatalf("turn %d: the entry does not add to the chain of the turn before", turn)
		case (turn-1)%3 == 1 && e.rope.msgs != prev:
			t.Fatalf("turn %d: the entry does not hold the chain of the turn before", turn)
		}
		prev = e.rope.msgs
	}
	for turn := range 70 {
		req := &middleware.Request{Model: "m", Messages: slices.Clone(conv[:turn+1])}
		if resp, err := h.Handle(ctx, req); err != nil || !resp.FromCache {
			t.Fatalf("turn %d again: FromCache %v, err %v; want a hit", turn, resp.FromCache, err)
		}
	}
	if *calls != 70 {
		t.Fatalf("%d provider calls, want 70", *calls)
	}
}

// storedWith returns the entry of m whose canonical request is canon, nil
// if there is none.
func storedWith(m *Memory, canon []byte) *Entry {
	for i := range m.shards {
		for _, k := range m.shards[i].lru.Keys() {
			if v, ok := m.shards[i].lru.Peek(k); ok && bytes.Equal(v.p.entry().Canonical(), canon) {
				return v.p.entry()
			}
		}
	}
	return nil
}

// BenchmarkChainNextTurn: the chain of an agent's next turn, 50 shared
// values (the conversation and its tools) and one new, through a table
// that holds the turn before (what a cache miss of the go-openai
// transport does).
func BenchmarkChainNextTurn(b *testing.B) {
	tab := newValChains(chainSlots)
	vals := make([]sharedVal, 51)
	for i := range vals {
		p := make([]byte, 600)
		vals[i] = sharedVal{p: &p[0], n: 600}
	}
	prev := tab.make(vals[:50])
	for b.Loop() {
		p := make([]byte, 600)
		vals[50] = sharedVal{p: &p[0], n: 600}
		if c := tab.make(vals); c.prev != prev {
			b.Fatal("the turn before is not shared")
		}
	}
}

// TestChainTableConcurrentMakes: goroutines making chains of the same
// conversations at once (lookups outside the buckets' locks, puts and the
// clock under them) each get a chain of exactly their values.
func TestChainTableConcurrentMakes(t *testing.T) {
	tab := newValChains(64) // few buckets: the clock turns
	pool := make([]sharedVal, 40)
	for i := range pool {
		b := []byte(fmt.Sprintf("value %d", i))
		pool[i] = sharedVal{p: &b[0], n: uint32(len(b))}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 500 {
				conv := pool[r.IntN(2)*20:][:20] // one of two conversations
				vals := slices.Clone(conv[:1+r.IntN(len(conv))])
				if got := tab.make(vals).appendValues(nil); !slices.Equal(got, vals) {
					t.Errorf("a chain of %d values holds %d others", len(vals), len(got))
					return
				}
			}
		})
	}
	wg.Wait()
}
