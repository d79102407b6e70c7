// Package bench is the measuring room: it holds the end-to-end benchmarks of
// tokenwise: what a user runs, beside its reference in the same run. Each
// benchmark sends the same requests with a real go-openai client twice, as
// sub-benchmarks: "raw" with a plain http.Client, and "tokenwise" with the
// client returned by the openai adapter's NewHTTPClient around a chain. Both
// talk to the same local OpenAI-compatible server, which answers instantly
// with canned bytes, so the difference between the two is what tokenwise
// costs per call.
//
// Besides ns/op and allocations, every benchmark reports cpu-ns/op: the
// process's user+system CPU time over the loop divided by b.N. It includes
// the local server's CPU, equally for both sides, and is less sensitive than
// wall time to other processes on a shared machine.
//
// BenchmarkGoOpenAIAgentRun30 is a whole agent run of 30 LLM calls in a
// run scope (cpu-ns/call: tokenwise − raw is what tokenwise costs per
// call of an agent). BenchmarkChainMissScaling compares the full chain's
// miss path at 64 goroutines and at one with the same ratio for private
// CPU work (its doc defines the scaling it reports); run it with -cpu 1,2.
//
// Run it with
//
//	go test -run '^$' -bench . -benchmem -count 5 ./bench
//
// and compare the sides with benchstat (see README, "Performance"). The
// package has only this file and tests.
package bench
