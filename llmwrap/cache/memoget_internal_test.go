package cache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// BenchmarkMemoAgents: the memo's encodings of the messages of 1024 agent
// requests, each built anew (strings of its own, as in
// bench.BenchmarkChainInstantModelMiss), each memoized, taken in turn:
// one op is the lookups of one request resent after 1023 others.
func BenchmarkMemoAgents(b *testing.B) {
	memo := newMsgMemo(memoSlots, memoMaxBytes, memoMinBytes)
	var reqs [][]middleware.Message
	var held [][]*msgEnc
	for i := range 1024 {
		req := middlewaretest.AgentRequest("Summarise (request "+strconv.Itoa(i)+").", 1)
		var sc encScratch
		var encs []*msgEnc
		for range 2 { // memoized at the second sighting
			encs, _ = memo.encodings(nil, nil, &sc, req.Messages)
		}
		held = append(held, encs)
		reqs = append(reqs, req.Messages)
	}
	var sc encScratch
	var encs []*msgEnc
	var ihs []uint64
	found, k := 0, 0
	for b.Loop() {
		encs, ihs = memo.encodings(encs, ihs, &sc, reqs[k])
		if k++; k == len(reqs) {
			k = 0
		}
		for _, e := range encs {
			if !e.tmp {
				found++
			}
		}
	}
	if b.N >= len(reqs) && found < b.N {
		b.Fatalf("%d messages of %d requests found in the memo", found, b.N)
	}
	runtime.KeepAlive(held)
}

// walkFind looks msgs up as encodings does, each with find after the
// entry found for the message before, and checks each answer against
// get's (the slot table's) for the same message: find must give exactly
// what get gives, the same encoding, or none. It returns how many
// messages find found through the link (next) rather than the slots.
func walkFind(t *testing.T, memo *msgMemo, msgs []middleware.Message) (linked int) {
	t.Helper()
	var prev *idEntry
	for i := range msgs {
		m := &msgs[i]
		h, ok := identityHash(m)
		if !ok || messageLenBound(m) < memo.min {
			continue
		}
		want, wantE := memo.get(h, m)
		var next *idEntry
		if prev != nil {
			next = prev.next.Load()
		}
		got, gotE := memo.find(prev, h, m)
		if got != want || gotE != wantE {
			t.Fatalf("message %d: find gives encoding %p (entry %p), the slots %p (entry %p)", i, got, gotE, want, wantE)
		}
		if gotE != nil && gotE == next {
			linked++
		}
		prev = gotE
	}
	return linked
}

// TestMemoFindIsGet: over random requests (messages often resent, copied
// or cut: gen) through a small memo (slots collide, entries are evicted
// and forgotten) whose entries are pointed at the encodings the kept
// ropes share (adopt, as the cache layer does on a miss), looking a
// request's messages up in turn through the link from the previous
// message's entry (find) gives exactly what the slot table gives (get),
// and the key stays the key without the memo.
func TestMemoFindIsGet(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(11, 12))}
	memo := newMsgMemo(64, 1<<20, 0)
	tables := newKeepTables()
	var keep []canon
	var sent []*middleware.Request
	linked := 0
	for i := range 10000 {
		req := g.request()
		if len(sent) > 0 && g.r.IntN(2) == 0 {
			// A request sent before: as it was, one turn longer, or with
			// one field or byte changed.
			cp := *sent[g.r.IntN(len(sent))]
			switch g.r.IntN(3) {
			case 0:
				cp.Messages = append(slices.Clip(cp.Messages), g.message())
			case 1:
				mutateOne(g.r, &cp)
			}
			req = &cp
		}
		if sent = append(sent, req); len(sent) > 40 {
			sent = sent[1:]
		}
		linked += walkFind(t, memo, req.Messages)
		st := checkKey(t, memo, "team:"+fmt.Sprint(i%3), req)
		c := st.keep(true, tables)
		if i%2 == 0 {
			memo.adopt(st, c.rope)
		}
		keep = append(keep, c)
		if len(keep) > 50 {
			keep = keep[1:]
		}
		if len(g.pool) > 200 {
			g.pool = g.pool[100:]
		}
	}
	t.Logf("%d messages found through the link", linked)
	if linked == 0 {
		t.Fatal("no message was found through the link from the one before: the test tests nothing")
	}
}

// TestMemoLinksAResentRequestsMessages: the entries of a request's
// memoized messages are linked in the request's order, so that a resent
// request finds every message after the first through the link from the
// one before (no read of the slot table), both when its messages were
// memoized and once adopt pointed them at the encodings an earlier
// request's rope shares.
func TestMemoLinksAResentRequestsMessages(t *testing.T) {
	memo := newMsgMemo(4096, 1<<20, 0)
	tables := newKeepTables()
	last := strings.Repeat("Which hosts need cleanup? ", 12)
	for _, adopt := range []bool{false, true} {
		for _, req := range []*middleware.Request{adoptRequest(last), adoptRequest(last)} {
			for range 40 { // memoized at the second sight but for a collision (see TestMemoAdoptsTheEncodingItsRopeShares)
				st := checkKey(t, memo, "team:a", req)
				if c := st.keep(true, tables); adopt {
					memo.adopt(st, c.rope)
				}
			}
			if n := walkFind(t, memo, req.Messages); n != len(req.Messages)-1 {
				t.Errorf("adopt %v: %d of the %d messages after the first found through the link", adopt, n, len(req.Messages)-1)
			}
		}
	}
}
