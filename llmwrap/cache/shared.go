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
// the rest with the entries of the other turns. The shared values are a
// chain (chain.go), whose nodes the entries of requests with the same
// first values share too: an entry holds a pointer to its chain, not one
// per value, for the garbage collector to scan.
//
// The bytes of the spans, in order, are own[:owns[0]], the chain's first
// value, own[owns[0]:owns[1]], its second value, ..., own[owns[last]:].
type canonShared struct {
	// Only segs and mem are for the garbage collector to mark, and only
	// segs to scan: the rest is in one pointer-free allocation (each
	// object an entry keeps alive is one more for every collection to
	// mark).
	segs *chainNode[sharedVal]
	// mem is the spans' lengths (nLens of them), then owns (nOwns), then
	// the bytes, four to a word: the header (nHdr), then the own bytes.
	mem    *uint32
	nHdr   uint32
	nLens  uint32
	nOwns  uint32
	nBytes uint32
	size   int // what the pieces' allocations take, shared values counted in full
}

// The parts of c's allocation.

func (c *canonShared) nums() []uint32 { return unsafe.Slice(c.mem, c.nLens+c.nOwns) }
func (c *canonShared) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(c.mem), 4*(c.nLens+c.nOwns))), c.nBytes)
}
func (c *canonShared) hdr() []byte    { return c.bytes()[:c.nHdr] }
func (c *canonShared) own() []byte    { return c.bytes()[c.nHdr:] }
func (c *canonShared) lens() []uint32 { return c.nums()[:c.nLens] }

// owns[i] is where the own bytes before value i end.
func (c *canonShared) owns() []uint32 { return c.nums()[c.nLens:] }

// alloc makes c's allocation, for nums uint32s and n bytes.
func (c *canonShared) alloc(nums, n int) {
	mem := make([]uint32, nums+(n+3)/4)
	c.mem = &mem[0]
	c.nBytes = uint32(n)
}

// sharedVal is a shared value: n bytes at p.
type sharedVal struct {
	p *byte
	n uint32
}

func (v sharedVal) bytes() []byte { return unsafe.Slice(v.p, v.n) }

// newValChains returns the chain table of the entries' shared values.
func newValChains(slots int) *chainTable[sharedVal] {
	// The adapter's copies of equal values are one copy: values are the
	// same when their pointers are.
	return newChainTable(slots, func(h uint64, v sharedVal) uint64 {
		return mixHash(h, uint64(uintptr(unsafe.Pointer(v.p)))^uint64(v.n)<<48)
	}, nil)
}

// newCanonShared returns st's canonical encoding (kindSpans) in pieces,
// sharing the values ks gives (ks.SharedValues over st.data), their chain
// made through chains (nil: a chain of its own), or nil when none of them
// lies within a span (the caller keeps a reference).
func newCanonShared(st *keyState, ks nativeKeyShared, chains *chainTable[sharedVal]) *canonShared {
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
	ownLen, shared, j, last := 0, 0, 0, 0
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
			ownLen += vs - pos
			picks = append(picks, sharedPick{span: i, start: vs, val: vals[j]})
			shared += n
			pos, last = vs+n, vs+n
		}
		ownLen += e - pos
	}
	if len(picks) == 0 {
		return nil
	}
	nSpans := len(st.spans) / 2
	c := &canonShared{nHdr: uint32(len(st.buf)), nLens: uint32(nSpans), nOwns: uint32(len(picks))}
	c.alloc(nSpans+len(picks), len(st.buf)+ownLen)
	buf := c.bytes()[:0]
	buf = append(buf, st.buf...)
	nums := c.nums()[:nSpans]
	k := 0
	for i := 0; i+1 < len(st.spans); i += 2 {
		s, e := int(st.spans[i]), int(st.spans[i+1])
		nums[i/2] = uint32(e - s)
		pos := s
		for ; k < len(picks) && picks[k].span == i; k++ {
			p := picks[k]
			buf = append(buf, st.data[pos:p.start]...)
			nums = append(nums, uint32(len(buf)-len(st.buf)))
			pos = p.start + len(p.val)
		}
		buf = append(buf, st.data[pos:e]...)
	}
	if len(buf) != int(c.nBytes) || len(nums) != nSpans+len(picks) {
		panic("tokenwise/cache: a shared canonical encoding's sizes are wrong") // cannot happen: counted above
	}
	sv := sc.svals[:0]
	for _, p := range picks {
		sv = append(sv, sharedVal{p: unsafe.SliceData(p.val), n: uint32(len(p.val))})
	}
	c.segs = chains.make(sv)
	clear(sv)
	sc.svals = sv[:0]
	// The chain's nodes are counted in full, shared or not.
	c.size = scanAllocSize(int(unsafe.Sizeof(*c))) + allocSize(4*(nSpans+len(picks))+int(c.nBytes+3)/4*4) +
		len(picks)*nodeBytes[sharedVal]() + weakHandleBytes + shared
	return c
}

// sharedPick is a shared value newCanonShared keeps, at start in the body,
// within the span that starts at spans[span].
type sharedPick struct {
	span  int // the index in the spans of the span's start
	start int
	val   []byte
}

// sharedScratch is newCanonShared's scratch space.
type sharedScratch struct {
	starts []uint32
	vals   [][]byte
	picks  []sharedPick
	svals  []sharedVal
}

var sharedScratchPool = sync.Pool{New: func() any { return new(sharedScratch) }}

// pieces calls f with the bytes of the spans in order, in pieces (own
// bytes and shared values; never an empty piece), until f returns false;
// it reports whether f always returned true.
func (c *canonShared) pieces(f func([]byte) bool) bool {
	var arr [64]sharedVal
	vals := c.segs.appendValues(arr[:0])
	owns, ownb := c.owns(), c.own()
	prev := uint32(0)
	for i, v := range vals {
		own := owns[i]
		if own > prev && !f(ownb[prev:own]) {
			return false
		}
		if !f(v.bytes()) {
			return false
		}
		prev = own
	}
	return int(prev) == len(ownb) || f(ownb[prev:])
}

// equalSpans reports whether c is the encoding of st, a kindSpans state.
func (c *canonShared) equalSpans(st *keyState) bool {
	lens := c.lens()
	if len(lens) != len(st.spans)/2 || !bytes.Equal(c.hdr(), st.buf) {
		return false
	}
	for i, n := range lens {
		if st.spans[2*i+1]-st.spans[2*i] != n {
			return false
		}
	}
	// The spans have the same lengths: compare their bytes in sequence.
	i, off := 0, 0 // st's span i, off bytes into it
	return c.pieces(func(p []byte) bool {
		for len(p) > 0 {
			for i < len(lens) && off == int(lens[i]) {
				i, off = i+1, 0
			}
			if i == len(lens) {
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
	dst = append(dst, c.hdr()...)
	lens := c.lens()
	i, left := 0, 0 // the span being appended, and what is left of it
	if len(lens) > 0 {
		left = int(lens[0])
		dst = binary.AppendUvarint(dst, uint64(left))
	}
	c.pieces(func(p []byte) bool {
		for len(p) > 0 {
			for left == 0 && i+1 < len(lens) {
				i++
				left = int(lens[i])
				dst = binary.AppendUvarint(dst, uint64(left))
			}
			n := min(left, len(p))
			dst = append(dst, p[:n]...)
			p, left = p[n:], left-n
		}
		return true
	})
	// Spans of length zero after the last byte.
	for i+1 < len(lens) {
		i++
		dst = binary.AppendUvarint(dst, uint64(lens[i]))
	}
	return dst
}

// equal reports whether the canonical request c is, is flat.
func (c *canonShared) equal(flat []byte) bool {
	n := int(c.nHdr)
	for _, l := range c.lens() {
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
type tailTable struct {
	slots [tailSlots]atomic.Pointer[[]byte]
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
