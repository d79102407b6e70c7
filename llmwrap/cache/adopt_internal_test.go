package cache

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// adoptRequest is a request of three messages long enough for the memo,
// each a new string (strings.Clone): another request with equal messages.
func adoptRequest(last string) *middleware.Request {
	return &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{
		{Role: middleware.RoleSystem, Content: strings.Clone(strings.Repeat("You are terse. ", 30))},
		{Role: middleware.RoleUser, Content: strings.Clone(strings.Repeat("Check the disks. ", 20))},
		{Role: middleware.RoleUser, Content: strings.Clone(last)},
	}}
}

// TestMemoAdoptsTheEncodingItsRopeShares: a request whose messages equal
// an earlier request's but are other strings keeps a rope that shares the
// earlier request's encodings; the memo then gives those very encodings
// for its strings (the next chain lookup compares pointers), and the key
// stays the key without the memo, also once a message changed.
func TestMemoAdoptsTheEncodingItsRopeShares(t *testing.T) {
	// The memo's slots are picked by the strings' addresses: a memo of
	// 4,096 slots makes two of these six messages sharing a pair of slots
	// rare, and a message met once whose seen-slot another holds is noted
	// at a coin's toss (msgMemo.metBefore), so each request is sent until
	// its messages are memoized (at its second sight but for such a
	// collision) rather than exactly twice: with 64 slots and two sights
	// the test failed 3 runs in 8.
	memo := newMsgMemo(4096, 1<<20, 0)
	tables := newKeepTables()
	last := strings.Repeat("Which hosts need cleanup? ", 12)
	turn := func(req *middleware.Request) (*keyState, *canonRope) {
		var st *keyState
		var r *canonRope
		for range 40 {
			st = checkKey(t, memo, "team:a", req)
			r = st.keep(true, tables).rope
			memo.adopt(st, r)
		}
		return st, r
	}
	_, ropeA := turn(adoptRequest(last))
	var arr [64]*msgEnc
	shared := ropeA.messages(&arr)
	reqB := adoptRequest(last)
	stB, ropeB := turn(reqB)
	if !ropeB.equalState(stB) {
		t.Fatal("a request does not match its own rope")
	}
	stB = checkKey(t, memo, "team:a", reqB)
	for i, m := range stB.msgs {
		if m != shared[i] {
			t.Errorf("message %d: the memo gives the request's own encoding %p, not the one its rope shares %p", i, m, shared[i])
		}
	}
	// A changed message: its own encoding, the key without the memo, and
	// the earlier rope does not match.
	reqB.Messages[1].Content = strings.Clone(strings.Repeat("Check the logs. ", 20))
	for range 2 {
		stB = checkKey(t, memo, "team:a", reqB)
	}
	if stB.msgs[1] == shared[1] || ropeA.equalState(stB) || ropeA.equal(stB.flatBytes()) {
		t.Fatal("a changed message is given the encoding of the message it replaced")
	}
	if stB.msgs[0] != shared[0] || stB.msgs[2] != shared[2] {
		t.Fatal("the unchanged messages lost their shared encodings")
	}
}

// TestKeyWithAdoptionIsTheKeyWithout is TestKeyWithTheMemoIsTheKeyWithout
// with the memo's entries pointed at the encodings each kept rope shares
// (msgMemo.adopt), as the cache layer does on a miss.
func TestKeyWithAdoptionIsTheKeyWithout(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(9, 10))}
	memo := newMsgMemo(64, 1<<20, 0)
	tables := newKeepTables()
	var keep []canon
	for i := range 10000 {
		st := checkKey(t, memo, "team:"+fmt.Sprint(i%3), g.request())
		c := st.keep(true, tables)
		memo.adopt(st, c.rope)
		if !c.matches(st) {
			t.Fatal("a request does not match its kept rope after adoption")
		}
		keep = append(keep, c)
		if len(keep) > 50 {
			keep = keep[1:]
		}
		if len(g.pool) > 200 {
			g.pool = g.pool[100:]
		}
	}
}
