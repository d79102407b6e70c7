package cache

import (
	"bytes"
	"encoding/binary"
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenwise/tokenwise/middleware"
)

// The key of a request, and its canonical encoding in pieces.
//
// The cache layer does not encode a request in one buffer to hash it: it
// keys on the pieces of its canonical encoding ([AppendCanonical]), which
// are, in order,
//   - kindCore (a request that is not whole native): the header (version,
//     scope, model), the encoding of each message (tagMessage first), and
//     the tail (tools, settings, and the native request when there is one
//     that is not whole);
//   - kindSpans (a whole native request whose key is spans of an immutable
//     buffer, nativeKeySpans: the OpenAI adapter's request body): the
//     header (version, scope, tagWholeNative) and each span of the buffer,
//     length-prefixed;
//   - kindFlat (any other whole native request): the encoding itself.
//
// The canonical encoding is the concatenation of the pieces. The key is
// the xxHash of the canonical encoding, but for kindCore, whose key is the
// xxHash of the header, the xxHash of each message's encoding (8 bytes,
// little-endian) and the tail: the hashes of messages the memo has seen
// (idmemo.go) are not computed again, so a request whose messages were
// mostly sent before costs the hash of its header, tail and new messages.
// A key is only ever a hint: an entry or flight under the key serves a
// request only when its canonical encoding is equal (a collision costs a
// miss). Pieces are compared piece by piece when both sides have the same
// kind (messages by pointer first: a shared encoding is equal), in flat
// form otherwise.
const (
	kindFlat = iota
	kindCore
	kindSpans
)

// keyState is a request's key and the pieces of its canonical encoding,
// computed once per call (pooled).
type keyState struct {
	key  uint64
	kind int
	// buf is, for kindCore, the header then the tail (hdr is where the tail
	// starts); for kindSpans the header; for kindFlat the encoding.
	buf   []byte
	hdr   int
	msgs  []*msgEnc // kindCore: each message's encoding
	data  []byte    // kindSpans: the buffer the spans are in
	spans []uint32
	// shared is, for kindSpans, the native request when it gives shared
	// values (nativeKeyShared): keep then refers to those (canonShared).
	shared nativeKeyShared
	hb     []byte   // scratch: the messages' hashes
	ihs    []uint64 // scratch: the messages' identity hashes
	sc     encScratch
	flat   []byte // the flat encoding, once made (see flatBytes)
	hasFl  bool
}

var statePool = sync.Pool{New: func() any { return new(keyState) }}

// putState returns st to the pool, unless an outsized request grew it.
func putState(st *keyState) {
	if cap(st.buf) > 256<<10 || cap(st.flat) > 256<<10 || cap(st.sc.arena) > 256<<10 || cap(st.msgs) > 4096 {
		return
	}
	clear(st.msgs)
	st.data, st.msgs, st.hasFl, st.shared = nil, st.msgs[:0], false, nil
	statePool.Put(st)
}

// keyOf sets st to the key and pieces of req under the scope
// scopePrefix+scope, taking known messages' encodings from memo (nil: no
// memo).
func keyOf(st *keyState, memo *msgMemo, scopePrefix, scope string, req *middleware.Request) {
	st.hasFl, st.data, st.shared = false, nil, nil
	st.buf = appendPartition(appendHeader(st.buf[:0], scopePrefix, scope), req)
	k, native := req.Native.(middleware.NativeKeyer)
	if native {
		start := len(st.buf)
		if ks, ok := req.Native.(nativeKeySpans); ok {
			data, spans, whole := ks.CacheKeySpans(st.spans[:0], req)
			if spans != nil {
				st.spans = spans
			}
			if whole && validSpans(data, spans) {
				st.kind, st.data, st.buf = kindSpans, data, append(st.buf, tagWholeNative)
				st.shared, _ = req.Native.(nativeKeyShared)
				var d xxhash.Digest
				d.Reset()
				_, _ = d.Write(st.buf)
				var lb [binary.MaxVarintLen64]byte
				for i := 0; i < len(spans); i += 2 {
					b := data[spans[i]:spans[i+1]]
					_, _ = d.Write(lb[:binary.PutUvarint(lb[:], uint64(len(b)))])
					_, _ = d.Write(b)
				}
				st.key = d.Sum64()
				return
			}
		}
		out, whole := k.AppendCacheKey(append(st.buf, tagWholeNative), req)
		if whole {
			st.kind, st.buf, st.key = kindFlat, out, Sum(out)
			return
		}
		st.buf = out[:start]
	}
	st.kind = kindCore
	st.buf = appendStr(append(st.buf, tagModel), req.Model)
	st.hdr = len(st.buf)
	st.msgs, st.ihs = memo.encodings(st.msgs, st.ihs, &st.sc, req.Messages)
	st.buf = appendTail(st.buf, req, k)
	st.key = coreKey(st)
}

// coreKey is the key of a kindCore state: the xxHash of its header, its
// messages' hashes and its tail.
func coreKey(st *keyState) uint64 {
	hb := st.hb[:0]
	for _, m := range st.msgs {
		hb = binary.LittleEndian.AppendUint64(hb, m.h)
	}
	st.hb = hb
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write(st.buf[:st.hdr])
	_, _ = d.Write(hb)
	_, _ = d.Write(st.buf[st.hdr:])
	return d.Sum64()
}

// validSpans reports whether spans are pairs of ordered offsets in data.
func validSpans(data []byte, spans []uint32) bool {
	if len(spans)%2 != 0 {
		return false
	}
	for i := 0; i < len(spans); i += 2 {
		if spans[i] > spans[i+1] || int(spans[i+1]) > len(data) {
			return false
		}
	}
	return true
}

// flatBytes returns st's canonical encoding in one piece, made once (into
// st's own buffer, valid until st is reused).
func (st *keyState) flatBytes() []byte {
	switch {
	case st.kind == kindFlat:
		return st.buf
	case st.hasFl:
		return st.flat
	}
	f := st.flat[:0]
	switch st.kind {
	case kindCore:
		f = append(f, st.buf[:st.hdr]...)
		for _, m := range st.msgs {
			f = append(f, m.b...)
		}
		f = append(f, st.buf[st.hdr:]...)
	case kindSpans:
		f = append(f, st.buf...)
		for i := 0; i < len(st.spans); i += 2 {
			b := st.data[st.spans[i]:st.spans[i+1]]
			f = append(binary.AppendUvarint(f, uint64(len(b))), b...)
		}
	}
	st.flat, st.hasFl = f, true
	return f
}

// samePieces reports whether st and o, two states of the same kind, have
// the same canonical encoding, piece by piece (messages by pointer first:
// a shared encoding is equal); false for states of different kinds (a
// kindCore encoding is never that of another kind; a kindSpans and a
// kindFlat one may be: false costs a flight shared, never a wrong
// answer). It reads the pieces only (not the flat encoding flatBytes
// makes), so the state of a flight's leader can be compared while the
// leader keeps it.
func (st *keyState) samePieces(o *keyState) bool {
	if st.kind != o.kind || !bytes.Equal(st.buf, o.buf) {
		return false
	}
	switch st.kind {
	case kindCore:
		if st.hdr != o.hdr || len(st.msgs) != len(o.msgs) {
			return false
		}
		for i, m := range st.msgs {
			if n := o.msgs[i]; m != n && (m.h != n.h || !bytes.Equal(m.b, n.b)) {
				return false
			}
		}
	case kindSpans:
		if len(st.spans) != len(o.spans) {
			return false
		}
		for i := 0; i < len(st.spans); i += 2 {
			if !bytes.Equal(st.data[st.spans[i]:st.spans[i+1]], o.data[o.spans[i]:o.spans[i+1]]) {
				return false
			}
		}
	}
	return true
}

// canon is a canonical encoding as an entry keeps it: flat
// bytes, or by reference to a request body (canonRef), or as a rope of
// shared message encodings (canonRope).
type canon struct {
	flat   []byte
	ref    *canonRef
	rope   *canonRope
	shared *canonShared
}

// keep returns st's canonical encoding as an entry keeps it: by reference
// when byRef (the entry goes to a Memory store, which keeps it as made)
// and st can give one, flat otherwise; what ropes and pieces share with
// other entries (tails, chains) is found through k (nil: nothing shared). It copies nothing of the request
// but its header and tail (kindCore) or the header (kindSpans) when by
// reference.
func (st *keyState) keep(byRef bool, k *keepTables) canon {
	if byRef {
		switch st.kind {
		case kindCore:
			return canon{rope: newRope(st, k.tailTable(), k.encChains())}
		case kindSpans:
			if st.shared != nil {
				if c := newCanonShared(st, st.shared, k.valChains()); c != nil {
					return canon{shared: c}
				}
			}
			r := &canonRef{hdr: bytes.Clone(st.buf), data: st.data}
			r.spans = append(r.arr[:0:len(r.arr)], st.spans...)
			return canon{ref: r}
		}
	}
	return canon{flat: bytes.Clone(st.flatBytes())}
}

// matches reports whether c is the canonical encoding of st.
func (c canon) matches(st *keyState) bool {
	switch {
	case c.flat != nil:
		return bytes.Equal(c.flat, st.flatBytes())
	case c.rope != nil:
		if st.kind == kindCore {
			return c.rope.equalState(st)
		}
		return c.rope.equal(st.flatBytes())
	case c.ref != nil:
		if st.kind == kindSpans {
			return c.ref.equalSpans(st)
		}
		return c.ref.equal(st.flatBytes())
	case c.shared != nil:
		if st.kind == kindSpans {
			return c.shared.equalSpans(st)
		}
		return c.shared.equal(st.flatBytes())
	}
	return false
}

// canonRope is the canonical encoding of a kindCore request: a copy of
// its header and tail, and its messages' encodings, shared with the memo
// and with the entries of other requests with the same messages (an
// agent's next turn). A miss keeps it instead of a copy of the canonical
// bytes.
//
// The encodings of the messages the memo does not keep (in a keyState's
// scratch) are copied into the rope: after the header and tail in b's
// allocation, their hashes, ends and indices among the messages first
// (ownRecord bytes each), then their bytes. A rope is two allocations
// whatever its messages, and the garbage collector scans its head only
// (b's allocation is pointer-free).
type canonRope struct {
	b    []byte // header, then tail (the copies follow, past cap)
	hdr  int    // where the tail starts in b
	tail []byte // when not nil, the tail, shared with other ropes (tailTable); b is then the header
	// The messages' encodings: the memo's, shared with other ropes, in a
	// chain (chain.go), and the rope's own copies of the others (nown,
	// in order: see own).
	msgs  *chainNode[*msgEnc]
	nown  int
	ob    []byte // the copies: nown records, then their bytes, in b's allocation
	bsize int    // the size of b's allocation, the copies included
	rsize int    // the size of the rope's allocation
}

// ownRecord is the size of the record of a rope's copy of an encoding in
// its ob: the encoding's hash, where its bytes end after the records,
// and the index of its message among the request's (little-endian
// uint64s).
const ownRecord = 24

// own returns the hash, the bytes and the message's index of r's copy k.
func (r *canonRope) own(k int) (h uint64, b []byte, at int) {
	rec := r.ob[k*ownRecord : (k+1)*ownRecord]
	h = binary.LittleEndian.Uint64(rec)
	end := r.nown*ownRecord + int(binary.LittleEndian.Uint64(rec[8:]))
	start := r.nown * ownRecord
	if k > 0 {
		start += int(binary.LittleEndian.Uint64(r.ob[(k-1)*ownRecord+8:]))
	}
	return h, r.ob[start:end:end], int(binary.LittleEndian.Uint64(rec[16:]))
}

// ownAt returns the index among the request's messages of r's copy k.
func (r *canonRope) ownAt(k int) int {
	return int(binary.LittleEndian.Uint64(r.ob[k*ownRecord+16:]))
}

// newRope returns st's canonical encoding as a rope, st a kindCore state,
// its tail shared through tails (nil: copied).
func newRope(st *keyState, tails *tailTable, chains *chainTable[*msgEnc]) *canonRope {
	r, _ := newRopeRoom(st, tails, chains, 0)
	return r
}

// newRopeRoom is newRope, and, when room is positive, an empty slice of
// room bytes of capacity in the allocation of the rope's bytes (for the
// entry's answer: one allocation fewer a kept miss), which the rope's
// size counts; nil when the rope's bytes are more than room and
// maxRopeWithRoom (see there).
//
// The strings of an answer served from the entry point into its packed
// bytes (packedEntry.entry), and a caller may hold them long after the
// store dropped the entry (an agent keeps each answer in its history):
// in the rope's allocation they keep the rope's bytes alive with them,
// the copies of the request's binary parts and short messages included.
// Sharing it only with a rope of at most the answer's size or
// maxRopeWithRoom keeps what an answer holds alive within that.
func newRopeRoom(st *keyState, tails *tailTable, chains *chainTable[*msgEnc], room int) (*canonRope, []byte) {
	tail := tails.intern(st.buf[st.hdr:])
	n, size := 0, len(st.buf)
	if tail != nil {
		size = st.hdr
	}
	for _, m := range st.msgs {
		if m.tmp {
			n++
			size += ownRecord + len(m.b)
		}
	}
	if room > 0 && size > max(room, maxRopeWithRoom) {
		// The answer's strings would keep these bytes alive as long as
		// a caller holds them (an entry's answer is decoded in place):
		// the answer gets an allocation of its own.
		room = 0
	}
	r := &canonRope{}
	r.rsize = int(unsafe.Sizeof(*r))
	buf := make([]byte, 0, size+room)
	if tail != nil {
		buf = append(buf, st.buf[:st.hdr]...)
		r.tail = tail
	} else {
		buf = append(buf, st.buf...)
	}
	r.b, r.hdr, r.bsize = buf[:len(buf):len(buf)], st.hdr, cap(buf)
	if n > 0 {
		rec := buf[len(buf) : len(buf)+n*ownRecord]
		ob := buf[len(buf) : len(buf)+n*ownRecord]
		end, k := 0, 0
		for i, m := range st.msgs {
			if m.tmp {
				ob = append(ob, m.b...)
				end += len(m.b)
				x := rec[k*ownRecord : (k+1)*ownRecord]
				binary.LittleEndian.PutUint64(x, m.h)
				binary.LittleEndian.PutUint64(x[8:], uint64(end))
				binary.LittleEndian.PutUint64(x[16:], uint64(i))
				k++
			}
		}
		r.nown, r.ob = n, ob[:len(ob):len(ob)]
	}
	var arr [64]*msgEnc
	shared := arr[:0]
	for _, m := range st.msgs {
		if !m.tmp {
			shared = append(shared, m)
		}
	}
	r.msgs = chains.make(shared)
	if room > 0 {
		return r, buf[size:size:cap(buf)]
	}
	return r, nil
}

// maxRopeWithRoom: a rope of more bytes (header, tail, copies) than this
// and than its answer's bound does not make room for the answer in its
// allocation (newRopeRoom).
const maxRopeWithRoom = 8 << 10

// newEncChains returns the chain table of ropes' message encodings.
func newEncChains(slots int) *chainTable[*msgEnc] {
	// Encodings of equal bytes are equal values: the messages of
	// requests built anew each call (equal strings, other copies) share
	// their nodes too, which then hold the first request's encodings.
	return newChainTable(slots, func(h uint64, m *msgEnc) uint64 {
		return mixHash(h, m.h)
	}, func(a, b *msgEnc) bool {
		return a == b || (a.h == b.h && bytes.Equal(a.b, b.b))
	})
}

// messages returns r's shared messages' encodings in their places among
// its messages, nil in the places of its own copies (see own), in arr if
// they fit.
func (r *canonRope) messages(arr *[64]*msgEnc) []*msgEnc {
	n := r.msgs.length() + r.nown
	out := arr[:0]
	if n > len(arr) {
		out = make([]*msgEnc, 0, n)
	}
	out = out[:n]
	// The shared ones, last to first, in the places the copies leave.
	j, k := n-1, r.nown-1
	for nd := r.msgs; nd != nil; nd = nd.prev {
		for k >= 0 && r.ownAt(k) == j {
			out[j] = nil
			j, k = j-1, k-1
		}
		out[j] = nd.v
		j--
	}
	for ; j >= 0; j-- {
		out[j] = nil // copies only, from here down
	}
	return out
}

// equalState reports whether r is the encoding of st, a kindCore state.
func (r *canonRope) equalState(st *keyState) bool {
	if r.hdr != st.hdr || r.msgs.length()+r.nown != len(st.msgs) || !bytes.Equal(r.b[:r.hdr], st.buf[:st.hdr]) ||
		!bytes.Equal(r.tailBytes(), st.buf[st.hdr:]) {
		return false
	}
	var arr [64]*msgEnc
	k := 0
	for i, m := range r.messages(&arr) {
		o := st.msgs[i]
		if m == nil {
			h, b, _ := r.own(k)
			if h != o.h || !bytes.Equal(b, o.b) {
				return false
			}
			k++
		} else if m != o && (m.h != o.h || !bytes.Equal(m.b, o.b)) {
			return false
		}
	}
	return true
}

// equal reports whether r is the encoding flat.
func (r *canonRope) equal(flat []byte) bool {
	if !bytes.HasPrefix(flat, r.b[:r.hdr]) {
		return false
	}
	flat = flat[r.hdr:]
	var arr [64]*msgEnc
	k := 0
	for _, m := range r.messages(&arr) {
		var b []byte
		if m == nil {
			_, b, _ = r.own(k)
			k++
		} else {
			b = m.b
		}
		if !bytes.HasPrefix(flat, b) {
			return false
		}
		flat = flat[len(b):]
	}
	return bytes.Equal(flat, r.tailBytes())
}

// tailBytes returns r's tail.
func (r *canonRope) tailBytes() []byte {
	if r.tail != nil {
		return r.tail
	}
	return r.b[r.hdr:]
}

// appendTo appends the encoding r is.
func (r *canonRope) appendTo(dst []byte) []byte {
	dst = append(dst, r.b[:r.hdr]...)
	var arr [64]*msgEnc
	k := 0
	for _, m := range r.messages(&arr) {
		if m == nil {
			_, b, _ := r.own(k)
			dst, k = append(dst, b...), k+1
		} else {
			dst = append(dst, m.b...)
		}
	}
	return append(dst, r.tailBytes()...)
}

// size is the memory r keeps alive: itself (with its copies of scratch
// encodings), its header and tail (with the copied bytes), its message
// chain, its shared tail and each shared message's encoding (counted in
// full, nodes too, although other entries may share them).
func (r *canonRope) size() int {
	n := scanAllocSize(r.rsize) + allocSize(r.bsize) + allocSize(cap(r.tail))
	// The rope's own copies are in b's allocation.
	if r.msgs != nil {
		n += weakHandleBytes
	}
	for nd := r.msgs; nd != nil; nd = nd.prev {
		n += nodeBytes[*msgEnc]() + allocSize(int(unsafe.Sizeof(*nd.v))) + allocSize(cap(nd.v.b))
	}
	return n
}

// equalSpans reports whether r is the encoding of st, a kindSpans state.
func (r *canonRef) equalSpans(st *keyState) bool {
	if len(r.spans) != len(st.spans) || !bytes.Equal(r.hdr, st.buf) {
		return false
	}
	for i := 0; i < len(r.spans); i += 2 {
		if !bytes.Equal(r.data[r.spans[i]:r.spans[i+1]], st.data[st.spans[i]:st.spans[i+1]]) {
			return false
		}
	}
	return true
}
