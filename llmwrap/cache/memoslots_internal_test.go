package cache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// slotMessage returns a message of n, long enough for the memo, whose
// identity hash has low bit bit.
func slotMessage(t *testing.T, n int, bit uint64) middleware.Message {
	t.Helper()
	for i := range 1000 {
		m := middleware.Message{Role: middleware.RoleTool, ToolCallID: fmt.Sprint("call_", n),
			Content: fmt.Sprintf("%d/%d ", n, i) + strings.Repeat("ok ", 100)}
		if h, _ := identityHash(&m); max(h, 1)&1 == bit {
			return m
		}
	}
	t.Fatal("no message with that hash bit")
	return middleware.Message{}
}

// memoRounds sends each message in turn as a request of its own, rounds
// times, holding every encoding it gets (as entries would), and returns
// for each message the number of the last half's rounds in which the
// memo gave it the encoding it gave in the round before.
func memoRounds(memo *msgMemo, msgs []middleware.Message, rounds int) []int {
	held := make([][]*msgEnc, len(msgs))
	stable := make([]int, len(msgs))
	for r := range rounds {
		for i := range msgs {
			st := &keyState{}
			keyOf(st, memo, "team:a", "", &middleware.Request{Model: "gpt-4o-mini", Messages: msgs[i : i+1]})
			e := st.msgs[0]
			if e.tmp {
				e = nil // the state's scratch: not the memo's
			}
			if r >= rounds/2 && e != nil && len(held[i]) > 0 && held[i][len(held[i])-1] == e {
				stable[i]++
			}
			held[i] = append(held[i], e)
		}
	}
	return stable
}

// TestMemoKeepsMessagesWhoseSeenSlotsCollide: two messages whose identity
// hashes share a slot of the table of messages met once, sent in turn
// (two conversations resending their messages), are both memoized; they
// each overwrote the other's hash, and neither was memoized, ever.
func TestMemoKeepsMessagesWhoseSeenSlotsCollide(t *testing.T) {
	memo := newMsgMemo(2, 1<<20, 0) // one pair of slots, two slots met once
	msgs := []middleware.Message{slotMessage(t, 1, 1), slotMessage(t, 2, 1)}
	for i, n := range memoRounds(memo, msgs, 200) {
		if n != 100 {
			t.Errorf("message %d: the memo gave its encoding in %d of the last 100 rounds", i, n)
		}
	}
}

// TestMemoKeepsTwoUsedEntriesAgainstAThird: three messages sent in turn
// whose identity hashes pick the same two slots: two keep the slots
// (found every round), the third is encoded each call; each of the three
// pushed another out every round, each time encoded and memoized anew
// (four allocations).
func TestMemoKeepsTwoUsedEntriesAgainstAThird(t *testing.T) {
	memo := newMsgMemo(2, 1<<20, 0)
	// Hash bits 0, 1 and 0: two share a slot met once, which the coin
	// settles (TestMemoKeepsMessagesWhoseSeenSlotsCollide).
	msgs := []middleware.Message{slotMessage(t, 1, 0), slotMessage(t, 2, 1), slotMessage(t, 3, 0)}
	stable := memoRounds(memo, msgs, 200)
	kept := 0
	for _, n := range stable {
		if n == 100 {
			kept++
		}
	}
	if kept < 2 {
		t.Errorf("messages found in every one of the last 100 rounds: %d of 3, want 2 (rounds stable: %v)", kept, stable)
	}
}

// TestMemoizedMessageLeavesItsSeenSlot: a message memoized at its second
// sight leaves the table of messages met once, so a later message whose
// hash shares its slot is noted at its first sight and memoized at its
// second, every time. Before, the memoized message's note stayed and the
// later message won the slot at a coin's toss only: unmemoized at its
// second sight half the time (TestSuccessiveTurnsShareTheirChains failed
// 5 runs in 400 so).
func TestMemoizedMessageLeavesItsSeenSlot(t *testing.T) {
	sight := func(memo *msgMemo, m middleware.Message) *msgEnc {
		var sc encScratch
		encs, _ := memo.encodings(nil, nil, &sc, []middleware.Message{m})
		return encs[0]
	}
	for i := range 40 {
		memo := newMsgMemo(2, 1<<20, 0) // one pair of slots: every hash shares a seen slot
		a, b := slotMessage(t, 2*i, 0), slotMessage(t, 2*i+1, 0)
		sight(memo, a)
		if sight(memo, a).tmp {
			t.Fatalf("round %d: the first message is not memoized at its second sight", i)
		}
		sight(memo, b)
		if sight(memo, b).tmp {
			t.Fatalf("round %d: a message whose seen slot a memoized message had held is not memoized at its second sight", i)
		}
	}
}
