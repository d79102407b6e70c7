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
// nodes, in buckets of chainWays slots. A new chain shares the longest
// prefix of its values whose last node the table finds, its hash equal
// and its values, walked back to the first, equal to the new chain's (so
// a collision of hashes costs a lookup, never a wrong value). The nodes a
// chain does not share are made in one allocation, which one weak pointer
// refers to for all their slots: the table keeps no node alive, a batch
// lives as long as an entry holds one of its nodes. A full bucket gives up
// a slot no lookup found since it last passed (a clock): the prefixes
// successive turns share stay, one-off messages' nodes go first.
type chainTable[T comparable] struct {
	hash    func(h uint64, v T) uint64
	eq      func(a, b T) bool
	size    int              // the number of buckets
	once    sync.Once        // makes buckets on first use (a cache uses one of its two tables)
	buckets []chainBucket[T] // bucket i is guarded by locks[i%chainStripes]
	// The buckets' locks, striped: concurrent misses of other
	// conversations rarely wait for each other, and a lock is held for a
	// bucket's lookup or update only (nodes are made, and their weak
	// pointer, outside any lock).
	locks [chainStripes]paddedMutex
}

const chainStripes = 32

// paddedMutex is a mutex on a cache line of its own.
type paddedMutex struct {
	sync.Mutex
	_ [64 - 8]byte
}

func (t *chainTable[T]) lock(b uint64) *sync.Mutex {
	return &t.locks[b%chainStripes].Mutex
}

const chainWays = 4

// chainBucket is chainWays slots and the clock's hand.
type chainBucket[T comparable] struct {
	slots [chainWays]chainSlot[T]
	hand  uint8
}

// chainSlot is a node: the tag's low 15 bits are its index in the batch
// the weak pointer points to, bit 15 is set when a lookup found it since
// the clock last passed it, the others are those of the hash of its
// chain's values.
type chainSlot[T comparable] struct {
	tag   uint64
	batch weak.Pointer[chainNode[T]]
}

// maxBatch bounds the nodes of a batch (their index is 15 bits).
const maxBatch = 1 << 15

const (
	idxMask  = maxBatch - 1
	usedBit  = maxBatch
	hashMask = ^uint64(idxMask | usedBit)
)

// hashOf reports whether the slot's node has hash h (in the bits it keeps).
func (s *chainSlot[T]) hashOf(h uint64) bool { return s.tag&hashMask == h&hashMask }

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
	if len(vals) == 0 {
		return nil
	}
	if t == nil {
		return newNodes(nil, vals, 0, nil)
	}
	t.once.Do(func() { t.buckets = make([]chainBucket[T], t.size) })
	mask := uint64(len(t.buckets) - 1)
	var arr [64]uint64
	hs := arr[:0]
	if len(vals) > len(arr) {
		hs = make([]uint64, 0, len(vals))
	}
	h := uint64(chainSeed)
	for _, v := range vals {
		h = t.hash(h, v)
		hs = append(hs, h)
	}
	// The longest prefix the table has a node for, from the longest.
	var cur *chainNode[T]
	k := len(vals)
	for ; k > 0; k-- {
		if cur = t.find(hs[k-1]&mask, hs[k-1], vals[:k]); cur != nil {
			break
		}
	}
	if k == len(vals) {
		return cur
	}
	return newNodes(cur, vals[k:], k, func(k int, batch weak.Pointer[chainNode[T]], idx int) {
		h := hs[k]
		b := h & mask
		mu := t.lock(b)
		mu.Lock()
		t.buckets[b].put(h&hashMask|uint64(idx), batch)
		mu.Unlock()
	})
}

// newNodes returns the last node of the chain of prev's values, then
// vals, whose nodes after prev it makes in batches of up to maxBatch (n is
// prev's length), calling put (when not nil) with each node's index in the
// chain, its batch and its index in the batch.
func newNodes[T comparable](prev *chainNode[T], vals []T, n int, put func(k int, batch weak.Pointer[chainNode[T]], idx int)) *chainNode[T] {
	cur := prev
	for len(vals) > 0 {
		batch := make([]chainNode[T], min(len(vals), maxBatch))
		var w weak.Pointer[chainNode[T]]
		if put != nil {
			w = weak.Make(&batch[0])
		}
		for i := range batch {
			batch[i] = chainNode[T]{prev: cur, v: vals[i], n: n + 1}
			cur = &batch[i]
			if put != nil {
				put(n, w, i)
			}
			n++
		}
		vals = vals[len(batch):]
	}
	return cur
}

// find returns the node of bucket b whose hash is h and whose chain's
// values are vals (by t's eq), nil if there is none; it marks its slot
// used. The bucket's lock is held to copy its slots, and to mark the
// slot when it is not marked yet, only: the weak pointer is resolved and
// the values compared outside it, so that the misses of one conversation
// in flight at once (every turn of every agent looks up the nodes of the
// same system prompt and tools) do not queue behind each other's
// comparisons. A node found so is sound whatever happens to the slot
// meanwhile: nodes are immutable, and the one returned is held.
func (t *chainTable[T]) find(b, h uint64, vals []T) *chainNode[T] {
	mu := t.lock(b)
	mu.Lock()
	slots := t.buckets[b].slots
	mu.Unlock()
	for i := range slots {
		s := &slots[i]
		if !s.hashOf(h) {
			continue
		}
		if nd := s.node(); nd != nil && nd.n == len(vals) && nd.holds(vals, t.eq) {
			if s.tag&usedBit == 0 {
				mu.Lock()
				if live := &t.buckets[b].slots[i]; live.tag == s.tag && live.batch == s.batch {
					live.tag |= usedBit
				}
				mu.Unlock()
			}
			return nd
		}
	}
	return nil
}

// holds reports whether the chain c ends holds vals (by eq), c's length
// being len(vals): every value is compared, from the last.
func (c *chainNode[T]) holds(vals []T, eq func(a, b T) bool) bool {
	for nd := c; nd != nil; nd = nd.prev {
		if !eq(nd.v, vals[nd.n-1]) {
			return false
		}
	}
	return true
}

// put records a node (tag: its hash's bits and its index in batch) in b:
// in the slot of an older node of the same hash (a chain of the same
// values, which the new one replaces), else in a free slot, else in the
// first slot the clock finds unused since it last passed. A slot whose
// batch is gone is not looked for (its weak pointer's Value costs a walk
// of the runtime's span tables): no lookup finds it, so the clock takes
// it at its next pass.
func (b *chainBucket[T]) put(tag uint64, batch weak.Pointer[chainNode[T]]) {
	free := -1
	for i := range b.slots {
		s := &b.slots[i]
		empty := s.batch == (weak.Pointer[chainNode[T]]{})
		if s.tag&hashMask == tag&hashMask && !empty {
			free = i
			break
		}
		if free < 0 && empty {
			free = i
		}
	}
	for free < 0 {
		s := &b.slots[b.hand%chainWays]
		if s.tag&usedBit == 0 {
			free = int(b.hand % chainWays)
		}
		s.tag &^= usedBit
		b.hand++
	}
	b.slots[free] = chainSlot[T]{tag: tag, batch: batch}
}

// weakHandleBytes is what the weak pointer to a batch takes on the heap
// (the runtime's handle, padded to 16 bytes); an entry whose chain has
// nodes counts one, whether it made them or shares them.
const weakHandleBytes = 16

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

// chainSlots is the size of a cache's chain tables: a turn needs the
// node its shared prefix ends on, so a few slots per conversation in
// flight (the nodes a turn adds), for hundreds of conversations.
const chainSlots = 2048

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
