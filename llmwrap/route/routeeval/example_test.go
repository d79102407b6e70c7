package routeeval_test

import (
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/route/routeeval"
)

// Train a learned scorer on one half of a labelled set and measure it on
// the other, next to random routers and the oracle.
func ExampleEvaluate() {
	train := routeeval.Synthetic(routeeval.SynthConfig{N: 1000, Seed: 1})
	test := routeeval.Synthetic(routeeval.SynthConfig{N: 1000, Seed: 2})
	m, _, err := routeeval.Train(train, routeeval.TrainConfig{})
	if err != nil {
		panic(err)
	}
	r, err := routeeval.Evaluate(test, routeeval.Learned{Model: m, Label: "synthetic"}, routeeval.Config{Target: 0.9})
	if err != nil {
		panic(err)
	}
	fmt.Printf("APGR %.2f, random %.2f, oracle %.2f\n", r.APGR, r.Random.APGR, r.OracleAPGR)
	fmt.Printf("PGR 0.9 with %.0f%% of calls strong\n", 100*r.AtTarget.Strong)
	// Output:
	// APGR 0.61, random 0.50, oracle 0.93
	// PGR 0.9 with 78% of calls strong
}
