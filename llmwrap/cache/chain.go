package cache

import (
	"math/bits"
	"sync"
	"weak"
)

// chainNode is the last value of a chain: a sequence of values kept as a
// list from its last value back to its first. Chains whose first values
// are equal share the nodes of those values (chainTable), so that the
// entries of an agent's successive turns, whose requests resend the same
// conversation with a message more, each hold one pointer to their chain
// and a node or two of their own, instead of a pointer per message: the
// garbage collector, which scans every pointer of every live entry at
// every cycle, then scans each shared message's pointer once, not once
// per entry (with the default 10,000 entries of 50-message conversations,
// half a million pointers a cycle). Nodes are never modified.
type chainNode[T comparable] struct {
	prev *chainNode[T]
	v    T
	n    int // the number of values up to and including this one
}

// length returns the number of values of the chain c ends (0 for nil).
func (c *chainNode[T]) length() int {
	if c == nil {
		return 0
	}
	return c.n
}

// appendValues appends the values of the chain c ends to dst, first to
// last.
func (c *chainNode[T]) appendValues(dst []T) []T {
	n := c.length()
	start := len(dst)
	for range n {
		var zero T
		dst = append(dst, zero)
	}
	for nd := c; nd != nil; nd = nd.prev {
		dst[start+nd.n-1] = nd.v
	}
	return dst
}

// chainTable finds the nodes a new chain can share: a table from the
// hash of a chain's values, first to last, to weak pointers to chains'
// nodes, in buckets of chainWays slots (the nodes of one chain of a few
// hundred values almost never take all the slots of a bucket from each
// other). A node found is shared only when its value and its previous node
// (already shared, hence its whole prefix) are those of the new chain, so
// a collision of hashes or a slot taken by another chain costs a node,
// never a wrong value. The weak pointers keep no node alive: a node lives
// as long as the entries whose chains hold it.
type chainTable[T comparable] struct {
	mu      sync.Mutex
	hash    func(h uint64, v T) uint64
	buckets []chainBucket[T]
	next    uint8 // the slot a full bucket gives up next, in turn
}

const chainWays = 4

type chainBucket[T comparable] [chainWays]chainSlot[T]

type chainSlot[T comparable] struct {
	h uint64
	w weak.Pointer[chainNode[T]]
}

// newChainTable returns a table of slots slots (a power of two, at least
// chainWays), hashing a chain with hash: hash(h, v) mixes the next value v
// into the hash h of the values before it.
func newChainTable[T comparable](slots int, hash func(h uint64, v T) uint64) *chainTable[T] {
	if slots < chainWays || slots&(slots-1) != 0 {
		panic("cache: chain table size not a power of two")
	}
	return &chainTable[T]{hash: hash, buckets: make([]chainBucket[T], slots/chainWays)}
}

// chainSeed starts the hash of every chain.
const chainSeed = 0x9E3779B97F4A7C15

// make returns the last node of a chain of the n values at(0), ...,
// at(n-1), sharing the nodes of its longest prefix t knows (t nil: none);
// nil when n is 0.
func (t *chainTable[T]) make(n int, at func(int) T) *chainNode[T] {
	var cur *chainNode[T]
	if t == nil {
		for i := range n {
			cur = &chainNode[T]{prev: cur, v: at(i), n: i + 1}
		}
		return cur
	}
	mask := uint64(len(t.buckets) - 1)
	h := uint64(chainSeed)
	shared := true // every node so far is shared: look the next one up
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range n {
		v := at(i)
		h = t.hash(h, v)
		b := &t.buckets[h&mask]
		if shared {
			if nd := b.find(h, cur, v); nd != nil {
				cur = nd
				continue
			}
		}
		// A node of its own, and so are the next ones (their previous
		// node is new): a slot of the bucket now leads later chains to it.
		shared = false
		cur = &chainNode[T]{prev: cur, v: v, n: i + 1}
		s := b.slotFor(h, &t.next)
		s.h, s.w = h, weak.Make(cur)
	}
	return cur
}

// find returns the node of hash h in b whose previous node is prev and
// value v, nil if there is none.
func (b *chainBucket[T]) find(h uint64, prev *chainNode[T], v T) *chainNode[T] {
	for i := range b {
		if b[i].h == h {
			if nd := b[i].w.Value(); nd != nil && nd.prev == prev && nd.v == v {
				return nd
			}
		}
	}
	return nil
}

// slotFor returns the slot of b a new node of hash h takes: the slot of
// an older node of the same hash (a chain of the same values, which the
// new one replaces), else a free slot or one whose node is gone, else the
// slot *next picks in turn.
func (b *chainBucket[T]) slotFor(h uint64, next *uint8) *chainSlot[T] {
	free := -1
	for i := range b {
		if b[i].h == h {
			return &b[i]
		}
		if free < 0 && b[i].w.Value() == nil {
			free = i
		}
	}
	if free < 0 {
		free = int(*next % chainWays)
		*next++
	}
	return &b[free]
}

// mixHash mixes x into h (for chainTable hashes; not for hostile keys:
// a collision only costs a node).
func mixHash(h, x uint64) uint64 {
	hi, lo := bits.Mul64(h^x, 0xBF58476D1CE4E5B9)
	return hi ^ lo
}

// keepTables are the tables through which the entries a Memory store
// keeps share what their requests have in common: ropes' tails, and the
// chains of ropes' message encodings and of pieces' shared values.
type keepTables struct {
	tails *tailTable
	encs  *chainTable[*msgEnc]
	vals  *chainTable[sharedVal]
}

// chainSlots is the size of a cache's chain tables: a slot per message of
// the conversations in flight, a few times over.
const chainSlots = 4096

func newKeepTables() *keepTables {
	return &keepTables{tails: new(tailTable), encs: newEncChains(chainSlots), vals: newValChains(chainSlots)}
}

// The tables of k, nil when k is.

func (k *keepTables) tailTable() *tailTable {
	if k == nil {
		return nil
	}
	return k.tails
}

func (k *keepTables) encChains() *chainTable[*msgEnc] {
	if k == nil {
		return nil
	}
	return k.encs
}

func (k *keepTables) valChains() *chainTable[sharedVal] {
	if k == nil {
		return nil
	}
	return k.vals
}
