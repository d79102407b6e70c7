package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/tokenwise/tokenwise/middleware"
)

// Entry is one cached answer. Once handed to a [Store] it is immutable:
// stores may return the same *Entry to many callers, and the cache layer
// serves deep copies of its Response.
type Entry struct {
	// Request is the canonical encoding of the request
	// ([AppendCanonical]); a lookup is a hit only when it equals the
	// request's own encoding. It is nil in most entries the cache layer
	// makes for a [Memory] store: such an entry refers to the request body
	// the OpenAI adapter decoded, or to its messages' encodings, which the
	// entries of requests with the same messages share, instead of holding
	// a copy of its encoding (see [Entry.Canonical]).
	Request []byte
	// Response is the complete answer as the provider gave it, usage
	// included; FromCache is false. Native is nil or a
	// *middleware.StoredNative: the adapter's own form of the answer, kept
	// so that a hit is lossless (see middleware.NativeMarshaler).
	Response middleware.Response
	// Stored is when the cache layer stored the entry in a store other
	// than a [Memory] (zero: not known, as in an entry of a binary form
	// before version 6), and TTL the cache's configured TTL then
	// ([Config.TTL]; 0: none). A cache whose TTL is now shorter — a reload
	// shortened it — does not serve the entry once it is older than that
	// TTL ([Entry.Outlived]), whatever expiry its store keeps it for. (A
	// Memory store holds its own entries: [Memory.HoldTo].)
	Stored time.Time
	TTL    time.Duration
	// Bill, when the answer's usage sums provider calls billed on more
	// than one model (a final answer regenerated from a cheaper model's
	// draft, a cascade's rejected answers before the one passed on), is
	// that usage per call, each on the model it was billed at: a hit
	// saved what they cost, not the whole usage at the price of the model
	// that wrote the answer. Nil when one model was billed.
	Bill []Billed

	// Set when Request is nil: the canonical request by reference.
	ref    *canonRef
	rope   *canonRope
	shared *canonShared
}

// Canonical returns the canonical encoding of the entry's request:
// Request, or the bytes the entry refers to (a new slice each call).
func (e *Entry) Canonical() []byte {
	if e.Request == nil {
		switch {
		case e.ref != nil:
			return e.ref.appendTo(nil)
		case e.rope != nil:
			return e.rope.appendTo(nil)
		case e.shared != nil:
			return e.shared.appendTo(nil)
		}
	}
	return e.Request
}

// canon returns the entry's canonical request as kept.
func (e *Entry) canon() canon {
	if e.Request == nil && (e.ref != nil || e.rope != nil || e.shared != nil) {
		return canon{ref: e.ref, rope: e.rope, shared: e.shared}
	}
	return canon{flat: e.Request}
}

// matches reports whether the entry's request encodes as flat.
func (e *Entry) matches(flat []byte) bool {
	if e.Request == nil {
		switch {
		case e.ref != nil:
			return e.ref.equal(flat)
		case e.rope != nil:
			return e.rope.equal(flat)
		case e.shared != nil:
			return e.shared.equal(flat)
		}
	}
	return bytes.Equal(e.Request, flat)
}

// Outlived reports whether the entry, stored under a longer TTL than ttl
// (the cache's TTL in force; 0: none), is older than ttl at now: an answer
// kept before a reload shortened the TTL, which the cache no longer
// serves. An entry whose storing time is not known never is.
func (e *Entry) Outlived(ttl time.Duration, now time.Time) bool {
	if ttl <= 0 || e.Stored.IsZero() || e.TTL > 0 && e.TTL <= ttl {
		return false
	}
	return now.Sub(e.Stored) >= ttl
}

// Billed is the usage of one provider call of a cached answer, on the
// model it was billed at (see Entry.Bill).
type Billed struct {
	Model string
	Usage middleware.Usage
}

// entryVersion prefixes the binary form of an Entry. Version 2 adds the
// response's refusal and the adapter's stored native answer, version 3
// the audio tokens of its usage, version 4 its service tier, version 5
// its message's legacy function call and refusal, version 6 the entry's
// Stored and TTL and its bill; entries of earlier versions (without them)
// are still read.
const entryVersion = 6

// ErrCorruptEntry is returned by [Entry.UnmarshalBinary] for bytes that are
// not an entry of this version.
var ErrCorruptEntry = errors.New("tokenwise/cache: corrupt or foreign cache entry")

// MarshalBinary encodes the entry for a shared store (Redis).
func (e *Entry) MarshalBinary() ([]byte, error) { return e.AppendBinary(nil) }

// AppendBinary appends the binary form of the entry to dst.
func (e *Entry) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, entryVersion)
	dst = appendBytes(dst, e.Canonical())
	dst = appendResponseBinary(dst, &e.Response)
	var stored int64 // 0: not known
	if !e.Stored.IsZero() {
		stored = e.Stored.UnixNano()
	}
	dst = binary.AppendVarint(dst, stored)
	dst = binary.AppendVarint(dst, int64(e.TTL))
	return appendBill(dst, e.Bill), nil
}

// appendBill appends the binary form of an entry's bill (what follows its
// response) to dst.
func appendBill(dst []byte, bill []Billed) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(bill)))
	for i := range bill {
		b := &bill[i]
		u := &b.Usage
		dst = appendStr(dst, b.Model)
		for _, n := range [...]int64{u.InputTokens, u.OutputTokens, u.CachedInputTokens, u.CacheWriteTokens,
			u.ReasoningTokens, u.AudioInputTokens, u.AudioOutputTokens} {
			dst = binary.AppendVarint(dst, n)
		}
		dst = appendStr(dst, u.ServiceTier)
	}
	return dst
}

// billBound bounds the length of appendBill's form of bill.
func billBound(bill []Billed) int {
	const varint = binary.MaxVarintLen64
	n := varint
	for i := range bill {
		n += 10*varint + len(bill[i].Model) + len(bill[i].Usage.ServiceTier)
	}
	return n
}

// bill decodes the binary form of an entry's bill (appendBill).
func (d *decoder) bill() []Billed {
	n := d.count()
	if n == 0 {
		return nil
	}
	bill := make([]Billed, n)
	for i := range bill {
		b := &bill[i]
		u := &b.Usage
		b.Model = d.str()
		for _, p := range [...]*int64{&u.InputTokens, &u.OutputTokens, &u.CachedInputTokens, &u.CacheWriteTokens,
			&u.ReasoningTokens, &u.AudioInputTokens, &u.AudioOutputTokens} {
			*p = d.varint()
		}
		u.ServiceTier = d.str()
	}
	return bill
}

// appendResponseBinary appends the binary form of r (what follows the
// canonical request in an entry's) to dst. FromCache is not kept; Native
// is, when it is a *middleware.StoredNative.
func appendResponseBinary(dst []byte, r *middleware.Response) []byte {
	sn, ok := r.Native.(*middleware.StoredNative)
	if !ok {
		return appendResponseNative(dst, r, nil)
	}
	return appendResponseNative(dst, r, sn)
}

// appendResponseNative is appendResponseBinary with sn (nil: none) as
// r's Native.
func appendResponseNative(dst []byte, r *middleware.Response, sn *middleware.StoredNative) []byte {
	dst = appendStr(dst, r.ID)
	dst = appendStr(dst, r.Model)
	dst = appendStr(dst, r.FinishReason)
	for _, n := range [...]int64{r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CachedInputTokens,
		r.Usage.CacheWriteTokens, r.Usage.ReasoningTokens} {
		dst = binary.AppendVarint(dst, n)
	}
	dst = appendMessageBase(dst, &r.Message)
	dst = appendStr(dst, r.Refusal)
	if sn != nil {
		dst = appendStr(append(dst, 1), sn.Format)
		dst = appendBytes(dst, sn.Data)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendVarint(dst, r.Usage.AudioInputTokens)
	dst = binary.AppendVarint(dst, r.Usage.AudioOutputTokens)
	dst = appendStr(dst, r.Usage.ServiceTier)
	return appendMessageLegacy(dst, &r.Message)
}

// UnmarshalBinary decodes an entry written by MarshalBinary. The entry
// shares no memory with data.
func (e *Entry) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	version := d.byte()
	if version < 1 || version > entryVersion {
		return ErrCorruptEntry
	}
	var out Entry
	out.Request = d.bytes()
	d.response(&out.Response, version)
	if version >= 6 {
		if stored := d.varint(); stored != 0 {
			out.Stored = time.Unix(0, stored)
		}
		out.TTL = time.Duration(d.varint())
		out.Bill = d.bill()
	}
	if d.bad || len(d.b) != 0 {
		return ErrCorruptEntry
	}
	*e = out
	return nil
}

// response decodes into r the binary form of a response of an entry of
// version (appendResponseBinary).
func (d *decoder) response(r *middleware.Response, version byte) {
	r.ID, r.Model, r.FinishReason = d.str(), d.str(), d.str()
	for _, p := range [...]*int64{&r.Usage.InputTokens, &r.Usage.OutputTokens, &r.Usage.CachedInputTokens,
		&r.Usage.CacheWriteTokens, &r.Usage.ReasoningTokens} {
		*p = d.varint()
	}
	m := &r.Message
	m.Role = middleware.Role(d.str())
	m.Content = d.str()
	if n := d.count(); n > 0 {
		m.Parts = make([]middleware.Part, n)
		for i := range m.Parts {
			p := &m.Parts[i]
			p.Type, p.Text, p.URL, p.Detail, p.MIMEType = d.str(), d.str(), d.str(), d.str(), d.str()
			p.Data = d.bytes()
		}
	}
	m.Name = d.str()
	if n := d.count(); n > 0 {
		m.ToolCalls = make([]middleware.ToolCall, n)
		for i := range m.ToolCalls {
			c := &m.ToolCalls[i]
			c.ID, c.Name, c.Arguments = d.str(), d.str(), d.str()
		}
	}
	m.ToolCallID = d.str()
	m.Reasoning = d.str()
	if version >= 2 {
		r.Refusal = d.str()
	}
	if version >= 2 && d.byte() == 1 {
		sn := &middleware.StoredNative{Format: d.str()}
		sn.Data = d.bytes()
		r.Native = sn
	}
	if version >= 3 {
		r.Usage.AudioInputTokens = d.varint()
		r.Usage.AudioOutputTokens = d.varint()
	}
	if version >= 4 {
		r.Usage.ServiceTier = d.str()
	}
	if version >= 5 {
		if d.byte() == 1 {
			m.FunctionCall = &middleware.ToolCall{ID: d.str(), Name: d.str(), Arguments: d.str()}
		}
		m.Refusal = d.str()
	}
}

// packedEntry is an entry as a [Memory] store keeps it: its canonical
// request as the entry keeps it (a copy, or pieces by reference, which
// the entries of other requests share) and its response in its binary
// form, one pointer-free allocation. A kept Entry's Response is a tree of
// strings and slices (about 400 bytes of pointers and headers) that every
// garbage collection of the process would scan, for each of the store's
// entries; the packed one is a few words, kept in the store's list element
// itself (memEntry). Get decodes a new Entry from it.
type packedEntry struct {
	request []byte
	ref     *canonRef
	rope    *canonRope
	shared  *canonShared
	resp    []byte // appendResponseBinary then appendBill; never modified once packed
	// respInRope: resp is in the allocation of rope's bytes, which
	// rope.size counts.
	respInRope bool
}

// pack returns the packed form of e.
func pack(e *Entry) packedEntry {
	sn, _ := e.Response.Native.(*middleware.StoredNative)
	return packed(e.canon(), &e.Response, sn, e.Bill)
}

// packNative returns resp's Native as a Memory store keeps it: itself
// when it is a middleware.StoredNative, its bytes (encoded, not copied)
// in sn when it is a middleware.NativeMarshaler with something to keep,
// nil otherwise.
func packNative(resp *middleware.Response, sn *middleware.StoredNative) *middleware.StoredNative {
	switch n := resp.Native.(type) {
	case *middleware.StoredNative:
		return n
	case middleware.NativeMarshaler:
		if format, data, ok := n.MarshalNative(); ok {
			*sn = middleware.StoredNative{Format: format, Data: data}
			return sn
		}
	}
	return nil
}

// packedBound bounds the length of the packed form of the answer r with
// the native answer sn and the bill bill.
func packedBound(r *middleware.Response, sn *middleware.StoredNative, bill []Billed) int {
	return responseBinaryBound(r, sn) + billBound(bill)
}

func packed(req canon, r *middleware.Response, sn *middleware.StoredNative, bill []Billed) packedEntry {
	return packedInto(nil, req, r, sn, bill)
}

// packedInto is packed, the answer's binary form appended to dst (empty)
// when it has the capacity packedBound gives. dst is nil, or room, the
// room newRope made for the answer in the allocation of req's rope's
// bytes (which the rope's size counts): the entry then marks its answer
// so (respInRope).
func packedInto(room []byte, req canon, r *middleware.Response, sn *middleware.StoredNative, bill []Billed) packedEntry {
	p := packedEntry{request: req.flat, ref: req.ref, rope: req.rope, shared: req.shared}
	n := packedBound(r, sn, bill)
	dst := room[:0]
	if cap(dst) < n {
		dst = make([]byte, 0, n)
	}
	p.resp = appendBill(appendResponseNative(dst, r, sn), bill)
	p.respInRope = req.rope != nil && cap(room) > 0 && unsafe.SliceData(p.resp) == unsafe.SliceData(room)
	return p
}

// responseBinaryBound bounds the length of the binary form of r with the
// native answer sn (appendResponseNative), so that it is made in one
// allocation: a streamed answer's native form is every chunk it was sent
// in.
func responseBinaryBound(r *middleware.Response, sn *middleware.StoredNative) int {
	const varint = binary.MaxVarintLen64
	m := &r.Message
	n := 28*varint + len(r.ID) + len(r.Model) + len(r.FinishReason) + len(r.Refusal) +
		len(m.Role) + len(m.Content) + len(m.Name) + len(m.ToolCallID) + len(m.Reasoning) + len(m.Refusal)
	if fc := m.FunctionCall; fc != nil {
		n += len(fc.ID) + len(fc.Name) + len(fc.Arguments)
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		n += 6*varint + len(p.Type) + len(p.Text) + len(p.URL) + len(p.Detail) + len(p.MIMEType) + len(p.Data)
	}
	for i := range m.ToolCalls {
		c := &m.ToolCalls[i]
		n += 3*varint + len(c.ID) + len(c.Name) + len(c.Arguments)
	}
	if sn != nil {
		n += 2*varint + len(sn.Format) + len(sn.Data)
	}
	return n
}

// entry returns a new Entry decoded from p. Its strings point into p's
// response bytes, which are never modified; its byte slices (a stored
// native answer, binary parts) are copies, which a caller may modify.
func (p *packedEntry) entry() *Entry {
	e := &Entry{Request: p.request, ref: p.ref, rope: p.rope, shared: p.shared}
	d := decoder{b: p.resp, alias: true}
	d.response(&e.Response, entryVersion)
	e.Bill = d.bill()
	if d.bad || len(d.b) != 0 {
		panic("tokenwise/cache: a packed entry does not decode") // cannot happen: pack wrote it
	}
	return e
}

// size returns the heap memory p holds, for the byte bound: every
// allocation it owns rounded up to the allocator's size class (the pieces
// of a canonical request shared with other entries counted in full), plus
// the store's per-entry overhead, p's own words included.
func (p *packedEntry) size() int64 {
	n := allocSize(cap(p.request))
	if !p.respInRope {
		n += allocSize(cap(p.resp))
	}
	if p.ref != nil {
		n += p.ref.size()
	}
	if p.shared != nil {
		n += p.shared.size
	}
	if p.rope != nil {
		n += p.rope.size()
	}
	return int64(n + perEntryOverhead)
}

// perEntryOverhead is the memory a [Memory] store spends per entry besides
// the allocations the entry refers to: the LRU's list element, which holds
// the packed entry (memEntry) beside its own 64 bytes of links, key and
// expiry, rounded to its size class, and one slot in its map (16 bytes of
// key and pointer, a control byte, at a load factor that can fall to 7/16
// after growth).
var perEntryOverhead = allocSize(lruElementBytes+int(unsafe.Sizeof(memEntry{}))) + 40

// lruElementBytes is what golang-lru's list element takes besides its
// value: two links, the list, the key, an expiry time and its bucket.
const lruElementBytes = 64

// constant returns the static string equal to s when s is one of the
// common roles and finish reasons, so that an entry does not hold a copy.
func constant(s string) (string, bool) {
	switch s {
	case "":
		return "", true
	case string(middleware.RoleAssistant):
		return string(middleware.RoleAssistant), true
	case middleware.FinishStop:
		return middleware.FinishStop, true
	case middleware.FinishToolCalls:
		return middleware.FinishToolCalls, true
	}
	return s, false
}

// eachString calls f with a pointer to every string of r that an entry
// keeps, in one fixed order (the one list arenaLen and compact share). A
// read-only f never writes to r.
func eachString(r *middleware.Response, f func(*string)) {
	m := &r.Message
	f(&r.ID)
	f(&r.Model)
	f(&r.FinishReason)
	f(&r.Refusal)
	f((*string)(&m.Role)) // a Role is a string: no copy to escape to the heap
	f(&m.Content)
	f(&m.Name)
	f(&m.ToolCallID)
	f(&m.Reasoning)
	f(&m.Refusal)
	if fc := m.FunctionCall; fc != nil {
		f(&fc.ID)
		f(&fc.Name)
		f(&fc.Arguments)
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		f(&p.Type)
		f(&p.Text)
		f(&p.URL)
		f(&p.Detail)
		f(&p.MIMEType)
	}
	for i := range m.ToolCalls {
		c := &m.ToolCalls[i]
		f(&c.ID)
		f(&c.Name)
		f(&c.Arguments)
	}
}

// arenaLen is the length of the one allocation compact puts r's strings in.
func arenaLen(r *middleware.Response) int {
	n := 0
	eachString(r, func(s *string) {
		if _, ok := constant(*s); !ok {
			n += len(*s)
		}
	})
	return n
}

// compact sets *out to a deep copy of r that owns its memory in as few
// allocations as possible: every string in one buffer (a decoded string
// often points into a whole response body, which the entry would otherwise
// keep alive), the common roles and finish reasons as constants, and new
// Parts and ToolCalls slices of exact capacity. Native is left to the
// caller. (out is the entry's own field: a returned copy would be one more
// allocation, the closures below take its address.) ToolCalls go to
// spare (the entry's own room, see entryAlloc) when they fit in it.
func compact(out, r *middleware.Response, spare []middleware.ToolCall) {
	*out = *r
	m := &out.Message
	if r.Message.Parts != nil {
		m.Parts = make([]middleware.Part, len(r.Message.Parts))
		copy(m.Parts, r.Message.Parts)
		for i := range m.Parts {
			if p := &m.Parts[i]; p.Data != nil {
				p.Data = bytes.Clone(p.Data)
			}
		}
	}
	if r.Message.ToolCalls != nil {
		if n := len(r.Message.ToolCalls); n <= cap(spare) {
			m.ToolCalls = spare[:n:n]
		} else {
			m.ToolCalls = make([]middleware.ToolCall, n)
		}
		copy(m.ToolCalls, r.Message.ToolCalls)
	}
	if fc := r.Message.FunctionCall; fc != nil {
		c := *fc // its strings are rewritten below: not r's
		m.FunctionCall = &c
	}
	var b strings.Builder
	b.Grow(arenaLen(r))
	eachString(out, func(s *string) {
		if _, ok := constant(*s); !ok {
			b.WriteString(*s)
		}
	})
	all, off := b.String(), 0
	eachString(out, func(s *string) {
		if c, ok := constant(*s); ok {
			*s = c
			return
		}
		n := len(*s)
		*s = all[off : off+n]
		off += n
	})
}

// sizeClasses are the Go allocator's size classes up to 32 KiB
// (runtime/sizeclasses.go); larger objects take whole 8 KiB pages.
var sizeClasses = [...]int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
	352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072,
	3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384,
	18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// scanAllocSize returns the heap memory an allocation of n bytes of a
// type with pointers takes: past 512 bytes, the allocator puts an 8-byte
// header before such an object (runtime/malloc.go, mallocgcSmallScanHeader).
func scanAllocSize(n int) int {
	if n > 512 {
		n += 8
	}
	return allocSize(n)
}

// allocSize returns the heap memory an allocation of n bytes takes: the
// smallest size class of at least n bytes, read from a table as the
// runtime does (size_to_class8, size_to_class128), not searched for.
func allocSize(n int) int {
	switch {
	case n <= 0:
		return 0
	case n <= smallSizeMax:
		return int(classBy8[(n+7)>>3])
	case n <= sizeClasses[len(sizeClasses)-1]:
		return int(classBy128[(n-smallSizeMax+127)>>7])
	}
	const page = 8 << 10
	return (n + page - 1) / page * page
}

// classBy8[(n+7)/8] is the size class of n bytes up to smallSizeMax;
// classBy128[(n-smallSizeMax+127)/128] of more, up to 32 KiB. Every size
// class above smallSizeMax is a multiple of 128 bytes, and every one up
// to it of 8: all n of one index have the same class.
const smallSizeMax = 1024

var classBy8, classBy128 = func() (by8 [smallSizeMax/8 + 1]uint16, by128 [(32768-smallSizeMax)/128 + 1]uint16) {
	class := func(n int) uint16 {
		i, _ := slices.BinarySearch(sizeClasses[:], n)
		return uint16(sizeClasses[i])
	}
	for i := 1; i < len(by8); i++ {
		by8[i] = class(8 * i)
	}
	for i := 1; i < len(by128); i++ {
		by128[i] = class(smallSizeMax + 128*i)
	}
	return by8, by128
}()

type decoder struct {
	b   []byte
	bad bool
	// alias: strings point into b (immutable bytes that outlive them)
	// instead of being copied. Byte slices are always copied.
	alias bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.bad = true
		d.b = nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) str() string {
	b := d.take(d.uvarint())
	if d.alias && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	return append([]byte{}, d.take(n-1)...)
}

func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every element takes at least one byte
		d.bad = true
		d.b = nil
		return 0
	}
	return int(n)
}
