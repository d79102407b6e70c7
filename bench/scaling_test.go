package bench_test

import (
	"context"
	"crypto/sha256"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// scalingGoroutines is the number of goroutines of the parallel phases.
const scalingGoroutines = 64

// BenchmarkChainMissScaling measures how the default policy's miss path
// scales with concurrency, relative to what the machine gives a CPU-bound
// workload with no shared state. One op is one round of four phases, each
// a fixed number of ops run as fast as possible:
//
//	chain@1   the full chain around the instant model (as in
//	          BenchmarkChainInstantModelMiss: the 8 KB agent request, a
//	          distinct one every call, so a cache miss), one goroutine;
//	chain@64  the same from 64 goroutines sharing the chain (each op taken
//	          from a shared counter, as b.RunParallel does);
//	ref@1     the reference: private CPU work, SHA-256 rounds over a
//	          buffer of the goroutine's own, calibrated before the first
//	          round to take as long as a chain@1 op; one goroutine;
//	ref@64    the same from 64 goroutines (each with its own buffer).
//
// The phases alternate (their order reversed every round), so that all
// four meet the same machine load. Throughput is ops / wall time of a
// phase, summed over the rounds, and
//
//	chain-speedup = throughput(chain@64) / throughput(chain@1)
//	ref-speedup   = throughput(ref@64)   / throughput(ref@1)
//	scaling       = chain-speedup / ref-speedup
//
// ref-speedup is the machine's parallel scaling at the moment (≈ GOMAXPROCS
// on an idle machine, less on a busy one); scaling is the fraction of it
// the chain achieves: 1 when the chain has no contention (locks, shared
// cache lines, the garbage collector) that private work does not have.
// Run it with -cpu 1,2 (at -cpu 1 both speedups are ≈ 1 and scaling shows
// what 64 goroutines cost on one P), and with -mutexprofile /
// -blockprofile to see where the chain's goroutines wait.
func BenchmarkChainMissScaling(b *testing.B) {
	h := fullPolicy(b)(instantModel)
	ctx := context.Background()
	var seq atomic.Int64 // request numbers: every call a distinct request
	// Each worker owns a ring of requests; the slot it reuses was sent
	// len(ring) calls before.
	newWorker := func() func() {
		var ring [8]*middleware.Request
		for i := range ring {
			ring[i] = coreAgentRequest(0)
		}
		k := 0
		return func() {
			req := ring[k%len(ring)]
			k++
			req.Messages[len(req.Messages)-1].Content = "Summarise (request " + strconv.FormatInt(seq.Add(1), 10) + ")."
			resp, err := h.Handle(ctx, req)
			if err != nil || resp.Message.Content != answer {
				b.Error(resp, err)
			}
		}
	}
	chainWorkers := make([]func(), scalingGoroutines)
	for i := range chainWorkers {
		chainWorkers[i] = newWorker()
	}
	// Warm up, then time a chain op for the reference's calibration (the
	// fastest of a few batches: the least disturbed by other processes).
	for range 64 {
		chainWorkers[0]()
	}
	chainOp := fastest(func() { runPhase(chainWorkers[:1], 32) }) / 32
	refWorkers := make([]func(), scalingGoroutines)
	rounds := calibrateRef(chainOp)
	var sink atomic.Uint32
	for i := range refWorkers {
		buf := make([]byte, 1024)
		buf[0] = byte(i)
		refWorkers[i] = func() {
			sum := sha256.Sum256(buf)
			for range rounds - 1 {
				copy(buf, sum[:])
				sum = sha256.Sum256(buf)
			}
			sink.Add(uint32(sum[0]))
		}
	}

	// ops per phase: enough for every goroutine of a parallel phase to
	// run several ops.
	const ops = 8 * scalingGoroutines
	var wall [4]time.Duration // chain@1, chain@64, ref@1, ref@64
	phases := [4]func(){
		func() { runPhase(chainWorkers[:1], ops) },
		func() { runPhase(chainWorkers, ops) },
		func() { runPhase(refWorkers[:1], ops) },
		func() { runPhase(refWorkers, ops) },
	}
	round := 0
	for b.Loop() {
		for j := range phases {
			p := j
			if round%2 == 1 {
				p = len(phases) - 1 - j
			}
			t := time.Now()
			phases[p]()
			wall[p] += time.Since(t)
		}
		round++
	}
	if b.Failed() || round == 0 {
		return
	}
	chainSpeedup := float64(wall[0]) / float64(wall[1]) // equal op counts: throughput ratio = inverse wall ratio
	refSpeedup := float64(wall[2]) / float64(wall[3])
	b.ReportMetric(chainSpeedup/refSpeedup, "scaling")
	b.ReportMetric(chainSpeedup, "chain-speedup")
	b.ReportMetric(refSpeedup, "ref-speedup")
	n := float64(round * ops)
	b.ReportMetric(float64(wall[0].Nanoseconds())/n, "chain@1-ns/call")
	b.ReportMetric(float64(wall[1].Nanoseconds())/n, "chain@64-ns/call")
}

// runPhase runs ops calls of the workers' functions, one goroutine per
// worker, each taking the next op from a shared counter.
func runPhase(workers []func(), ops int64) {
	if len(workers) == 1 {
		for range ops {
			workers[0]()
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for next.Add(1) <= ops {
				w()
			}
		})
	}
	wg.Wait()
}

// calibrateRef returns how many SHA-256 rounds over 1 KB take about as
// long as d.
func calibrateRef(d time.Duration) int {
	buf := make([]byte, 1024)
	const n = 256
	per := fastest(func() {
		for range n {
			sum := sha256.Sum256(buf)
			copy(buf, sum[:])
		}
	}) / n
	return max(1, int(d/max(per, 1)))
}

// fastest returns the shortest wall time of five runs of f.
func fastest(f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 5 {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}
