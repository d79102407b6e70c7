package tokens

import (
	"math"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/tiktoken-go/tokenizer"
)

// bpe counts tokens like tiktoken-go's codec for cl100k_base or o200k_base
// (whose Count this package used before): the same pieces, split by the
// hand-written pre-tokenizer of pretok.go instead of regexp2, and the same
// byte-pair merges over the same ranks, read once from the codec.
type bpe struct {
	ranks  *rankTable
	next   func(s string, i int) int // the end of the piece at i
	recent *pieceCache               // counts of recent short pieces; nil: none
}

// The ranks of each encoding, read once per process on first use and
// shared by every Estimator.
var (
	o200kOnce, cl100kOnce sync.Once
	o200kBPE, cl100kBPE   *bpe
)

// bpeOf returns the bpe of c's encoding, nil for another encoding.
func bpeOf(c tokenizer.Codec) *bpe {
	switch c.GetName() {
	case O200kBase:
		o200kOnce.Do(func() { o200kBPE = newBPE(c) })
		return o200kBPE
	case Cl100kBase:
		cl100kOnce.Do(func() { cl100kBPE = newBPE(c) })
		return cl100kBPE
	}
	return nil
}

// newBPE reads the ranks of c's vocabulary (token i is Decode([i])) and
// pairs them with the pre-tokenizer of its encoding; nil for another
// encoding.
func newBPE(c tokenizer.Codec) *bpe {
	var next func(string, int) int
	switch c.GetName() {
	case O200kBase:
		next = nextO200k
	case Cl100kBase:
		next = nextCl100k
	default:
		return nil
	}
	initClasses()
	// The tokens' bytes in one block, the table's keys slices of it.
	block := make([]byte, 0, 2<<20)
	ends := make([]int32, 0, 1<<18)
	misses := 0
	for id := uint(0); misses < 1024; id++ {
		s, err := c.Decode([]uint{id})
		if err != nil || s == "" {
			misses++ // specials and gaps
			ends = append(ends, -1)
			continue
		}
		misses = 0
		block = append(block, s...)
		ends = append(ends, int32(len(block)))
	}
	all := unsafe.String(unsafe.SliceData(block), len(block))
	return &bpe{ranks: newRankTable(all, ends, rankSeed), next: next, recent: &pieceCache{}}
}

// rankSeed seeds the rank table's hash. It need not be secret: the table
// holds only the vocabulary, so no text can lengthen its probe sequences.
const rankSeed = 0x2545F4914F6CDD1D

// count returns the number of tokens of s.
func (b *bpe) count(s string) int {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	// The pieces are split a batch at a time, then looked up one after the
	// other: the lookups do not depend on each other, so their cache
	// misses (the table is 8 MB; in a busy process little of it stays
	// cached between two messages) overlap instead of each waiting for the
	// split of the next piece.
	var ends [countBatch]int
	n := 0
	for i := 0; i < len(s); {
		k := 0
		for j := i; k < countBatch && j < len(s); k++ {
			j = b.next(s, j)
			ends[k] = j
		}
		for _, e := range ends[:k] {
			n += b.countPiece(s[i:e])
			i = e
		}
	}
	return n
}

// countPiece returns the number of tokens of piece p, from the cache of
// recent pieces when it holds p.
func (b *bpe) countPiece(p string) int {
	if len(p) == 1 {
		return 1 // every byte is a token
	}
	short := len(p) <= pieceMaxBytes && b.recent != nil
	if short {
		if n, ok := b.recent.get(p); ok {
			return n
		}
	}
	n := 1
	if !b.ranks.has(p) {
		n = b.merge(p, nil)
	}
	if short {
		b.recent.put(p, n)
	}
	return n
}

// countBatch is how many pieces count splits before looking them up.
const countBatch = 32

// encode appends the token ids of s to ids.
func (b *bpe) encode(s string, ids []uint32) []uint32 {
	b.pieces(s, func(p string) {
		if id, ok := b.ranks.get(p); ok {
			ids = append(ids, id)
			return
		}
		b.merge(p, func(tok string) {
			id, _ := b.ranks.get(tok)
			ids = append(ids, id)
		})
	})
	return ids
}

// pieces calls fn with each piece of s, in order. Invalid UTF-8 is read as
// regexp2 reads it: each invalid byte is U+FFFD.
func (b *bpe) pieces(s string, fn func(string)) {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	for i := 0; i < len(s); {
		e := b.next(s, i)
		fn(s[i:e])
		i = e
	}
}

// scanMax is the piece length from which merge uses a heap, as tiktoken-go
// does from 96 bytes (both give the same parts).
const scanMax = 96

// merge returns how many tokens the byte-pair merges make of piece, calling
// fn, when not nil, with each token in order.
func (b *bpe) merge(piece string, fn func(string)) int {
	if len(piece) >= scanMax {
		return b.mergeHeap(piece, fn)
	}
	// Boundaries of the parts and the rank of merging each with the next
	// two parts' boundary, on the stack: the leftmost lowest rank merges
	// first.
	var pos [scanMax + 1]int32
	var rank [scanMax + 1]uint32
	n := len(piece) + 1
	for i := range n {
		pos[i] = int32(i)
	}
	get := func(i int) uint32 {
		if i+2 < n {
			if r, ok := b.ranks.get(piece[pos[i]:pos[i+2]]); ok {
				return r
			}
		}
		return math.MaxUint32
	}
	for i := range n - 1 {
		rank[i] = get(i)
	}
	rank[n-1] = math.MaxUint32
	for n > 1 {
		m, mi := uint32(math.MaxUint32), 0
		for i := range n - 1 {
			if rank[i] < m {
				m, mi = rank[i], i
			}
		}
		if m == math.MaxUint32 {
			break
		}
		copy(pos[mi+1:n-1], pos[mi+2:n])
		copy(rank[mi+1:n-1], rank[mi+2:n])
		n--
		rank[mi] = get(mi)
		if mi > 0 {
			rank[mi-1] = get(mi - 1)
		}
	}
	if fn != nil {
		for i := range n - 1 {
			fn(piece[pos[i]:pos[i+1]])
		}
	}
	return n - 1
}

// mergeHeap is merge for long pieces, in O(n log n): the same parts.
func (b *bpe) mergeHeap(piece string, fn func(string)) int {
	type node struct {
		prev, next int32
		rank       uint32
	}
	const none = math.MaxUint32
	n := int32(len(piece))
	nodes := make([]node, n+1)
	for i := range nodes {
		nodes[i] = node{prev: int32(i) - 1, next: int32(i) + 1, rank: none}
	}
	nodes[n].next = -1
	rankOf := func(i int32) uint32 {
		j := nodes[i].next
		if j < 0 {
			return none
		}
		k := nodes[j].next
		if k < 0 {
			return none
		}
		if r, ok := b.ranks.get(piece[i:k]); ok {
			return r
		}
		return none
	}
	h := make(mergeHeap, 0, n)
	for i := int32(0); i+2 <= n; i++ {
		if r := rankOf(i); r != none {
			nodes[i].rank = r
			h = append(h, candidate{r, i})
		}
	}
	h.init()
	count := int(n)
	for len(h) > 0 {
		top := h.pop()
		i := top.offset
		if nodes[i].rank != top.rank {
			continue // stale
		}
		j := nodes[i].next
		k := nodes[j].next
		nodes[j].rank = none
		nodes[i].next = k
		if k >= 0 {
			nodes[k].prev = i
		}
		count--
		for _, x := range [2]int32{i, nodes[i].prev} {
			if x < 0 {
				continue
			}
			nodes[x].rank = rankOf(x)
			if nodes[x].rank != none {
				h.push(candidate{nodes[x].rank, x})
			}
		}
	}
	if fn != nil {
		for i := int32(0); nodes[i].next >= 0; i = nodes[i].next {
			fn(piece[i:nodes[i].next])
		}
	}
	return count
}

type candidate struct {
	rank   uint32
	offset int32
}

// mergeHeap is a min-heap of candidates by rank, then offset: among equal
// ranks the leftmost pair merges first.
type mergeHeap []candidate

func (h mergeHeap) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].offset < h[b].offset
}

func (h mergeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *mergeHeap) push(c candidate) {
	*h = append(*h, c)
	h.up(len(*h) - 1)
}

func (h *mergeHeap) pop() candidate {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	h.down(0)
	return top
}

func (h mergeHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (h mergeHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
