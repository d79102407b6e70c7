package cache

import (
	"math/bits"
	"sync"
	"unsafe"
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
// other). A node found is shared only when its value equals the new
// chain's and its previous node is the one already shared (hence its
// whole prefix is equal), so a collision of hashes or a slot taken by
// another chain costs a node, never a wrong value. The nodes a chain does
// not share are made in one allocation, which one weak pointer refers to
// for all their slots: the table keeps no node alive, a batch lives as
// long as an entry holds one of its nodes.
type chainTable[T comparable] struct {
	mu      sync.Mutex
	hash    func(h uint64, v T) uint64
	eq      func(a, b T) bool
	size    int              // the number of buckets
	buckets []chainBucket[T] // made on first use (a cache uses one of its two tables)
	next    uint8            // the slot a full bucket gives up next, in turn
}

const chainWays = 4

type chainBucket[T comparable] [chainWays]chainSlot[T]

// chainSlot is a node: the tag's low 16 bits are its index in the batch
// the weak pointer points to, the others those of the hash of its chain's
// values.
type chainSlot[T comparable] struct {
	tag   uint64
	batch weak.Pointer[chainNode[T]]
}

// maxBatch bounds the nodes of a batch (their index is 16 bits).
const maxBatch = 1 << 16

const idxMask = maxBatch - 1

// hashOf reports whether the slot's node has hash h (in the bits it keeps).
func (s *chainSlot[T]) hashOf(h uint64) bool { return s.tag&^idxMask == h&^idxMask }

// node returns the slot's node, nil if its batch is gone.
func (s *chainSlot[T]) node() *chainNode[T] {
	p := s.batch.Value()
	if p == nil {
		return nil
	}
	i := int(s.tag & idxMask)
	return &unsafe.Slice(p, i+1)[i]
}

// newChainTable returns a table of slots slots (a power of two, at least
// chainWays), hashing a chain with hash (hash(h, v) mixes the next value v
// into the hash h of the values before it) and comparing values with eq
// (nil: ==). Values that eq finds equal must hash alike.
func newChainTable[T comparable](slots int, hash func(h uint64, v T) uint64, eq func(a, b T) bool) *chainTable[T] {
	if slots < chainWays || slots&(slots-1) != 0 {
		panic("cache: chain table size not a power of two")
	}
	if eq == nil {
		eq = func(a, b T) bool { return a == b }
	}
	return &chainTable[T]{hash: hash, eq: eq, size: slots / chainWays}
}

// chainSeed starts the hash of every chain.
const chainSeed = 0x9E3779B97F4A7C15

// make returns the last node of a chain of vals, sharing the nodes of its
// longest prefix t knows (t nil: none); nil when vals is empty. A shared
// node may hold a value equal to (by t's eq), not the same as, the one in
// vals.
func (t *chainTable[T]) make(vals []T) *chainNode[T] {
	var cur *chainNode[T]
	if len(vals) == 0 {
		return nil
	}
	if t == nil {
		batch := make([]chainNode[T], len(vals))
		for i, v := range vals {
			batch[i] = chainNode[T]{prev: cur, v: v, n: i + 1}
			cur = &batch[i]
		}
		return cur
	}
	h := uint64(chainSeed)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buckets == nil {
		t.buckets = make([]chainBucket[T], t.size)
	}
	mask := uint64(len(t.buckets) - 1)
	i := 0
	for ; i < len(vals); i++ {
		h2 := t.hash(h, vals[i])
		nd := t.buckets[h2&mask].find(h2, cur, vals[i], t.eq)
		if nd == nil {
			break
		}
		cur, h = nd, h2
	}
	if i == len(vals) {
		return cur
	}
	// The nodes of their own, in batches of up to maxBatch (their
	// previous nodes are new from the first on): slots now lead later
	// chains to them.
	for i < len(vals) {
		batch := make([]chainNode[T], min(len(vals)-i, maxBatch))
		w := weak.Make(&batch[0])
		for k := range batch {
			v := vals[i]
			h = t.hash(h, v)
			i++
			batch[k] = chainNode[T]{prev: cur, v: v, n: i}
			cur = &batch[k]
			s := t.buckets[h&mask].slotFor(h, &t.next)
			s.tag, s.batch = h&^idxMask|uint64(k), w
		}
	}
	return cur
}

// find returns the node of hash h in b whose previous node is prev and
// value v (by eq), nil if there is none.
func (b *chainBucket[T]) find(h uint64, prev *chainNode[T], v T, eq func(a, b T) bool) *chainNode[T] {
	for i := range b {
		if b[i].hashOf(h) {
			if nd := b[i].node(); nd != nil && nd.prev == prev && eq(nd.v, v) {
				return nd
			}
		}
	}
	return nil
}

// slotFor returns the slot of b a new node of hash h takes: the slot of
// an older node of the same hash (a chain of the same values, which the
// new one replaces), else a free slot or one whose batch is gone, else the
// slot *next picks in turn.
func (b *chainBucket[T]) slotFor(h uint64, next *uint8) *chainSlot[T] {
	free := -1
	for i := range b {
		if b[i].hashOf(h) {
			return &b[i]
		}
		if free < 0 && b[i].batch.Value() == nil {
			free = i
		}
	}
	if free < 0 {
		free = int(*next % chainWays)
		*next++
	}
	return &b[free]
}

// nodeBytes bounds the memory a chain node takes in its batch: its size
// and half as much again for the size class's rounding and the malloc
// header of the batch (a batch holds at least one node).
func nodeBytes[T comparable]() int {
	return int(unsafe.Sizeof(chainNode[T]{})) * 3 / 2
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
