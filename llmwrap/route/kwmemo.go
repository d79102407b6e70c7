package route

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// The keyword memo.
//
// An agent resends its conversation on every call, and the strings of a
// resent message are the very strings of the previous call (the OpenAI
// transport's decoder gives a resent message the same strings; a
// langchaingo or go-openai caller keeps its history). Rules remember, per
// message text, which of their needles (keywords and regex literals) were
// looked for and found, so that a resent message is not searched again:
// one table lookup per text and rule instead of a scan.
//
// A text is identified by its string's data pointer and length, which is
// sound because strings are immutable and an entry keeps its string alive:
// while the entry exists, no other string can have that pointer and
// length with other bytes. The table is direct-mapped, lock-free (an
// atomic pointer per slot; the bits of an entry are set atomically, found
// before checked) and bounded by slots and by the bytes of the strings it
// keeps alive (texts over a sixteenth of kwMaxBytes are not kept, and a
// full table forgets entries in slot order). Texts shorter than kwMinText
// are searched directly, which is about as quick. The first 64 needles of
// a policy are memoised; others are always searched.

const (
	kwSlots    = 4096
	kwMaxBytes = 16 << 20
	kwMinText  = 64
	kwOverhead = 64 // an entry besides its text
)

type kwEntry struct {
	s              string
	checked, found atomic.Uint64 // a bit per needle
}

type kwMemo struct {
	slots  []atomic.Pointer[kwEntry]
	mask   uint64
	max    int64
	bytes  atomic.Int64
	cursor atomic.Uint64
}

func newKWMemo(slots int, maxBytes int64) *kwMemo {
	n := 64
	for n < slots {
		n <<= 1
	}
	return &kwMemo{slots: make([]atomic.Pointer[kwEntry], n), mask: uint64(n - 1), max: maxBytes}
}

// in reports whether n occurs in text (see needle.in), from the memo when
// text was searched for n before.
func (t *kwMemo) in(n *needle, text string, whole bool) bool {
	if t == nil || n.bit < 0 || len(text) < kwMinText || int64(len(text)) > t.max/16 {
		return n.in(text, whole)
	}
	p := uint64(uintptr(unsafe.Pointer(unsafe.StringData(text))))
	h := bits.RotateLeft64(p*0x9E3779B97F4A7C15, 23) ^ uint64(len(text))*0xBF58476D1CE4E5B9
	slot := &t.slots[(h^h>>29)&t.mask]
	e := slot.Load()
	if e == nil || len(e.s) != len(text) || unsafe.StringData(e.s) != unsafe.StringData(text) {
		e = &kwEntry{s: text}
		size := int64(len(text)) + kwOverhead
		if old := slot.Swap(e); old != nil {
			size -= int64(len(old.s)) + kwOverhead
		}
		if t.bytes.Add(size) > t.max {
			t.evict(slot)
		}
	}
	bit := uint64(1) << n.bit
	if e.checked.Load()&bit != 0 {
		return e.found.Load()&bit != 0
	}
	found := n.in(text, whole)
	if found {
		e.found.Or(bit)
	}
	e.checked.Or(bit)
	return found
}

// evict forgets entries in slot order, but keep, until the table keeps at
// most three quarters of its byte bound alive.
func (t *kwMemo) evict(keep *atomic.Pointer[kwEntry]) {
	for range len(t.slots) {
		if t.bytes.Load() <= t.max/4*3 {
			return
		}
		s := &t.slots[t.cursor.Add(1)&t.mask]
		if s == keep {
			continue
		}
		if old := s.Swap(nil); old != nil {
			t.bytes.Add(-(int64(len(old.s)) + kwOverhead))
		}
	}
}

// indexNeedles numbers the rules' needles for the memo (each needle is
// always searched with the same whole flag: keywords as whole words,
// regex literals anywhere) and makes the memo.
func (r *Rules) indexNeedles() {
	next := int8(0)
	number := func(n *needle) {
		if n.s != "" && next < 64 {
			n.bit = next
			next++
		}
	}
	for i := range r.rules {
		c := &r.rules[i]
		for k := range c.keywords {
			number(&c.keywords[k])
		}
		number(&c.reLit)
	}
	if next > 0 {
		r.kw = newKWMemo(kwSlots, kwMaxBytes)
	}
}
