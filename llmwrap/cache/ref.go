package cache

import (
	"bytes"
	"encoding/binary"
	"unsafe"

	"github.com/tokenwise/tokenwise/middleware"
)

// nativeKeySpans is implemented by a middleware.NativeKeyer whose key is
// made of slices of one immutable buffer (the OpenAI adapter's request
// Wire: the request body as received). CacheKeySpans returns that buffer
// and appends to dst the start and end of each slice its AppendCacheKey
// appends, length-prefixed, in order; whole is AppendCacheKey's.
type nativeKeySpans interface {
	CacheKeySpans(dst []uint32, req *middleware.Request) (data []byte, spans []uint32, whole bool)
}

// canonRef is a canonical request kept by reference: hdr (a copy of the
// encoding up to the native request) followed by each span of data,
// length-prefixed, as AppendCacheKey appends them. A miss keeps it instead
// of a copy of the canonical bytes: data is the request body, which is
// immutable and already allocated, so the entry costs a few hundred bytes
// more than the body instead of a second copy of it.
type canonRef struct {
	hdr   []byte
	data  []byte
	spans []uint32
	arr   [32]uint32 // spans of a request of few members, in the same allocation
}

// newCanonRef returns a reference to canon, the canonical request of req,
// when req's native request gives its key as spans of an immutable buffer
// and the reference expands to exactly canon; nil otherwise (the caller
// keeps a copy).
func newCanonRef(canon []byte, req *middleware.Request) *canonRef {
	k, ok := req.Native.(nativeKeySpans)
	if !ok {
		return nil
	}
	r := &canonRef{}
	data, spans, whole := k.CacheKeySpans(r.arr[:0], req)
	if !whole || len(spans)%2 != 0 {
		return nil
	}
	n := 0
	for i := 0; i < len(spans); i += 2 {
		s, e := int(spans[i]), int(spans[i+1])
		if s > e || e > len(data) {
			return nil
		}
		n += uvarintLen(uint64(e-s)) + e - s
	}
	if n >= len(canon) {
		return nil
	}
	r.hdr, r.data, r.spans = bytes.Clone(canon[:len(canon)-n]), data, spans
	if !r.equal(canon) { // never a reference that is not the very key
		return nil
	}
	return r
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// equal reports whether the canonical request r refers to is flat.
func (r *canonRef) equal(flat []byte) bool {
	if len(flat) < len(r.hdr) || !bytes.Equal(flat[:len(r.hdr)], r.hdr) {
		return false
	}
	flat = flat[len(r.hdr):]
	var lb [binary.MaxVarintLen64]byte
	for i := 0; i < len(r.spans); i += 2 {
		b := r.data[r.spans[i]:r.spans[i+1]]
		p := binary.PutUvarint(lb[:], uint64(len(b)))
		if len(flat) < p+len(b) || !bytes.Equal(flat[:p], lb[:p]) || !bytes.Equal(flat[p:p+len(b)], b) {
			return false
		}
		flat = flat[p+len(b):]
	}
	return len(flat) == 0
}

// appendTo appends the canonical request r refers to.
func (r *canonRef) appendTo(dst []byte) []byte {
	dst = append(dst, r.hdr...)
	for i := 0; i < len(r.spans); i += 2 {
		b := r.data[r.spans[i]:r.spans[i+1]]
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	return dst
}

// size is the memory r keeps alive: itself, its header, its spans when
// they did not fit in it, and the whole buffer it refers to.
func (r *canonRef) size() int {
	n := allocSize(int(unsafe.Sizeof(*r))) + allocSize(cap(r.hdr)) + allocSize(cap(r.data))
	if len(r.spans) > len(r.arr) {
		n += allocSize(4 * cap(r.spans))
	}
	return n
}
