package cache

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// nativeKeyShared is implemented by a nativeKeySpans whose buffer holds
// values that are also held, byte for byte, in long-lived immutable
// copies shared by other requests (the OpenAI adapter's Wire: the
// messages and tools its Transport's memo keeps). SharedValues appends,
// in increasing order, the start of each such value in the buffer to
// starts, and its copy to vals: buffer[start:start+len(copy)] equals the
// copy, which is never modified.
type nativeKeyShared interface {
	SharedValues(starts []uint32, vals [][]byte) ([]uint32, [][]byte)
}

// canonShared is a kindSpans canonical request kept in pieces: a copy of
// its header, the length of each span, and the bytes of the spans as a
// sequence of own bytes (copied) and shared values (the copies
// nativeKeyShared gives, referred to, not copied). A miss keeps it
// instead of a reference to the request body (canonRef) when the body has
// shared values: an agent resends its conversation every turn, and a
// reference to each turn's body would keep the whole conversation alive
// once per entry; the pieces keep what is new in the request and share
// the rest with the entries of the other turns.
//
// The pieces of a turn may also start with those of an earlier request
// (base): its first baseSegs shared values and the own bytes before each,
// when they are, byte for byte, the first baseLen bytes of this request's
// spans (see prefixTable). An agent's turn then refers to the previous
// turn's pieces and to the shared values of its new messages alone,
// instead of to every message of the conversation: the garbage
// collector, which scans each entry's references at every cycle, scans
// two or three instead of sixty.
//
// The bytes of the spans, in order, are base's first baseSegs values
// with the own bytes before each (none without a base), then
// own[:segs[0].own], segs[0]'s value, own[segs[0].own:segs[1].own],
// segs[1]'s value, ..., own[segs[len(segs)-1].own:].
type canonShared struct {
	hdr  []byte // the header, then (past len(hdr)) own, in one allocation
	own  []byte
	lens []uint32
	segs []sharedSeg
	arr  [16]uint32 // lens of a request of few members, in the same allocation
	size int        // what the pieces' allocations take, shared values (and base's bytes) counted in full

	base     *canonShared // nil: none
	baseLen  int          // the bytes of the spans base's first baseSegs values and the own bytes before them are
	baseSegs int32        // base's shared values this one starts with (0 without a base)
	depth    int32        // the length of the chain of bases
	// marks are where requests that extend this one may start with its
	// pieces: after the last shared value of a span (see prefixTable).
	marks [2]prefixMark
}

// maxSharedDepth bounds a chain of bases (the pieces of a request are
// gathered through it, recursively).
const maxSharedDepth = 24

// sharedSeg is a shared value: own bytes end at own, then n bytes at p.
type sharedSeg struct {
	p   *byte
	own uint32
	n   uint32
}

func (s *sharedSeg) bytes() []byte { return unsafe.Slice(s.p, s.n) }

// prefixMark is where a request's pieces may be taken up by another
// request: after its n-th shared value (counted from the start of the
// chain of bases), whose copy starts at val and ends end bytes into the
// spans.
type prefixMark struct {
	c   *canonShared
	val *byte
	n   int
	end int
}

// prefixTable finds the pieces of an earlier request a request may start
// with: the marks of recent requests, by their shared value's copy (the
// same copy, the memo's, is given for the same message in every turn). It
// is direct-mapped and lock-free; a mark is only a candidate, its bytes
// are compared before its pieces are used.
type prefixTable struct {
	slots [prefixSlots]atomic.Pointer[prefixMark]
}

const prefixSlots = 256

func prefixSlot(val *byte) int {
	h := uint64(uintptr(unsafe.Pointer(val))) * 0x9e3779b97f4a7c15
	return int(h >> 56)
}

func (t *prefixTable) lookup(val *byte) *prefixMark {
	if m := t.slots[prefixSlot(val)].Load(); m != nil && m.val == val {
		return m
	}
	return nil
}

func (t *prefixTable) store(m *prefixMark) { t.slots[prefixSlot(m.val)].Store(m) }

// newCanonShared returns st's canonical encoding (kindSpans) in pieces,
// sharing the values ks gives (ks.SharedValues over st.data), or nil when
// none of them lies within a span (the caller keeps a reference). With a
// prefixTable (nil: none), the pieces start with those of an earlier
// request when their bytes are the start of st's spans, and st's own
// marks are put in it.
func newCanonShared(st *keyState, ks nativeKeyShared, pt *prefixTable) *canonShared {
	sc := sharedScratchPool.Get().(*sharedScratch)
	starts, vals := ks.SharedValues(sc.starts[:0], sc.vals[:0])
	picks := sc.picks[:0]
	defer func() {
		clear(vals)
		sc.starts, sc.vals, sc.picks = starts[:0], vals[:0], picks[:0]
		sharedScratchPool.Put(sc)
	}()
	// Pick the values that lie within a span, in order (a value out of
	// order or across a span's end is copied with the own bytes).
	j, last, cpos := 0, 0, 0 // cpos: where span i starts in the spans' bytes
	for i := 0; i+1 < len(st.spans); i += 2 {
		s, e := int(st.spans[i]), int(st.spans[i+1])
		pos := s
		for ; j < len(starts); j++ {
			vs, n := int(starts[j]), len(vals[j])
			if vs >= e {
				break
			}
			if vs < pos || vs < last || n == 0 || vs+n > e {
				continue
			}
			picks = append(picks, sharedPick{span: i, start: vs, val: vals[j], end: cpos + vs + n - s})
			pos, last = vs+n, vs+n
		}
		cpos += e - s
	}
	total := cpos
	if len(picks) == 0 {
		return nil
	}
	// The longest start of the pieces an earlier request has in common.
	var base *prefixMark
	if pt != nil {
		for k := len(picks) - 1; k >= 0; k-- {
			m := pt.lookup(unsafe.SliceData(picks[k].val))
			if m != nil && m.n == k+1 && m.end == picks[k].end && m.c.depth < maxSharedDepth && m.c.prefixOf(m.n, st, m.end, picks) {
				base = m
				break
			}
		}
	}
	first, baseLen := 0, 0 // the first pick of c's own, and the bytes before it that base gives
	if base != nil {
		first, baseLen = base.n, base.end
	}
	ownLen, shared := total-baseLen, 0
	for _, p := range picks[first:] {
		ownLen -= len(p.val)
		shared += len(p.val)
	}
	c := &canonShared{}
	buf := make([]byte, len(st.buf), len(st.buf)+ownLen)
	copy(buf, st.buf)
	c.hdr = buf[:len(st.buf):len(st.buf)]
	c.lens = c.arr[:0:len(c.arr)]
	if n := len(st.spans) / 2; n > len(c.arr) {
		c.lens = make([]uint32, 0, n)
	}
	if n := len(picks) - first; n > 0 {
		c.segs = make([]sharedSeg, 0, n)
	}
	k := first
	cpos = 0
	for i := 0; i+1 < len(st.spans); i += 2 {
		s, e := int(st.spans[i]), int(st.spans[i+1])
		c.lens = append(c.lens, uint32(e-s))
		pos := s + min(e-s, max(baseLen-cpos, 0)) // past what base gives
		for ; k < len(picks) && picks[k].span == i; k++ {
			p := picks[k]
			buf = append(buf, st.data[pos:p.start]...)
			c.segs = append(c.segs, sharedSeg{p: unsafe.SliceData(p.val), own: uint32(len(buf) - len(c.hdr)), n: uint32(len(p.val))})
			pos = p.start + len(p.val)
		}
		buf = append(buf, st.data[pos:e]...)
		cpos += e - s
	}
	c.own = buf[len(c.hdr):]
	c.size = scanAllocSize(int(unsafe.Sizeof(*c))) + allocSize(cap(buf)) + scanAllocSize(int(unsafe.Sizeof(sharedSeg{}))*cap(c.segs)) + shared + baseLen
	if len(c.lens) > len(c.arr) {
		c.size += allocSize(4 * cap(c.lens))
	}
	if base != nil {
		c.base, c.baseSegs, c.baseLen, c.depth = base.c, int32(base.n), base.end, base.c.depth+1
	}
	if pt != nil {
		// Mark the last value of c's own in each span, the last spans
		// first (a conversation's messages are followed by few spans).
		nm := 0
		for k := len(picks) - 1; k >= first && nm < len(c.marks); k-- {
			if k+1 < len(picks) && picks[k+1].span == picks[k].span {
				continue
			}
			c.marks[nm] = prefixMark{c: c, val: unsafe.SliceData(picks[k].val), n: k + 1, end: picks[k].end}
			pt.store(&c.marks[nm])
			nm++
		}
	}
	return c
}

// sharedPick is a shared value newCanonShared keeps, at start in the body,
// within the span that starts at spans[span], ending end bytes into the
// spans.
type sharedPick struct {
	span  int // the index in the spans of the span's start
	start int
	val   []byte
	end   int
}

// sharedScratch is newCanonShared's scratch space.
type sharedScratch struct {
	starts []uint32
	vals   [][]byte
	picks  []sharedPick
}

var sharedScratchPool = sync.Pool{New: func() any { return new(sharedScratch) }}

// pieces calls f with the bytes of the spans in order, in pieces (own
// bytes and shared values; never an empty piece), until f returns false;
// it reports whether f always returned true.
func (c *canonShared) pieces(f func([]byte) bool) bool {
	if c.base != nil && !c.base.piecesTo(int(c.baseSegs), f) {
		return false
	}
	return c.ownPieces(len(c.segs), true, f)
}

// piecesTo is pieces up to the n-th shared value (n > 0, counted from the
// start of the chain of bases) included.
func (c *canonShared) piecesTo(n int, f func([]byte) bool) bool {
	if n <= int(c.baseSegs) {
		return c.base.piecesTo(n, f)
	}
	if c.base != nil && !c.base.piecesTo(int(c.baseSegs), f) {
		return false
	}
	return c.ownPieces(n-int(c.baseSegs), false, f)
}

// ownPieces calls f with c's own bytes and shared values up to segs[n-1]
// included, then, when tail, with the own bytes after it.
func (c *canonShared) ownPieces(n int, tail bool, f func([]byte) bool) bool {
	prev := uint32(0)
	for i := range n {
		sg := &c.segs[i]
		if sg.own > prev && !f(c.own[prev:sg.own]) {
			return false
		}
		if !f(sg.bytes()) {
			return false
		}
		prev = sg.own
	}
	return !tail || int(prev) == len(c.own) || f(c.own[prev:])
}

// prefixOf reports whether c's pieces up to its n-th shared value are end
// bytes long and the first end bytes of st's spans, whose shared values
// (newCanonShared's picks) are picks. A piece that is the copy of the pick
// at the same place is equal without a comparison: the copy is what st's
// bytes are there (nativeKeyShared), and it is never modified.
func (c *canonShared) prefixOf(n int, st *keyState, end int, picks []sharedPick) bool {
	i, off, got, k := 0, 0, 0, 0 // st's span i, off bytes into it; got bytes so far; the next pick
	return c.piecesTo(n, func(p []byte) bool {
		at := got
		if got += len(p); got > end {
			return false
		}
		for k < len(picks) && picks[k].end <= at {
			k++
		}
		same := k < len(picks) && picks[k].end == got && len(picks[k].val) == len(p) && unsafe.SliceData(picks[k].val) == unsafe.SliceData(p)
		for len(p) > 0 {
			for i+1 < len(st.spans) && off == int(st.spans[i+1]-st.spans[i]) {
				i, off = i+2, 0
			}
			if i+1 >= len(st.spans) {
				return false
			}
			b := st.data[int(st.spans[i])+off : st.spans[i+1]]
			m := min(len(b), len(p))
			if !same && !bytes.Equal(b[:m], p[:m]) {
				return false
			}
			p, off = p[m:], off+m
		}
		return true
	}) && got == end
}

// equalSpans reports whether c is the encoding of st, a kindSpans state.
func (c *canonShared) equalSpans(st *keyState) bool {
	if len(c.lens) != len(st.spans)/2 || !bytes.Equal(c.hdr, st.buf) {
		return false
	}
	for i, n := range c.lens {
		if st.spans[2*i+1]-st.spans[2*i] != n {
			return false
		}
	}
	// The spans have the same lengths: compare their bytes in sequence.
	i, off := 0, 0 // st's span i, off bytes into it
	return c.pieces(func(p []byte) bool {
		for len(p) > 0 {
			for i < len(c.lens) && off == int(c.lens[i]) {
				i, off = i+1, 0
			}
			if i == len(c.lens) {
				return false
			}
			b := st.data[int(st.spans[2*i])+off : st.spans[2*i+1]]
			n := min(len(b), len(p))
			if !bytes.Equal(b[:n], p[:n]) {
				return false
			}
			p, off = p[n:], off+n
		}
		return true
	})
}

// appendTo appends the canonical request c is.
func (c *canonShared) appendTo(dst []byte) []byte {
	dst = append(dst, c.hdr...)
	i, left := 0, 0 // the span being appended, and what is left of it
	if len(c.lens) > 0 {
		left = int(c.lens[0])
		dst = binary.AppendUvarint(dst, uint64(left))
	}
	c.pieces(func(p []byte) bool {
		for len(p) > 0 {
			for left == 0 && i+1 < len(c.lens) {
				i++
				left = int(c.lens[i])
				dst = binary.AppendUvarint(dst, uint64(left))
			}
			n := min(left, len(p))
			dst = append(dst, p[:n]...)
			p, left = p[n:], left-n
		}
		return true
	})
	// Spans of length zero after the last byte.
	for i+1 < len(c.lens) {
		i++
		dst = binary.AppendUvarint(dst, uint64(c.lens[i]))
	}
	return dst
}

// equal reports whether the canonical request c is, is flat.
func (c *canonShared) equal(flat []byte) bool {
	n := len(c.hdr)
	for _, l := range c.lens {
		n += uvarintLen(uint64(l)) + int(l)
	}
	if len(flat) != n {
		return false
	}
	var scratch [256]byte
	out := c.appendTo(scratch[:0])
	return bytes.Equal(out, flat)
}

// tailTable shares the tails of kindCore ropes (tools, settings) between
// the entries of requests with equal tails: an agent sends the same tools
// with every call, often many kilobytes of JSON schemas, and each rope
// would otherwise keep a copy of them. It is direct-mapped by the tail's
// hash and lock-free (an atomic pointer per slot to an immutable tail); a
// tail is shared only when its bytes are equal, and a tail no slot holds
// any more stays alive as long as the ropes that share it.
//
// It also holds the prefixTable of the kindSpans entries (canonShared) of
// the same cache: the two are what the entries of one cache share.
type tailTable struct {
	slots    [tailSlots]atomic.Pointer[[]byte]
	prefixes prefixTable
}

// prefixTable returns the prefixTable of t's cache; nil for a nil t.
func (t *tailTable) prefixTable() *prefixTable {
	if t == nil {
		return nil
	}
	return &t.prefixes
}

const (
	tailSlots = 256
	// minSharedTail: a shorter tail is copied into its rope (a lookup
	// would cost about what the copy does).
	minSharedTail = 256
)

// intern returns a tail equal to b that ropes may share, nil when b is
// too short to be worth sharing (or t is nil).
func (t *tailTable) intern(b []byte) []byte {
	if t == nil || len(b) < minSharedTail {
		return nil
	}
	slot := &t.slots[xxhash.Sum64(b)%tailSlots]
	if p := slot.Load(); p != nil && bytes.Equal(*p, b) {
		return *p
	}
	c := bytes.Clone(b)
	slot.Store(&c)
	return c
}
