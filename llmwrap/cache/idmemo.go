package cache

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"unsafe"
	"weak"

	"github.com/tokenwise/tokenwise/internal/strid"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenwise/tokenwise/middleware"
)

// The per-message memo of the key.
//
// An agent resends the same messages on every call, and the adapters give
// a resent message as the very same strings (the OpenAI adapter's memo of
// decoded messages; a Go caller's own message values): same data pointers,
// same lengths. The cache keys a request by the hashes of its messages'
// encodings (see [cacher.keyOf]) and finds the encoding and hash of a
// message it has seen by the identity of its strings, which costs a few
// nanoseconds whatever their size: a resent message is neither encoded
// nor hashed again.
//
// This is sound because Go strings are immutable and an entry holds the
// strings it describes: while it exists, the memory they point to cannot
// be freed and reused, so a string with the same data pointer and length
// has the same bytes (the technique of package tokens' identity memo). An
// entry is used only after comparing every string of the message with it
// (the 64-bit identity hash just picks the slot). Byte slices are mutable,
// so a message with binary parts (Part.Data not nil) never takes this
// path. (Code that builds strings over mutable memory with unsafe, against
// the language's rules, must not pass them to the cache.)
//
// The memo refers to the encodings weakly (weak.Pointer): they belong to
// the entries of the store (and to flights), whose byte bound counts them;
// the memo finds an encoding only while an entry holds it, and keeps
// nothing of its own alive but its entries' strings, which are the
// caller's. The table is two-way (two neighbouring slots per hash), lock-free (an atomic pointer per
// slot to an entry immutable but for its used mark) and bounded by slots and by the bytes of the
// strings it keeps alive (a message over a sixteenth of the bound is
// never kept, and a full table forgets entries in slot order; an entry
// whose encoding is gone is forgotten when found; a message whose two
// slots hold entries found since it last asked for room is not kept:
// see room). A message not found is
// encoded and hashed, as every message was before.
//
// The entries of one request's messages are made in one array, in the
// request's order, each linked to the next: a resent request's lookups
// after the first follow the link from the entry found before (msgMemo.find)
// and read the slot table (a random read of 256 KB, a miss of the
// processor's cache) only when it does not lead to the message's entry.

const (
	memoSlots    = 1 << 15
	memoMaxBytes = 16 << 20
	// memoMinBytes: a message whose encoding may be shorter is encoded
	// and hashed on every call, which costs about what a lookup does, and
	// takes no room in the memo.
	memoMinBytes = 256
	// memoEntryOverhead is what an entry costs besides its strings, for
	// the bound.
	memoEntryOverhead = 160
)

// msgEnc is the canonical encoding of one message, tagMessage first (the
// bytes appendCanonical appends for it), and its xxHash. It is immutable
// and shared: by every entry and flight of a request with that message.
// The memo refers to it weakly: an encoding lives as long as an entry of
// the store (or a flight) holds it, and no longer (the store's byte bound
// counts it in the entries).
type msgEnc struct {
	b   []byte
	h   uint64
	tmp bool // in a keyState's scratch (encScratch): keep copies it
	// A memo batch's encoding: the batch's weak pointer, this encoding's
	// index in it and the batch's length, so that a memo entry can be
	// pointed at it (msgMemo.adopt).
	w      weak.Pointer[msgEnc]
	bi, bn int32
}

// messageLenBound is at least the length of m's encoding (tagMessage
// included): its strings and bytes, each with a length of at most 5 bytes
// (a uvarint under 2^35), and the counts of parts and tool calls.
func messageLenBound(m *middleware.Message) int {
	n := 1 + 5*5 + 2*5 + len(m.Role) + len(m.Content) + len(m.Name) + len(m.ToolCallID) + len(m.Reasoning)
	if fc := m.FunctionCall; fc != nil || m.Refusal != "" {
		n += 2 + 4*5 + len(m.Refusal)
		if fc != nil {
			n += len(fc.ID) + len(fc.Name) + len(fc.Arguments)
		}
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		n += 6*5 + len(p.Type) + len(p.Text) + len(p.URL) + len(p.Detail) + len(p.MIMEType) + len(p.Data)
	}
	for i := range m.ToolCalls {
		c := &m.ToolCalls[i]
		n += 3*5 + len(c.ID) + len(c.Name) + len(c.Arguments)
	}
	return n
}

// idEntry is a memo entry. The fields a lookup that finds it reads
// come first, in the order it reads them, and extra and size (read when
// a message has parts or tool calls, and when the entry is put or
// forgotten) last: a lookup touches as few of the processor's cache
// lines as may be.
type idEntry struct {
	ih                    uint64
	content, callID, role string
	// enc is the message's encoding: element i of the batch of n
	// encodings made for the request the message was new in (one weak
	// pointer per batch: see encodings).
	batch weak.Pointer[msgEnc]
	// next is the entry of the message memoized after this one for the
	// same request (an element of the same array: it keeps nothing alive
	// that this one does not), set once that entry is put; gone is set
	// (atomically) when this entry leaves its slot. A lookup that found
	// this entry for a message tries next for the request's next message
	// before the slots (see find).
	next atomic.Pointer[idEntry]
	i, n int32
	// used is set (atomically) when a lookup finds the entry, cleared
	// when a message of the same slots finds no room (see room).
	used            uint32
	gone            uint32
	parts, calls    int32
	name, reasoning string
	extra           []string // per part Type, Text, URL, Detail, MIMEType; per tool call ID, Name, Arguments
	size            int64
}

type msgMemo struct {
	min   int // messages of a smaller length bound are not memoized
	slots []atomic.Pointer[idEntry]
	// seen holds the identity hashes of messages met once (direct-mapped,
	// by the hash's low bits): a message is memoized the second time it
	// is met, so that a request whose messages are never sent again (a
	// one-shot call, a conversation's first turn) costs what it cost
	// without the memo: no batch, no weak pointer, no strings kept alive.
	// A stale or colliding hash only memoizes a message early, which is
	// always sound (an entry is used only after idEntry.matches).
	seen   []atomic.Uint64
	mask   uint64
	max    int64
	bytes  atomic.Int64
	cursor atomic.Uint64
}

func newMsgMemo(slots int, maxBytes int64, minBytes int) *msgMemo {
	return &msgMemo{min: minBytes, slots: make([]atomic.Pointer[idEntry], slots), seen: make([]atomic.Uint64, slots), mask: uint64(slots - 1), max: maxBytes}
}

// identityHash returns the identity hash of m, or false when m has
// binary parts (mutable bytes: only their content identifies them). It
// mixes only the strings that tell most messages apart (the content, the
// tool call id, the first tool call's id and arguments, the first part's text and URL)
// with the counts of
// parts and tool calls: it picks the slot, and an entry is used only
// after comparing every string (idEntry.matches).
func identityHash(m *middleware.Message) (uint64, bool) {
	if m.FunctionCall != nil || m.Refusal != "" {
		return 0, false // rare (a legacy call, a refusal): encoded anew
	}
	for i := range m.Parts {
		if m.Parts[i].Data != nil {
			return 0, false
		}
	}
	h := uint64(len(m.Parts))<<32 + uint64(len(m.ToolCalls))
	h = strid.Mix(h, m.Content)
	if m.ToolCallID != "" {
		h = strid.Mix(h, m.ToolCallID)
	}
	if len(m.ToolCalls) > 0 {
		h = strid.Mix(strid.Mix(h, m.ToolCalls[0].ID), m.ToolCalls[0].Arguments)
	}
	if len(m.Parts) > 0 {
		h = strid.Mix(strid.Mix(h, m.Parts[0].Text), m.Parts[0].URL)
	}
	return h, true
}

func (e *idEntry) matches(m *middleware.Message) bool {
	if m.FunctionCall != nil || m.Refusal != "" {
		return false // never memoized (identityHash)
	}
	if !strid.Same(e.content, m.Content) || !strid.Same(e.callID, m.ToolCallID) || !strid.Same(e.role, string(m.Role)) ||
		int(e.parts) != len(m.Parts) || int(e.calls) != len(m.ToolCalls) || !strid.Same(e.name, m.Name) || !strid.Same(e.reasoning, m.Reasoning) {
		return false
	}
	x := e.extra
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.Data != nil || !strid.Same(x[0], p.Type) || !strid.Same(x[1], p.Text) || !strid.Same(x[2], p.URL) || !strid.Same(x[3], p.Detail) || !strid.Same(x[4], p.MIMEType) {
			return false
		}
		x = x[5:]
	}
	for i := range m.ToolCalls {
		c := &m.ToolCalls[i]
		if !strid.Same(x[0], c.ID) || !strid.Same(x[1], c.Name) || !strid.Same(x[2], c.Arguments) {
			return false
		}
		x = x[3:]
	}
	return true
}

// get returns the encoding of m, whose identity hash is ih, and its
// entry, or nil when the memo does not have it (or no longer: no entry
// holds it). An entry is in one of two neighbouring slots.
func (t *msgMemo) get(ih uint64, m *middleware.Message) (*msgEnc, *idEntry) {
	i := ih & t.mask
	for range 2 {
		e := t.slots[i].Load()
		if e != nil && e.ih == ih && e.matches(m) {
			if enc := e.enc(); enc != nil {
				return enc, e
			}
			// No entry holds the encoding any more: forget the strings too.
			if t.slots[i].CompareAndSwap(e, nil) {
				atomic.StoreUint32(&e.gone, 1)
				t.bytes.Add(-e.size)
			}
			return nil, nil
		}
		i ^= 1
	}
	return nil, nil
}

// enc returns e's encoding, marking e used, or nil when no entry holds
// the encoding any more.
func (e *idEntry) enc() *msgEnc {
	p := e.batch.Value()
	if p == nil {
		return nil
	}
	if atomic.LoadUint32(&e.used) == 0 {
		atomic.StoreUint32(&e.used, 1)
	}
	return &unsafe.Slice(p, int(e.n))[e.i]
}

// find is get, trying first the entry after prev (the entry found for
// the request's previous memoized message, or nil): a resent request
// finds its messages' entries in the order they were put, one after the
// other in one array, which costs no read of the slot table (an array of
// 256 KB read at random: a miss of the processor's cache for every
// message). The entry found so is one get would find: it is in its slot
// (not gone) and matches m, compared string by string as get compares.
func (t *msgMemo) find(prev *idEntry, ih uint64, m *middleware.Message) (*msgEnc, *idEntry) {
	if prev != nil {
		if e := prev.next.Load(); e != nil && e.ih == ih && atomic.LoadUint32(&e.gone) == 0 && e.matches(m) {
			if enc := e.enc(); enc != nil {
				return enc, e
			}
		}
	}
	return t.get(ih, m)
}

// metBefore reports whether the message of identity hash ih was met
// before; if not, it notes ih. A slot that holds another message's hash
// is taken at the toss of a coin only: two messages whose hashes share a
// slot, met in turn (two conversations resending their messages), would
// otherwise each overwrite the other's hash, and neither would ever be
// memoized.
func (t *msgMemo) metBefore(ih uint64) bool {
	s := &t.seen[ih&t.mask]
	switch old := s.Load(); {
	case old == ih:
		return true
	case old == 0 || rand.Uint32()&1 == 0:
		s.Store(ih)
	}
	return false
}

// forget clears the note of ih, a message memoized now, from the table
// of messages met once: a note left there would make the next message
// whose hash shares its slot win the slot at a coin's toss only, and
// stay unmemoized at its second sight half the time.
func (t *msgMemo) forget(ih uint64) {
	t.seen[ih&t.mask].CompareAndSwap(ih, 0)
}

// room reports whether an entry of identity hash ih may be put: one of
// its two slots is empty or holds an entry no lookup found since room
// last passed it (a second chance: room clears the used mark of the
// entries it finds). Three messages met in turn whose hashes pick the
// same two slots would otherwise each push another out on every call,
// each time encoded and memoized anew; now two keep the slots while they
// are used, and the third is encoded in the request's scratch.
func (t *msgMemo) room(ih uint64) bool {
	i := ih & t.mask
	a, b := t.slots[i].Load(), t.slots[i^1].Load()
	if a == nil || b == nil {
		return true
	}
	free := false
	for _, e := range [2]*idEntry{a, b} {
		if atomic.LoadUint32(&e.used) == 0 {
			free = true
		} else {
			atomic.StoreUint32(&e.used, 0)
		}
	}
	return free
}

// put remembers e, the memo entry of m (its encoding set), whose identity
// hash is e.ih; extra is where to keep m's part and tool call strings.
func (t *msgMemo) put(e *idEntry, m *middleware.Message, extra []string) []string {
	e.role, e.content, e.name, e.callID, e.reasoning = string(m.Role), m.Content, m.Name, m.ToolCallID, m.Reasoning
	// int32: an entry of more parts or tool calls is too large to keep
	// (below), and is never compared.
	e.parts, e.calls = int32(len(m.Parts)), int32(len(m.ToolCalls))
	e.size = memoEntryOverhead + int64(len(e.role)+len(e.content)+len(e.name)+len(e.callID)+len(e.reasoning))
	start := len(extra)
	for i := range m.Parts {
		p := &m.Parts[i]
		extra = append(extra, p.Type, p.Text, p.URL, p.Detail, p.MIMEType)
	}
	for i := range m.ToolCalls {
		c := &m.ToolCalls[i]
		extra = append(extra, c.ID, c.Name, c.Arguments)
	}
	e.extra = extra[start:len(extra):len(extra)]
	for _, s := range e.extra {
		e.size += int64(len(s)) + 16
	}
	if e.size > t.max/16 {
		e.gone = 1   // never in a slot (not yet published: see encodings)
		return extra // too large to keep alive: encoded on every call instead
	}
	// Of the two slots, an empty one, else one no lookup found since
	// room last passed it, else the one the hash picks.
	i := e.ih & t.mask
	if a := t.slots[i].Load(); a != nil {
		b := t.slots[i^1].Load()
		if b == nil || (atomic.LoadUint32(&a.used) != 0 && atomic.LoadUint32(&b.used) == 0) ||
			(atomic.LoadUint32(&a.used) == atomic.LoadUint32(&b.used) && e.ih>>63 != 0) {
			i ^= 1
		}
	}
	size := e.size
	if old := t.slots[i].Swap(e); old != nil {
		atomic.StoreUint32(&old.gone, 1)
		size -= old.size
	}
	if t.bytes.Add(size) > t.max {
		t.evict(i)
	}
	return extra
}

// evict forgets entries in slot order, but the one in slot keep (just
// added), until the table keeps at most three quarters of its byte bound
// alive.
func (t *msgMemo) evict(keep uint64) {
	for range len(t.slots) {
		if t.bytes.Load() <= t.max/4*3 {
			return
		}
		i := t.cursor.Add(1) & t.mask
		if i == keep {
			continue
		}
		if old := t.slots[i].Swap(nil); old != nil {
			atomic.StoreUint32(&old.gone, 1)
			t.bytes.Add(-old.size)
		}
	}
}

// encScratch is a keyState's memory for the encodings of the messages the
// memo does not keep (short ones, ones with binary parts, every one when
// there is no memo): valid until the state is reused; keep copies them.
type encScratch struct {
	arena []byte
	encs  []msgEnc
}

// encodings returns encs set to the encoding of each message of msgs:
// the memo's for a message it has (by identity; a short message is not
// looked up: see memoMinBytes); a new one, in one batch (one buffer, one
// array) which the memo then refers to, for a message the memo may keep;
// sc's for the others. A nil memo keeps nothing.
//
// ihs is scratch space for the messages' identity hashes (returned for
// reuse).
func (t *msgMemo) encodings(encs []*msgEnc, ihs []uint64, sc *encScratch, msgs []middleware.Message) ([]*msgEnc, []uint64) {
	encs, ihs = encs[:0], ihs[:0]
	size, owned, memoizable, extras := 0, 0, 0, 0
	tmpSize, tmp := 0, 0
	var prev *idEntry // the entry found for the last message looked up
	for i := range msgs {
		m := &msgs[i]
		var e *msgEnc
		ih := uint64(0) // 0: not memoizable
		bound := messageLenBound(m)
		if t != nil && bound >= t.min {
			if h, ok := identityHash(m); ok {
				ih = max(h, 1)
				if e, prev = t.find(prev, h, m); e == nil {
					if !t.metBefore(ih) || !t.room(ih) {
						ih = 0 // met once: memoized if met again
					} else {
						t.forget(ih)
						memoizable++
						extras += 5*len(m.Parts) + 3*len(m.ToolCalls)
						size += bound
						owned++
					}
				}
			}
		}
		if e == nil && ih == 0 {
			tmpSize += bound
			tmp++
		}
		ihs = append(ihs, ih)
		encs = append(encs, e)
	}
	if tmp > 0 {
		sc.arena = slices.Grow(sc.arena[:0], tmpSize)
		sc.encs = slices.Grow(sc.encs[:0], tmp) // no append below moves it
	}
	var arena []byte
	var batch []msgEnc
	var ids []idEntry
	var extra []string
	var w weak.Pointer[msgEnc]
	if owned > 0 {
		arena = make([]byte, 0, size)
		// At least 4: the runtime keeps the weak pointers of small objects
		// in a list per span, fewer objects a span a shorter list.
		batch = make([]msgEnc, max(owned, 4))
		ids = make([]idEntry, 0, memoizable)
		if extras > 0 {
			extra = make([]string, 0, extras)
		}
		w = weak.Make(&batch[0])
	}
	j := 0
	for i := range msgs {
		if encs[i] != nil {
			continue
		}
		m := &msgs[i]
		if ihs[i] == 0 {
			start := len(sc.arena)
			sc.arena = appendMessage(append(sc.arena, tagMessage), m)
			b := sc.arena[start:len(sc.arena):len(sc.arena)]
			sc.encs = append(sc.encs, msgEnc{b: b, h: xxhash.Sum64(b), tmp: true})
			encs[i] = &sc.encs[len(sc.encs)-1]
			continue
		}
		start := len(arena)
		arena = appendMessage(append(arena, tagMessage), m)
		b := arena[start:len(arena):len(arena)]
		batch[j] = msgEnc{b: b, h: xxhash.Sum64(b), w: w, bi: int32(j), bn: int32(len(batch))}
		encs[i] = &batch[j]
		ids = append(ids, idEntry{ih: ihs[i], batch: w, i: int32(j), n: int32(len(batch))})
		extra = t.put(&ids[len(ids)-1], m, extra)
		if k := len(ids) - 1; k > 0 {
			ids[k-1].next.Store(&ids[k]) // ids never moves (its capacity was counted)
		}
		j++
	}
	return encs, ihs
}

// adopt points the memo's entries of st's messages (st a kindCore state
// the memo keyed) at the encodings r, the rope kept of st, holds in their
// stead: a rope shares the chain nodes of an earlier request with equal
// messages (chainTable.make), whose encodings have equal bytes but are
// other values when the messages are other strings (another conversation
// with the same system prompt, a request built anew). Pointed at the
// shared encoding, the memo gives it for these strings from then on: the
// next chain lookup compares the pointers instead of the bytes, and the
// request's own encodings, which no entry holds, are not made again when
// the collector has taken them. An entry is replaced (entries are
// immutable) only while it still refers to the encoding st has; the
// encodings are equal bytes, so what the memo gives is unchanged.
func (t *msgMemo) adopt(st *keyState, r *canonRope) {
	if t == nil || r == nil || st.kind != kindCore || len(st.ihs) != len(st.msgs) {
		return
	}
	n := 0
	adoptable(st, r, func(int, *msgEnc, *msgEnc) { n++ })
	if n == 0 {
		return
	}
	// The new entries, in one array as encodings puts them (the array
	// lives while one of them is in the table), filled from the end: in
	// the request's order in memory, as find walks them, each linked to
	// the one of the request's next message.
	nes := make([]idEntry, n)
	var next *idEntry
	adoptable(st, r, func(i int, m, to *msgEnc) {
		if ne := &nes[n-1]; t.repoint(st.ihs[i], m, to, ne, next) {
			next = ne
			n--
		} // else not published: the element is reused
	})
}

// adoptable calls f, from the last message of st to the first, for each
// message whose memo entry adopt points at the encoding r holds in its
// stead: m, the encoding st has, and to, r's.
func adoptable(st *keyState, r *canonRope, f func(i int, m, to *msgEnc)) {
	nd := r.msgs
	for i := len(st.msgs) - 1; i >= 0 && nd != nil; i-- {
		m := st.msgs[i]
		if m.tmp {
			continue // copied into the rope, not in its chain
		}
		to := nd.v
		nd = nd.prev
		// The chain holds m itself or an encoding its table found equal
		// (chainTable.find: equal hash and bytes), so to's bytes are m's.
		if to == m || st.ihs[i] == 0 || m.w == (weak.Pointer[msgEnc]{}) || to.w == (weak.Pointer[msgEnc]{}) || to.h != m.h {
			continue
		}
		f(i, m, to)
	}
}

// repoint replaces the entry of identity hash ih that refers to the
// encoding old by ne, set to refer to to (equal bytes) and linked to
// next, if there is one; it reports whether it did.
func (t *msgMemo) repoint(ih uint64, old, to *msgEnc, ne, next *idEntry) bool {
	i := ih & t.mask
	for range 2 {
		e := t.slots[i].Load()
		if e != nil && e.ih == ih && e.batch == old.w && e.i == old.bi {
			*ne = idEntry{ih: e.ih, role: e.role, content: e.content, name: e.name, callID: e.callID, reasoning: e.reasoning,
				extra: e.extra, parts: e.parts, calls: e.calls, batch: to.w, i: to.bi, n: to.bn, size: e.size, used: atomic.LoadUint32(&e.used)}
			ne.next.Store(next)
			if t.slots[i].CompareAndSwap(e, ne) { // the same strings: the byte count is unchanged
				atomic.StoreUint32(&e.gone, 1)
				return true
			}
			return false
		}
		i ^= 1
	}
	return false
}
