package tokens

import (
	"math"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/middleware"
)

// The conversation memo.
//
// The identity table finds each old message of a request apart: two cache
// misses a message (its bucket and its entry) when many conversations are
// in flight, which is most of an incremental estimate's cost. The
// conversation table keeps, for a conversation found by the identity of
// its first two messages, the strings of its messages in order with the
// count of every prefix: a re-sent conversation is compared message by
// message against one entry, read in order, and only the messages after
// the first difference take the per-message path.
//
// An entry is immutable and shares the prefix of the entry it extends: it
// holds the messages from base on, and its parent the ones before (the
// parent's first base messages). A turn that adds a message or two costs
// one allocation; a chain deeper than maxConvDepth is copied into one
// entry. As in the identity table, an entry holds every string it
// describes (its ancestors are alive while it is), a message is used only
// after comparing each of its strings with the entry's (idEntry.matches),
// messages with binary parts end an entry, and the table is bounded by the
// bytes its entries keep alive (an entry counts its ancestors').
//
// The table keeps bound entries too (convEntry.bounds, Estimator.Bound's
// sums in place of counts, under a salted key) for conversations of which
// no count is memoised; a lookup reads one kind only.

// maxConvDepth bounds the chain of entries a lookup walks.
const maxConvDepth = 6

// minConvMessages is the fewest messages a request has for the
// conversation table: shorter ones are the identity table's.
const minConvMessages = 3

// convEntry is the memo of a conversation's first base+len(msgs) messages.
// msgs[i].n is the count of messages 0..base+i together, images aside
// (they count by the model's rule).
type convEntry struct {
	h      uint64
	parent *convEntry // holds messages 0..base-1, nil when base is 0
	base   int
	depth  int // entries in the chain above this one
	size   int64
	msgs   []idEntry
	buf    [2]idEntry
	xbuf   [idInline]string
	// bounds: msgs[i].n is Estimator.Bound's sum of messageBound of
	// messages 0..base+i (a bound entry, see boundPrefix), not their count.
	bounds bool
}

func (e *convEntry) bytesKept() int64 { return e.size }

type convTable struct {
	slotTable[convEntry, *convEntry]
	// seen holds the bound keys of conversations met (buckets of idWays
	// slots, as the table's: a full bucket forgets the key a clock points
	// at): a bound entry is kept on a conversation's second sight (see
	// boundPrefix).
	seen []atomic.Uint64
}

func newConvTable(n int, maxBytes int64) *convTable {
	t := &convTable{}
	t.init(n, maxBytes)
	t.seen = make([]atomic.Uint64, len(t.hs))
	return t
}

// metBefore reports whether h was met before (the last key met in its
// slot), marking it met. A wrong answer costs an entry, or its absence
// until the next sight, never a wrong bound.
func (t *convTable) metBefore(h uint64) bool {
	b := (h & t.mask) * idWays
	seen := t.seen[b : b+idWays : b+idWays]
	v := -1
	for i := range seen {
		switch seen[i].Load() {
		case h:
			return true
		case 0:
			if v < 0 {
				v = i
			}
		}
	}
	if v < 0 {
		v = int(t.clock.Add(1) % idWays)
	}
	seen[v].Store(h)
	return false
}

// convKey returns the conversation table's key of msgs (at least two):
// the identity hashes of its first two messages; false when either has
// none.
func convKey(variant uint64, msgs []middleware.Message) (uint64, bool) {
	h0, ok0 := identityHash(variant, &msgs[0])
	h1, ok1 := identityHash(variant, &msgs[1])
	h := (h0 ^ 0x2545F4914F6CDD1D) * 0x9E3779B97F4A7C15
	h = (h ^ h>>31 ^ h1) * 0xBF58476D1CE4E5B9
	return h ^ h>>29, ok0 && ok1
}

// chain returns e's chain, root first, in dst.
func (e *convEntry) chain(dst *[maxConvDepth + 1]*convEntry) []*convEntry {
	d := e.depth
	for x := e; x != nil; x = x.parent {
		dst[d] = x
		d--
	}
	return dst[:e.depth+1]
}

// match returns how many of msgs, from the first, e holds, and the count
// of those (0 when none).
func (e *convEntry) match(variant uint64, msgs []middleware.Message) (int, int64) {
	var buf [maxConvDepth + 1]*convEntry
	ch := e.chain(&buf)
	p, cum := 0, int64(0)
	for d, x := range ch {
		end := x.base + len(x.msgs)
		if d+1 < len(ch) {
			end = ch[d+1].base // the child holds the rest
		}
		for ; p < end; p++ {
			if p == len(msgs) || !x.msgs[p-x.base].matches(variant, &msgs[p]) {
				return p, cum
			}
			cum = x.msgs[p-x.base].n
		}
	}
	return p, cum
}

// lookup returns the entry of the bucket of h that holds the most of msgs
// from the first, how many it holds and their count.
func (t *convTable) lookup(h, variant uint64, msgs []middleware.Message) (*convEntry, int, int64) {
	return t.find(h, variant, msgs, false)
}

// find is lookup among the count entries (bounds false) or the bound
// entries (bounds true): the one kind is never read as the other.
func (t *convTable) find(h, variant uint64, msgs []middleware.Message, bounds bool) (*convEntry, int, int64) {
	var best *convEntry
	p, cum := 0, int64(0)
	b := t.bucket(h)
	for i := range b.hs {
		if b.hs[i].Load() != h {
			continue
		}
		if e := b.es[i].Load(); e != nil && e.h == h && e.bounds == bounds {
			if q, c := e.match(variant, msgs); q > p {
				best, p, cum = e, q, c
			}
		}
	}
	return best, p, cum
}

// owner returns the entry of e's chain that holds message p-1 (p > 0):
// the parent of an entry extending e's first p messages.
func (e *convEntry) owner(p int) *convEntry {
	for e != nil && e.base >= p {
		e = e.parent
	}
	return e
}

// newEntry returns an entry for messages p..q-1 of msgs (q > p) after
// the first p messages of prev's chain (p > 0), or of all q messages when
// prev is nil or its chain is deep, with room for their counts; nil when
// a message has too many parts. The caller sets the counts (msgs[i].n)
// and stores it.
func newConvEntry(h, variant uint64, prev *convEntry, p, q int, msgs []middleware.Message) *convEntry {
	parent := prev
	if parent != nil {
		parent = parent.owner(p)
	}
	if parent == nil || parent.depth+1 > maxConvDepth {
		parent, p = nil, 0 // a root of all q: the counts of 0..p-1 are copied by the caller
	}
	k := 0
	for i := p; i < q; i++ {
		if len(msgs[i].Parts) > math.MaxInt32/8 || len(msgs[i].ToolCalls) > math.MaxInt32/8 {
			return nil
		}
		k += extraLen(&msgs[i])
	}
	e := &convEntry{h: h, parent: parent, base: p}
	var x []string
	if q-p <= len(e.buf) && k <= len(e.xbuf) {
		e.msgs, x = e.buf[:q-p], e.xbuf[:k]
	} else {
		e.msgs, x = make([]idEntry, q-p), make([]string, k)
	}
	if parent != nil {
		e.depth, e.size = parent.depth+1, parent.size
	}
	off := 0
	for i := range e.msgs {
		m := &msgs[p+i]
		n := extraLen(m)
		e.msgs[i].fill(variant, m, x[off:off:off+n])
		off += n
		e.size += e.msgs[i].size
	}
	return e
}

// copyCounts sets the counts of dst, messages 0..len(dst)-1, from e's
// chain, which holds them.
func (e *convEntry) copyCounts(dst []idEntry) {
	var buf [maxConvDepth + 1]*convEntry
	ch := e.chain(&buf)
	p := 0
	for d, x := range ch {
		end := x.base + len(x.msgs)
		if d+1 < len(ch) {
			end = ch[d+1].base
		}
		for ; p < end && p < len(dst); p++ {
			dst[p].n = x.msgs[p-x.base].n
		}
	}
}
