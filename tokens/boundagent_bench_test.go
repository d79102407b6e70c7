package tokens

import (
	"strconv"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// BenchmarkBoundAgent bounds 1,024 distinct 8 KB agent requests
// (middlewaretest.AgentRequest) in turn, none of them counted before, as
// the budget layer of ./bench's BenchmarkChainInstantModelMiss does
// outside a run (where nothing counts the request).
func BenchmarkBoundAgent(b *testing.B) {
	reqs := make([]*middleware.Request, 1024)
	for i := range reqs {
		reqs[i] = middlewaretest.AgentRequest("Summarise (request "+strconv.Itoa(i)+").", 1)
	}
	e := New()
	e.Bound("gpt-4o-mini", reqs[0])
	b.ReportAllocs()
	cpu := startCPU()
	n := 0
	for b.Loop() {
		if e.Bound("gpt-4o-mini", reqs[n%len(reqs)]) <= 0 {
			b.Fatal("no bound")
		}
		n++
	}
	cpu.report(b)
}
