package openai

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/middleware"
)

// The decoded-message memo.
//
// An agent resends its whole conversation on every call: all but the last
// few messages are the very bytes of the previous call. A Transport keeps
// the messages (and tools) it decoded, keyed by a hash of their wire JSON,
// and a
// message whose bytes it has seen is not decoded again: its end is found
// by a quick structural scan (strings skipped with IndexByte), its bytes
// hashed and compared in full with the kept ones, and the kept decoded
// message is used.
//
// Exactness: a message is taken from the memo only when its bytes are
// equal to bytes that decoded without error; a JSON value is prefix-free,
// so the strict reader, started at the same offset, would have read those
// very bytes to the same message and stopped at the same offset. The quick
// scan only proposes where a message ends: a message met for the first
// time is decoded in place by the strict reader and only noted (admit:
// most are never sent again); met again, it is decoded once, by the
// strict reader, from the memo's own copy of the proposed bytes at the
// depth it has in the body (decodeNew), and kept
// only when those bytes are exactly one valid message (the same argument:
// the strict reader in the body reads those bytes to that message); on
// any other input (invalid JSON, a message too large to keep) the strict
// reader decodes it in the body, with the same errors.
//
// Identity: a kept message's strings point into the memo's own copy of its
// bytes, never into a request body (which a long-lived entry would keep
// alive whole). The same bytes therefore decode to the same strings, same
// data pointers, on every call: the token estimator's identity fast path
// (package tokens) and every other per-message memo keyed by string
// identity hit on a resent message without reading its text. The shared
// Parts and ToolCalls slices are read-only, as every request's are
// (middleware.Request). Tools are kept the same way.
//
// A resent conversation is mostly found without scanning or hashing: each
// entry remembers the hash of the message that followed it last time, and
// the memo the hash of the first message of the last request; the next
// message is first compared with that one's bytes (a prefix compare of the
// body at the message's offset: equal bytes of a complete JSON value are
// that value). Only a message not predicted so is scanned and hashed.
// Tools are predicted the same way, each from the one before it.
//
// The table is direct-mapped with two candidate slots per hash, lock-free
// (an atomic pointer per slot to an immutable entry), and bounded by slots
// and by bytes: a message over maxMemoMessage bytes is never kept, and a
// full table forgets entries in slot order.

const (
	memoSlots      = 8192
	memoMaxBytes   = 32 << 20
	maxMemoMessage = memoMaxBytes / 16
	// memoEntryOverhead is what an entry costs besides its bytes: the
	// entry, the decoded message, its strings' headers.
	memoEntryOverhead = 256
)

// The kinds of values the memo keeps.
const (
	kindMessage byte = iota + 1
	kindTool
)

type memoEntry struct {
	h        uint64
	kind     byte
	raw      []byte // the value's wire JSON; the decoded strings point into it
	msg      middleware.Message
	tool     *middleware.Tool // of a tool entry (a pointer: most entries are messages)
	function bool             // a tool of type "function" (the core models no other)
	size     int64
	// next is the hash of the message that followed this one in the last
	// request that had it (0: none), tried first for the next message:
	// a hash, not a pointer, so that an entry never keeps another alive.
	next atomic.Uint64
}

// msgMemo is a Transport's memo of decoded messages and tools. Safe for
// concurrent use.
type msgMemo struct {
	seed  maphash.Seed
	slots []atomic.Pointer[memoEntry]
	// seen holds hashes of values met once and not kept (see admit), two
	// candidate places per hash among four times as many as slots: no
	// pointers, which the collector never reads.
	seen   []atomic.Uint64
	mask   uint64
	max    int64
	bytes  atomic.Int64
	cursor atomic.Uint64
	// The length of the last request's tools, to allocate the next ones.
	toolsHint atomic.Int32
	// head[kind] is the hash of the first value of kind (message, tool)
	// of the last request that had one: the prediction of the next
	// request's first (0: none).
	head [kindTool + 1]atomic.Uint64
}

func newMsgMemo(slots int, maxBytes int64) *msgMemo {
	n := 64
	for n < slots {
		n <<= 1
	}
	return &msgMemo{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[memoEntry], n), seen: make([]atomic.Uint64, 4*n), mask: uint64(n - 1), max: maxBytes}
}

// admit reports whether a value of hash h that the memo does not keep may
// be kept now: on its second sight. The first time a hash is met it is
// only noted (one word per slot, no allocation), and the value is decoded
// in place: most values met once are never sent again (a one-shot call's
// question, the last turn of a request that is new every time), and
// keeping them would cost a copy, an entry for every collection to mark,
// and the slot of a value that is resent. An agent's new message is kept
// on the call after the one that brought it, and predicted from then on.
// Call it once per value met.
func (t *msgMemo) admit(h uint64) bool {
	m := uint64(len(t.seen) - 1)
	a, b := &t.seen[h&m], &t.seen[(h>>32)&m]
	va, vb := a.Load(), b.Load()
	if va == h || vb == h {
		return true
	}
	switch {
	case va == 0:
		a.Store(h)
	case vb == 0 || h&(1<<16) != 0:
		b.Store(h) // both taken: either may go
	default:
		a.Store(h)
	}
	return false
}

func (t *msgMemo) slotsOf(h uint64) (uint64, uint64) {
	return h & t.mask, (h >> 32) & t.mask
}

// hash returns the hash of a value of kind whose wire JSON is raw.
func (t *msgMemo) hash(kind byte, raw []byte) uint64 {
	return maphash.Bytes(t.seed, raw) ^ uint64(kind)*0x9E3779B97F4A7C15
}

// get returns the entry of the value of kind whose wire JSON is raw, if
// kept, and the hash of raw for keep.
func (t *msgMemo) get(kind byte, raw []byte) (*memoEntry, uint64) {
	h := t.hash(kind, raw)
	i, j := t.slotsOf(h)
	if e := t.slots[i].Load(); e != nil && e.h == h && e.kind == kind && bytes.Equal(e.raw, raw) {
		return e, h
	}
	if e := t.slots[j].Load(); e != nil && e.h == h && e.kind == kind && bytes.Equal(e.raw, raw) {
		return e, h
	}
	return nil, h
}

// next returns the kept entry of the value of kind that followed prev
// last time, or, for the first value of a list (first), the kept first
// value of kind of the last request; nil if none (prev nil and not first:
// the previous value is not kept).
func (t *msgMemo) next(kind byte, prev *memoEntry, first bool) *memoEntry {
	var h uint64
	switch {
	case first:
		h = t.head[kind].Load()
	case prev != nil:
		h = prev.next.Load()
	}
	if h == 0 {
		return nil
	}
	i, j := t.slotsOf(h)
	if e := t.slots[i].Load(); e != nil && e.h == h && e.kind == kind {
		return e
	}
	if e := t.slots[j].Load(); e != nil && e.h == h && e.kind == kind {
		return e
	}
	return nil
}

// link records that e (of kind) followed prev, or that it was the first
// value of its list (first); e nil: nothing to record.
func (t *msgMemo) link(kind byte, prev, e *memoEntry, first bool) {
	switch {
	case e == nil:
	case first:
		if t.head[kind].Load() != e.h {
			t.head[kind].Store(e.h)
		}
	case prev != nil:
		if prev.next.Load() != e.h {
			prev.next.Store(e.h)
		}
	}
}

// copyOf returns a reader over the memo's own copy of raw, a value that
// decoded without error, when a value of that size may be kept.
func (t *msgMemo) copyOf(raw []byte) (*reader, bool) {
	size := int64(len(raw)) + memoEntryOverhead
	if size > maxMemoMessage || size > t.max/16 {
		return nil, false
	}
	return getReader(bytes.Clone(raw)), true
}

// putMessage keeps the message raw (of hash h) decodes to and returns its
// entry (its strings in the memo's copy of raw); nil when raw is not kept.
func (t *msgMemo) putMessage(h uint64, raw []byte) *memoEntry {
	r, ok := t.copyOf(raw)
	if !ok {
		return nil
	}
	defer putReader(r)
	km, err := r.message()
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil // cannot happen: raw decoded once already
	}
	e := &memoEntry{h: h, kind: kindMessage, raw: r.src, msg: km}
	t.keep(e)
	return e
}

// putTool is putMessage for a tool, returning the tool as kept (tool, as
// the strict reader read it, when not kept) with its entry.
func (t *msgMemo) putTool(h uint64, raw []byte, tool middleware.Tool, function bool) (middleware.Tool, *memoEntry) {
	r, ok := t.copyOf(raw)
	if !ok {
		return tool, nil
	}
	defer putReader(r)
	kt, kf, err := r.tool()
	if err == nil {
		err = r.end()
	}
	if err != nil || kf != function {
		return tool, nil // cannot happen: raw decoded once already
	}
	e := &memoEntry{h: h, kind: kindTool, raw: r.src, tool: &kt, function: kf}
	t.keep(e)
	return kt, e
}

// decodeNew decodes a value of kind not in the memo, src[start:end] of
// in's document (end as skipQuick proposed it, h the hash of those bytes),
// once: from the memo's own copy of those bytes, at in's nesting depth,
// and keeps it. It returns nil when the value may not be kept or when the
// bytes are not exactly one valid value of kind; the caller then decodes
// it in place with the strict reader, which reports the error.
//
// Exactness: the copy holds the same bytes and the reader starts at the
// same depth, so it reads what the strict reader would read at start; a
// value that ends exactly at the copy's end is the value the strict
// reader reads there (a JSON value is prefix-free, and the reader never
// looks past a value's last byte).
func (t *msgMemo) decodeNew(kind byte, in *reader, h uint64, start, end int) *memoEntry {
	r, ok := t.copyOf(in.src[start:end])
	if !ok {
		return nil
	}
	defer putReader(r)
	r.stack = append(r.stack[:0], in.stack...)
	e := &memoEntry{h: h, kind: kind, raw: r.src}
	var err error
	switch kind {
	case kindMessage:
		e.msg, err = r.message()
	case kindTool:
		var kt middleware.Tool
		kt, e.function, err = r.tool()
		e.tool = &kt
	default:
		return nil
	}
	if err != nil || r.err != nil || r.pos != len(r.src) || len(r.stack) != len(in.stack) {
		return nil
	}
	t.keep(e)
	return e
}

// keep stores e in one of its two slots.
func (t *msgMemo) keep(e *memoEntry) {
	e.size = int64(len(e.raw)) + memoEntryOverhead
	size := e.size
	i, j := t.slotsOf(e.h)
	slot := &t.slots[i]
	if old := slot.Load(); old != nil && old.h != e.h {
		if alt := &t.slots[j]; alt.Load() == nil {
			slot = alt
		} else if e.h&(1<<16) != 0 {
			slot = alt // both taken: either may go
		}
	}
	if old := slot.Swap(e); old != nil {
		size -= old.size
	}
	if t.bytes.Add(size) > t.max {
		t.evict(slot)
	}
}

// evict forgets entries in slot order, but keep (just set), until the
// table keeps at most three quarters of its byte bound.
func (t *msgMemo) evict(keep *atomic.Pointer[memoEntry]) {
	for range len(t.slots) {
		if t.bytes.Load() <= t.max/4*3 {
			return
		}
		s := &t.slots[t.cursor.Add(1)&t.mask]
		if s == keep {
			continue
		}
		if old := s.Swap(nil); old != nil {
			t.bytes.Add(-old.size)
		}
	}
}

// skipQuick returns the end of the object or array that starts at src[i],
// assuming the JSON is valid: strings are skipped to their closing quote
// with IndexByte, brackets counted, nothing else looked at. On invalid
// JSON it may return any offset, or false; callers only use it to propose
// a span that is then compared with bytes known to be valid.
func skipQuick(src []byte, i int) (int, bool) {
	depth := 0
	for i < len(src) {
		switch src[i] {
		case '"':
			j := i + 1
			for {
				k := bytes.IndexByte(src[j:], '"')
				if k < 0 {
					return 0, false
				}
				j += k
				b := j - 1
				for src[b] == '\\' {
					b--
				}
				if (j-1-b)%2 == 0 {
					break // not escaped
				}
				j++
			}
			i = j + 1
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth <= 0 {
				return i + 1, depth == 0
			}
		}
		i++
	}
	return 0, false
}
