package learn_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
)

func randomModel(seed uint64, bits uint8) *learn.Model {
	r := rand.New(rand.NewPCG(seed, 1))
	w := make([]float64, 1<<bits)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	q, scale := learn.Quantise(w)
	return &learn.Model{Bits: bits, Ngrams: 2, Seed: r.Uint64(), Scale: scale, Bias: -0.5, Threshold: 0.4, Target: 0.8,
		Label: learn.LabelOnlyStrong, W: q}
}

func text2KB() string {
	words := strings.Fields("Which of the following statements about eigenvalues of a symmetric matrix is true " +
		"explain why the determinant vanishes when two rows are equal and compute the trace")
	var b strings.Builder
	for i := 0; b.Len() < 2048; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[i%len(words)])
	}
	return b.String()[:2048]
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	m := randomModel(1, 12)
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := learn.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bits != m.Bits || got.Seed != m.Seed || got.Scale != m.Scale || got.Bias != m.Bias || got.Threshold != m.Threshold ||
		got.Target != m.Target || got.Label != m.Label || !bytes.Equal(int8s(got.W), int8s(m.W)) {
		t.Fatalf("round trip changed the model")
	}
	s := text2KB()
	if got.Score(s) != m.Score(s) {
		t.Fatalf("scores differ after round trip")
	}
}

func int8s(w []int8) []byte {
	b := make([]byte, len(w))
	for i, v := range w {
		b[i] = byte(v)
	}
	return b
}

// Every corruption of a file is ErrFormat, never a panic or a silent model.
func TestCorruptFilesAreErrFormat(t *testing.T) {
	t.Parallel()
	good, err := randomModel(2, 8).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 500 {
		b := bytes.Clone(good)
		switch i % 3 {
		case 0:
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		case 1:
			b = b[:r.IntN(len(b))]
		case 2:
			b = append(b, byte(r.IntN(256)))
		}
		var m learn.Model
		if err := m.UnmarshalBinary(b); !errors.Is(err, learn.ErrFormat) {
			t.Fatalf("case %d: corrupted file read with err %v", i, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := randomModel(4, 8).MarshalBinary()
	f.Add(good)
	f.Add([]byte("TWLW"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m learn.Model
		if err := m.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, learn.ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		if s := m.Score(string(b)); s < 0 || s > 1 || math.IsNaN(s) {
			t.Fatalf("score %v", s)
		}
	})
}

// Score reads only MaxBytes of the text, and folds ASCII case.
func TestScoreCapsAndFolds(t *testing.T) {
	t.Parallel()
	m := randomModel(5, 12)
	m.MaxBytes = 64
	base := strings.Repeat("abc def ", 8) // 64 bytes
	if m.Score(base) != m.Score(base+"ghi jkl mno") {
		t.Error("bytes beyond MaxBytes changed the score")
	}
	if m.Score("Eigenvalue THEOREM") != m.Score("eigenvalue theorem") {
		t.Error("case changed the score")
	}
	if m.Score("eigenvalue, theorem!") != m.Score("eigenvalue theorem") {
		t.Error("punctuation changed the score")
	}
	if got := len(m.Buckets(nil, "one two three")); got != 5 {
		t.Errorf("3 words gave %d features, want 3 unigrams + 2 bigrams", got)
	}
}

func TestScoreAllocatesNothing(t *testing.T) {
	m := randomModel(6, 16)
	s := text2KB()
	if a := testing.AllocsPerRun(100, func() { _ = m.Score(s) }); a != 0 {
		t.Fatalf("Score allocates %v times", a)
	}
}

func BenchmarkLearnedScore2KB(b *testing.B) {
	m := randomModel(7, 16)
	s := text2KB()
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, ok := threadCPU()
	var sink float64
	n := 0
	for b.Loop() {
		sink += m.Score(s)
		n++
	}
	_ = sink
	// On a shared machine wall time includes other processes' turns:
	// cpu-ns/op is this thread's own CPU time per score.
	if cpu1, ok1 := threadCPU(); ok && ok1 && n > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(n), "cpu-ns/op")
	}
}
