package tokens

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	vocabfiles "github.com/pkoukk/tiktoken-go-loader/assets"
)

// bpe counts tokens like tiktoken-go's codec for cl100k_base or o200k_base
// (whose Count this package used before): the same pieces, split by the
// hand-written pre-tokenizer of pretok.go instead of regexp2, and the same
// byte-pair merges over the same ranks, read once from OpenAI's vocabulary
// file (see loadBPE).
type bpe struct {
	name   string // the encoding's name
	ranks  *rankTable
	next   func(s string, i int) int // the end of the piece at i
	recent *pieceCache               // counts of recent short pieces; nil: none
}

// The ranks of each encoding, read once per process on first use and
// shared by every Estimator.
var (
	o200kOnce, cl100kOnce sync.Once
	o200kBPE, cl100kBPE   *bpe
	o200kDone, cl100kDone atomic.Bool // loaded (Loaded)
)

// bpeFor returns the bpe of encoding enc, loading it on first use; nil for
// another encoding, or if its vocabulary fails to load (never with the
// embedded files; a test loads both).
func bpeFor(enc string) *bpe {
	switch enc {
	case O200kBase:
		o200kOnce.Do(func() { o200kBPE, _ = loadBPE(O200kBase); o200kDone.Store(true) })
		return o200kBPE
	case Cl100kBase:
		cl100kOnce.Do(func() { cl100kBPE, _ = loadBPE(Cl100kBase); cl100kDone.Store(true) })
		return cl100kBPE
	}
	return nil
}

// Warm loads the vocabularies of encodings now (o200k_base, the encoding
// of every current OpenAI model, when none is named), so that the first
// call that counts tokens does not pay for it within its own deadline (a
// quarter of a second on a 2-core machine). A vocabulary loads once per
// process; llmwrap.Build warms its policy's. Unknown encodings are
// ignored.
func Warm(encodings ...string) {
	if len(encodings) == 0 {
		encodings = []string{O200kBase}
	}
	for _, enc := range encodings {
		bpeFor(enc)
	}
}

// Loaded reports whether the vocabulary of enc is loaded.
func Loaded(enc string) bool {
	switch enc {
	case O200kBase:
		return o200kDone.Load()
	case Cl100kBase:
		return cl100kDone.Load()
	}
	return false
}

// loadBPE reads the ranks of enc from OpenAI's own vocabulary file, as
// tiktoken-go-loader embeds it (enc + ".tiktoken": a line per token, its
// bytes in base64 and its rank), straight into the rank table. The table
// holds no pointer, so the garbage collector never scans it; a Go map of
// the vocabulary (tiktoken-go's, kept for the process's life in a package
// variable) is 7 MB of pointers for o200k_base that every cycle of the
// process scanned, and took twice as long to build.
func loadBPE(enc string) (*bpe, error) {
	var next func(string, int) int
	switch enc {
	case O200kBase:
		next = nextO200k
	case Cl100kBase:
		next = nextCl100k
	default:
		return nil, fmt.Errorf("tokens: no vocabulary for %q", enc)
	}
	data, err := vocabfiles.Assets.ReadFile(enc + ".tiktoken")
	if err != nil {
		return nil, fmt.Errorf("tokens: %s: %w", enc, err)
	}
	block, ends, err := parseTiktoken(data)
	if err != nil {
		return nil, fmt.Errorf("tokens: %s.tiktoken: %w", enc, err)
	}
	initClasses()
	all := unsafe.String(unsafe.SliceData(block), len(block))
	return &bpe{name: enc, ranks: newRankTable(all, ends, rankSeed), next: next, recent: &pieceCache{}}, nil
}

// parseTiktoken reads a tiktoken vocabulary file: lines "<base64 bytes>
// <rank>", ranks ascending (a rank the file skips has no token). It
// returns every token's bytes in one block and, for each rank from 0, the
// end of its bytes in block (-1 for a rank without a token, as
// newRankTable takes them).
func parseTiktoken(data []byte) (block []byte, ends []int32, err error) {
	block = make([]byte, 0, len(data)/2)
	ends = make([]int32, 0, len(data)/8)
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return nil, nil, fmt.Errorf("line %d: want \"<base64> <rank>\"", n)
		}
		rank, err := strconv.ParseUint(string(line[sp+1:]), 10, 31)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: rank: %w", n, err)
		}
		if rank < uint64(len(ends)) {
			return nil, nil, fmt.Errorf("line %d: rank %d after rank %d", n, rank, len(ends)-1)
		}
		for uint64(len(ends)) < rank {
			ends = append(ends, -1)
		}
		start := len(block)
		block, err = base64.StdEncoding.AppendDecode(block, line[:sp])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: token: %w", n, err)
		}
		if len(block) == start {
			return nil, nil, fmt.Errorf("line %d: empty token", n)
		}
		if len(block) > math.MaxInt32 || len(block)-start > maxTokenLen {
			return nil, nil, fmt.Errorf("line %d: token too long", n)
		}
		ends = append(ends, int32(len(block)))
	}
	if len(ends) == 0 {
		return nil, nil, errors.New("no token")
	}
	return block, ends, nil
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
