// Package learn is a part of the router layer, its learned scorer: hashed
// word unigrams and bigrams of a message, weighted by a logistic regression
// whose weights are int8-quantised, read from a small file. A Model scores a
// text in [0,1]: how much it needs the strong model. Scoring reads at most
// MaxBytes of the text, allocates nothing and takes a few microseconds for a
// 2 KB message (BenchmarkLearnedScore2KB).
//
// The package holds the scorer and its file format only; training and
// evaluation are in package routeeval, the routing decision in package
// route (routing.learned of a policy).
//
// # Features
//
// A word is a maximal run of ASCII letters and digits and of non-ASCII
// bytes; ASCII letters are folded to lower case. Each word gives a unigram
// feature and, with Ngrams = 2, each pair of consecutive words a bigram
// feature. A feature's 64-bit FNV-1a hash, mixed with Seed, picks one of
// 2^Bits buckets. The text's features are summed with weight
// 1/sqrt(number of features), so that a long text does not score higher
// for its length alone:
//
//	score = sigmoid(Bias + Scale × Σ W[bucket(f)] / sqrt(n))
//
// # File format
//
// All integers little-endian, floats IEEE-754 binary32:
//
//	offset size  field
//	0      4     magic "TWLW"
//	4      2     version, 1
//	6      1     bits: log2 of the number of buckets, 8..20
//	7      1     ngrams: 1 (unigrams) or 2 (unigrams and bigrams)
//	8      4     max_bytes: bytes of the text read (0: 4096)
//	12     8     seed of the feature hash
//	20     4     scale: a weight is int8 × scale
//	24     4     bias
//	28     4     threshold: the calibrated threshold (score >= threshold → strong)
//	32     4     target: the quality target (PGR) the threshold was calibrated for
//	36     1     label: 1 only-strong, 2 strong-better (what the model predicts)
//	37     3     reserved, zero
//	40     2^bits weights, int8
//	40+2^bits 4  CRC-32 (IEEE) of every byte before it
//
// A 2^16-bucket file is 64 KiB and 44 bytes.
package learn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
)

// ErrFormat is matched (errors.Is) by every error reading a weights file
// that is not one.
var ErrFormat = errors.New("learn: not a valid weights file")

// Version is the weights file version this package reads and writes.
const Version = 1

// DefaultMaxBytes is the part of a text read when MaxBytes is zero.
const DefaultMaxBytes = 4096

const (
	magic      = "TWLW"
	headerSize = 40
	minBits    = 8
	maxBits    = 20
)

// Label is what a model was trained to predict.
type Label uint8

// Labels.
const (
	// LabelOnlyStrong: the strong model is correct and the weak one is
	// not (with scores: strong >= 0.5 > weak).
	LabelOnlyStrong Label = 1
	// LabelStrongBetter: the strong model scores higher than the weak one.
	LabelStrongBetter Label = 2
)

// String returns the label's flag spelling.
func (l Label) String() string {
	switch l {
	case LabelOnlyStrong:
		return "only-strong"
	case LabelStrongBetter:
		return "strong-better"
	}
	return fmt.Sprintf("label(%d)", uint8(l))
}

// ParseLabel reads a label's flag spelling.
func ParseLabel(s string) (Label, error) {
	switch s {
	case "only-strong", "":
		return LabelOnlyStrong, nil
	case "strong-better":
		return LabelStrongBetter, nil
	}
	return 0, fmt.Errorf("learn: unknown label %q (only-strong, strong-better)", s)
}

// Model is a trained scorer. It is immutable once built and safe for
// concurrent use.
type Model struct {
	Bits      uint8  // log2 of the number of buckets
	Ngrams    uint8  // 1 or 2
	MaxBytes  uint32 // bytes of the text read; 0: DefaultMaxBytes
	Seed      uint64 // feature hash seed
	Scale     float32
	Bias      float32
	Threshold float32 // calibrated: score >= Threshold → strong
	Target    float32 // the PGR target Threshold was calibrated for
	Label     Label
	W         []int8 // 1<<Bits weights
}

// Check reports whether the model's fields are consistent.
func (m *Model) Check() error {
	switch {
	case m.Bits < minBits || m.Bits > maxBits:
		return fmt.Errorf("%w: bits %d not in [%d,%d]", ErrFormat, m.Bits, minBits, maxBits)
	case m.Ngrams != 1 && m.Ngrams != 2:
		return fmt.Errorf("%w: ngrams %d not 1 or 2", ErrFormat, m.Ngrams)
	case len(m.W) != 1<<m.Bits:
		return fmt.Errorf("%w: %d weights for %d bits", ErrFormat, len(m.W), m.Bits)
	case !finite(m.Scale) || !finite(m.Bias) || !finite(m.Threshold) || !finite(m.Target) || m.Scale < 0:
		return fmt.Errorf("%w: scale, bias, threshold or target not finite", ErrFormat)
	case m.Threshold < 0 || m.Threshold > 1:
		return fmt.Errorf("%w: threshold %g not in [0,1]", ErrFormat, m.Threshold)
	case m.Label != LabelOnlyStrong && m.Label != LabelStrongBetter:
		return fmt.Errorf("%w: unknown label %d", ErrFormat, m.Label)
	}
	return nil
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// Score returns how much text needs the strong model, in [0,1]. It
// allocates nothing. The model must pass Check (Read and Load check it).
func (m *Model) Score(text string) float64 {
	if n := m.maxBytes(); len(text) > n {
		text = text[:n]
	}
	it := Features{s: text, bigrams: m.Ngrams == 2}
	shift := 64 - uint(m.Bits)
	var sum, n int64
	for {
		h, ok := it.Next()
		if !ok {
			break
		}
		sum += int64(m.W[bucket(h, m.Seed, shift)])
		n++
	}
	z := float64(m.Bias)
	if n > 0 {
		z += float64(m.Scale) * float64(sum) / math.Sqrt(float64(n))
	}
	return 1 / (1 + math.Exp(-z))
}

func (m *Model) maxBytes() int {
	if m.MaxBytes == 0 {
		return DefaultMaxBytes
	}
	return int(m.MaxBytes)
}

// Buckets appends the buckets of text's features to dst, as Score reads
// them (the same cap on the text's length).
func (m *Model) Buckets(dst []uint32, text string) []uint32 {
	return AppendBuckets(dst, text, m.Bits, m.Ngrams, m.Seed, m.maxBytes())
}

// AppendBuckets appends the buckets of text's features (see the package
// doc) for a model of the given configuration.
func AppendBuckets(dst []uint32, text string, bits, ngrams uint8, seed uint64, maxBytes int) []uint32 {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(text) > maxBytes {
		text = text[:maxBytes]
	}
	it := Features{s: text, bigrams: ngrams == 2}
	shift := 64 - uint(bits)
	for {
		h, ok := it.Next()
		if !ok {
			return dst
		}
		dst = append(dst, uint32(bucket(h, seed, shift)))
	}
}

// bucket mixes a feature hash with the seed (splitmix64's finaliser) and
// keeps the top bits.
func bucket(h, seed uint64, shift uint) uint64 {
	h ^= seed
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h >> shift
}

// Features iterates over the feature hashes of a text: each word's, then,
// after the second word, the bigram of the word and the one before it.
// The zero value has no features; use NewFeatures.
type Features struct {
	s       string
	i       int
	prev    uint64
	havePrv bool
	pending uint64
	havePnd bool
	bigrams bool
}

// NewFeatures returns the iterator of s's features; bigrams adds the word
// pairs.
func NewFeatures(s string, bigrams bool) Features { return Features{s: s, bigrams: bigrams} }

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Next returns the next feature hash, false at the end.
func (f *Features) Next() (uint64, bool) {
	if f.havePnd {
		f.havePnd = false
		return f.pending, true
	}
	s := f.s
	i := f.i
	for i < len(s) && fold[s[i]] == 0 {
		i++
	}
	if i == len(s) {
		f.i = i
		return 0, false
	}
	h := uint64(fnvOffset)
	for ; i < len(s); i++ {
		c := fold[s[i]]
		if c == 0 {
			break
		}
		h ^= uint64(c)
		h *= fnvPrime
	}
	f.i = i
	if f.bigrams && f.havePrv {
		// A bigram: the two hashes combined, with a separator byte so
		// that it differs from any word's hash.
		b := (f.prev ^ 0x20) * fnvPrime
		b = (b ^ h) * fnvPrime
		f.pending, f.havePnd = b, true
	}
	f.prev, f.havePrv = h, true
	return h, true
}

// fold maps a word byte to itself, ASCII letters folded to lower case,
// and any other byte to 0.
var fold = func() (t [256]byte) {
	for c := range 256 {
		switch {
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c + 'a' - 'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c >= 0x80:
			t[c] = byte(c)
		}
	}
	return t
}()

// Quantise returns the int8 weights of w and their scale: w[i] ≈ q[i]×scale.
func Quantise(w []float64) ([]int8, float32) {
	var maxAbs float64
	for _, v := range w {
		maxAbs = max(maxAbs, math.Abs(v))
	}
	q := make([]int8, len(w))
	if maxAbs == 0 {
		return q, 0
	}
	scale := maxAbs / 127
	for i, v := range w {
		q[i] = int8(math.Round(v / scale))
	}
	return q, float32(scale)
}

// MarshalBinary writes the model in the file format of the package doc.
func (m *Model) MarshalBinary() ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	b := make([]byte, headerSize, headerSize+len(m.W)+4)
	copy(b, magic)
	le := binary.LittleEndian
	le.PutUint16(b[4:], Version)
	b[6], b[7] = m.Bits, m.Ngrams
	le.PutUint32(b[8:], m.MaxBytes)
	le.PutUint64(b[12:], m.Seed)
	le.PutUint32(b[20:], math.Float32bits(m.Scale))
	le.PutUint32(b[24:], math.Float32bits(m.Bias))
	le.PutUint32(b[28:], math.Float32bits(m.Threshold))
	le.PutUint32(b[32:], math.Float32bits(m.Target))
	b[36] = byte(m.Label)
	for _, w := range m.W {
		b = append(b, byte(w))
	}
	return le.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// UnmarshalBinary reads a model written by MarshalBinary. Any other input
// is an error matching ErrFormat.
func (m *Model) UnmarshalBinary(b []byte) error {
	if len(b) < headerSize+4 || !bytes.Equal(b[:4], []byte(magic)) {
		return fmt.Errorf("%w: no %q header", ErrFormat, magic)
	}
	le := binary.LittleEndian
	if v := le.Uint16(b[4:]); v != Version {
		return fmt.Errorf("%w: version %d, this build reads %d", ErrFormat, v, Version)
	}
	bits := b[6]
	if bits < minBits || bits > maxBits {
		return fmt.Errorf("%w: bits %d not in [%d,%d]", ErrFormat, bits, minBits, maxBits)
	}
	if want := headerSize + 1<<bits + 4; len(b) != want {
		return fmt.Errorf("%w: %d bytes, want %d for %d bits", ErrFormat, len(b), want, bits)
	}
	body := b[:len(b)-4]
	if sum := le.Uint32(b[len(b)-4:]); sum != crc32.ChecksumIEEE(body) {
		return fmt.Errorf("%w: checksum mismatch", ErrFormat)
	}
	if b[37] != 0 || b[38] != 0 || b[39] != 0 {
		return fmt.Errorf("%w: reserved bytes set", ErrFormat)
	}
	n := Model{
		Bits: bits, Ngrams: b[7], MaxBytes: le.Uint32(b[8:]), Seed: le.Uint64(b[12:]),
		Scale:     math.Float32frombits(le.Uint32(b[20:])),
		Bias:      math.Float32frombits(le.Uint32(b[24:])),
		Threshold: math.Float32frombits(le.Uint32(b[28:])),
		Target:    math.Float32frombits(le.Uint32(b[32:])),
		Label:     Label(b[36]),
		W:         make([]int8, 1<<bits),
	}
	for i := range n.W {
		n.W[i] = int8(body[headerSize+i])
	}
	if err := n.Check(); err != nil {
		return err
	}
	*m = n
	return nil
}

// Read reads a model from r.
func Read(r io.Reader) (*Model, error) {
	b, err := io.ReadAll(io.LimitReader(r, headerSize+1<<maxBits+5))
	if err != nil {
		return nil, err
	}
	m := new(Model)
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return m, nil
}

// Load reads the model file at path.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Save writes the model to path.
func (m *Model) Save(path string) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
