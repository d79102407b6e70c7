package tokens

import (
	"math"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/internal/strid"

	"github.com/tokenwise/tokenwise/middleware"
)

// The identity fast path.
//
// An agent re-sends the same message values on every call: the strings of
// an old message are the very strings of the previous call (same data
// pointer, same length). Hashing their bytes again (about 10 µs per 100 KB)
// is the whole cost of an incremental estimate, so a message is first
// looked up by the identity of its strings: their data pointers and
// lengths, which costs a few nanoseconds whatever their size.
//
// This is sound because Go strings are immutable and the entry holds the
// strings it describes: while an entry exists, the memory its strings point
// to cannot be freed and reused, so a string with the same data pointer and
// length has the same bytes. An entry is only ever used after comparing
// every string of the message with it (the 64-bit identity hash just picks
// the slot). Byte slices are mutable, so a message with binary parts
// (Part.Data) never takes this path. (Code that builds strings over mutable
// memory with unsafe, against the language's rules, must not pass them to
// the estimator, or must use WithCacheSize(0).)
//
// The table is 4-way set-associative and lock-free: a bucket is one cache
// line of four slots, each the identity hash of its entry beside an atomic
// pointer to the entry (immutable), so a lookup compares four hashes in one
// line and reads only the entry whose hash matches. An entry is one
// allocation (the strings of its parts and tool calls inline for up to two
// tool calls or one part). The table is bounded twice: by slots (four per
// memoised count) and by the bytes of the strings it keeps alive
// (half of maxIdentityBytes; messages over a sixteenth of that are never kept, and
// a full table forgets entries in slot order). A full bucket gives up the
// slot a shared clock points at. A miss falls back to the memo keyed by a
// hash of the content, so forgetting costs one hash. A message gets an
// entry on its second sight (a content memo hit), not its first: most
// messages seen once are never sent again (a one-shot call's question, a
// request whose last turn is new every time), and their entries would
// only cost an allocation and push live entries out of their buckets.

// maxIdentityBytes bounds the string bytes the identity table and the
// conversation table (conv.go) keep alive together: half each.
const maxIdentityBytes = 64 << 20

// entryOverhead is what an entry costs besides its strings, for the bound.
const entryOverhead = 160

// idEntry is an identity memo entry; its first 64 bytes hold what every
// lookup compares.
type idEntry struct {
	h, variant   uint64
	n            int64
	parts, calls int32
	// legacy: the message has a legacy function call or a refusal, which
	// the entry does not hold: it matches no message.
	legacy       bool
	role         string
	content      string
	name, callID string
	extra        []string // per part Type, Text, Detail, URL; per tool call Name, Arguments
	size         int64
}

// idEntryInline is an entry with room for up to idInline extra strings in
// the same allocation.
type idEntryInline struct {
	idEntry
	buf [idInline]string
}

const idInline = 4

// idWays is the number of slots of a bucket.
const idWays = 4

// slotBucket is the slots of one bucket of a slotTable: the identity
// hashes of their entries, and atomic pointers to the entries (immutable
// once stored). The hashes are an array apart, without pointers, which
// the garbage collector does not read: it scans only the pointers, half
// the table's bytes, at every collection of the process.
type slotBucket[E any] struct {
	hs []atomic.Uint64
	es []atomic.Pointer[E]
}

// sizer is an entry that knows the bytes it keeps alive.
type sizer[E any] interface {
	*E
	bytesKept() int64
}

// slotTable is a lock-free table of immutable entries found by an
// identity hash: 4-way buckets of one cache line, bounded by the bytes its
// entries keep alive (see the top of this file). The identity table of
// messages and the conversation table (conv.go) are two.
type slotTable[E any, P sizer[E]] struct {
	hs     []atomic.Uint64     // the slots' hashes: buckets of idWays slots
	es     []atomic.Pointer[E] // the slots' entries, in the same order
	mask   uint64              // buckets - 1
	max    int64
	bytes  atomic.Int64
	cursor atomic.Uint64 // the next slot evict forgets
	clock  atomic.Uint64 // picks the slot a full bucket gives up
}

// init sizes t for at least n slots (a power of two, at least 64).
func (t *slotTable[E, P]) init(n int, maxBytes int64) {
	size := 64
	for size < n {
		size <<= 1
	}
	t.hs, t.es = make([]atomic.Uint64, size), make([]atomic.Pointer[E], size)
	t.mask, t.max = uint64(size/idWays-1), maxBytes
}

// bucket returns the slots of the bucket of h.
func (t *slotTable[E, P]) bucket(h uint64) slotBucket[E] {
	b := (h & t.mask) * idWays
	return slotBucket[E]{t.hs[b : b+idWays : b+idWays], t.es[b : b+idWays : b+idWays]}
}

// store keeps e under h, in place of the bucket's entry of the same hash,
// else in an empty slot, else in the slot a shared clock points at; an
// entry keeping over a sixteenth of the bound alive is not kept.
func (t *slotTable[E, P]) store(h uint64, e P) {
	size := e.bytesKept()
	if size > t.max/16 {
		return // too large to keep alive: recomputed on every call instead
	}
	b := t.bucket(h)
	v := -1
	for i := range b.hs {
		if b.hs[i].Load() == h {
			v = i // a stale entry of the same identity hash
			break
		}
		if v < 0 && b.es[i].Load() == nil {
			v = i
		}
	}
	if v < 0 {
		v = int(t.clock.Add(1) % idWays)
	}
	if old := P(b.es[v].Swap((*E)(e))); old != nil {
		size -= old.bytesKept()
	}
	b.hs[v].Store(h)
	if t.bytes.Add(size) > t.max {
		t.evict(&b.es[v])
	}
}

// evict forgets entries in slot order, but the one in slot keep (just
// added), until the table keeps at most three quarters of its byte bound
// alive.
func (t *slotTable[E, P]) evict(keep *atomic.Pointer[E]) {
	mask := uint64(len(t.es) - 1)
	for range len(t.es) {
		if t.bytes.Load() <= t.max/4*3 {
			return
		}
		s := &t.es[t.cursor.Add(1)&mask]
		if s == keep {
			continue
		}
		if old := P(s.Swap(nil)); old != nil {
			t.bytes.Add(-old.bytesKept())
		}
	}
}

// idTable is the identity table of messages.
type idTable struct {
	slotTable[idEntry, *idEntry]
}

func newIDTable(n int, maxBytes int64) *idTable {
	t := &idTable{}
	t.init(n, maxBytes)
	return t
}

func (e *idEntry) bytesKept() int64 { return e.size }

// variantOf folds what a count depends on besides the message.
func variantOf(enc string, legacy bool) uint64 {
	var v uint64
	switch enc {
	case O200kBase:
		v = 1
	case Cl100kBase:
		v = 2
	}
	if legacy {
		v |= 4
	}
	return v
}

// idWord is s's identity (data pointer and length) times the odd constant
// k: the fields of a message go through independent multiplications, which
// the CPU runs side by side, instead of one chain of mixes.
func idWord(s string, k uint64) uint64 {
	return (strid.Ptr(s) + uint64(len(s))*0x9E3779B97F4A7C15) * k
}

// identityHash returns the identity hash of m's counted strings, or false
// when m has binary parts (mutable bytes: only their content identifies
// them) or a legacy function call or refusal (rare: not worth an entry's
// room for them).
func identityHash(variant uint64, m *middleware.Message) (uint64, bool) {
	if m.FunctionCall != nil || m.Refusal != "" {
		return 0, false // rare (legacy calls, refusals): counted by content
	}
	h := variant*0x94D049BB133111EB + uint64(len(m.Parts))<<32 + uint64(len(m.ToolCalls))
	h ^= idWord(string(m.Role), 0xBF58476D1CE4E5B9) ^ idWord(m.Content, 0xD6E8FEB86659FD93) ^
		idWord(m.Name, 0xA0761D6478BD642F) ^ idWord(m.ToolCallID, 0xE7037ED1A0B428DB)
	for i := range m.Parts {
		p := &m.Parts[i]
		if len(p.Data) > 0 {
			return 0, false
		}
		h = strid.Mix(strid.Mix(strid.Mix(strid.Mix(h, p.Type), p.Text), p.Detail), p.URL)
	}
	for i := range m.ToolCalls {
		h = h*0x9E3779B97F4A7C15 ^ idWord(m.ToolCalls[i].Name, 0x8EBC6AF09C88C6E3) ^ idWord(m.ToolCalls[i].Arguments, 0x589965CC75374CC3)
	}
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	return h ^ h>>32, true
}

func (e *idEntry) matches(variant uint64, m *middleware.Message) bool {
	if e.legacy || m.FunctionCall != nil || m.Refusal != "" {
		return false
	}
	if e.variant != variant || int(e.parts) != len(m.Parts) || int(e.calls) != len(m.ToolCalls) ||
		!strid.Same(e.role, string(m.Role)) || !strid.Same(e.content, m.Content) || !strid.Same(e.name, m.Name) || !strid.Same(e.callID, m.ToolCallID) {
		return false
	}
	x := e.extra
	for i := range m.Parts {
		p := &m.Parts[i]
		if len(p.Data) > 0 || !strid.Same(x[0], p.Type) || !strid.Same(x[1], p.Text) || !strid.Same(x[2], p.Detail) || !strid.Same(x[3], p.URL) {
			return false
		}
		x = x[4:]
	}
	for i := range m.ToolCalls {
		if !strid.Same(x[0], m.ToolCalls[i].Name) || !strid.Same(x[1], m.ToolCalls[i].Arguments) {
			return false
		}
		x = x[2:]
	}
	return true
}

func (t *idTable) get(h, variant uint64, m *middleware.Message) (int64, bool) {
	b := t.bucket(h)
	for i := range b.hs {
		if b.hs[i].Load() != h {
			continue
		}
		if e := b.es[i].Load(); e != nil && e.h == h && e.matches(variant, m) {
			return e.n, true
		}
	}
	return 0, false
}

// idBatch is how many messages Request looks up in the identity table
// before it compares them.
const idBatch = 32

// idCandidate is the first step of a lookup: m's identity hash (ok false
// when m has no identity, see identityHash) and the entry of its bucket
// with that hash, if any, not yet compared with m.
type idCandidate struct {
	h  uint64
	e  *idEntry
	ok bool
}

// candidate returns m's candidate; a nil table gives none.
func (t *idTable) candidate(variant uint64, m *middleware.Message) idCandidate {
	h, ok := identityHash(variant, m)
	if !ok || t == nil {
		return idCandidate{h: h, ok: ok}
	}
	b := t.bucket(h)
	for i := range b.hs {
		if b.hs[i].Load() == h {
			if e := b.es[i].Load(); e != nil {
				return idCandidate{h, e, true}
			}
		}
	}
	return idCandidate{h: h, ok: true}
}

// get finishes the lookup: the count of the candidate's entry when it is
// m's (every string compared), false otherwise.
func (c idCandidate) get(variant uint64, m *middleware.Message) (int64, bool) {
	if e := c.e; e != nil && e.h == c.h && e.matches(variant, m) {
		return e.n, true
	}
	return 0, false
}

func (t *idTable) put(h, variant uint64, m *middleware.Message, n int64) {
	if len(m.Parts) > math.MaxInt32 || len(m.ToolCalls) > math.MaxInt32 {
		return
	}
	var e *idEntry
	k := extraLen(m)
	if k > 0 && k <= idInline {
		x := &idEntryInline{}
		e = &x.idEntry
		e.fill(variant, m, x.buf[:0:k])
	} else {
		e = &idEntry{}
		e.fill(variant, m, make([]string, 0, k))
	}
	e.h, e.n = h, n
	t.store(h, e)
}

// extraLen is the number of extra strings of m's entry.
func extraLen(m *middleware.Message) int { return 4*len(m.Parts) + 2*len(m.ToolCalls) }

// fill sets e to m's strings, appending its extra strings to x (with room
// for them), and its size; not its hash and count.
func (e *idEntry) fill(variant uint64, m *middleware.Message, x []string) {
	e.variant = variant
	e.parts, e.calls = int32(len(m.Parts)), int32(len(m.ToolCalls))
	e.legacy = m.FunctionCall != nil || m.Refusal != ""
	e.role, e.content, e.name, e.callID = string(m.Role), m.Content, m.Name, m.ToolCallID
	e.size = entryOverhead + int64(len(e.role)+len(e.content)+len(e.name)+len(e.callID))
	for i := range m.Parts {
		p := &m.Parts[i]
		x = append(x, p.Type, p.Text, p.Detail, p.URL)
	}
	for i := range m.ToolCalls {
		x = append(x, m.ToolCalls[i].Name, m.ToolCalls[i].Arguments)
	}
	if len(x) > 0 {
		e.extra = x
	}
	for _, s := range e.extra {
		e.size += int64(len(s)) + 16
	}
}
