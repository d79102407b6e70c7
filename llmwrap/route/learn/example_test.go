package learn_test

import (
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
)

// A model is a few header fields and 2^Bits int8 weights; here one bucket
// (the word "eigenvalue") carries a positive weight. `tokenwise route
// train` writes real ones.
func ExampleModel() {
	m := &learn.Model{Bits: 8, Ngrams: 2, Scale: 0.05, Bias: -1, Threshold: 0.5, Target: 0.9,
		Label: learn.LabelOnlyStrong, W: make([]int8, 1<<8)}
	for _, b := range m.Buckets(nil, "eigenvalue") {
		m.W[b] = 127
	}
	for _, q := range []string{"What is the capital of France?", "Which eigenvalue of this matrix is real?"} {
		s := m.Score(q)
		fmt.Printf("%.2f strong=%v  %s\n", s, s >= float64(m.Threshold), q)
	}
	b, _ := m.MarshalBinary()
	fmt.Println(len(b), "bytes")
	// Output:
	// 0.27 strong=false  What is the capital of France?
	// 0.68 strong=true  Which eigenvalue of this matrix is real?
	// 300 bytes
}
