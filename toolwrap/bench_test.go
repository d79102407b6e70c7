package toolwrap_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

func instantTools(n int) ([]toolwrap.Tool, []middleware.ToolCall) {
	ts := make([]toolwrap.Tool, n)
	cs := make([]middleware.ToolCall, n)
	for i := range n {
		name := fmt.Sprintf("t%d", i)
		ts[i] = toolwrap.Tool{Name: name, Call: func(context.Context, string) (string, error) { return "ok", nil }}
		cs[i] = middleware.ToolCall{ID: "c" + name, Name: name, Arguments: "{}"}
	}
	return ts, cs
}

// Executor overhead for one turn of 8 instant tools (target: < 10µs).
func BenchmarkExecuteEightInstantTools(b *testing.B) {
	ts, cs := instantTools(8)
	for _, bc := range []struct {
		name string
		cfg  toolwrap.Config
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"parallel", toolwrap.Config{MaxParallel: 8}, func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}},
		{"parallel_run_timeout", toolwrap.Config{MaxParallel: 8, Timeout: 30 * time.Second}, func() (context.Context, context.CancelFunc) {
			ctx, _ := middleware.StartRun(context.Background(), "bench")
			return context.WithCancel(ctx)
		}},
		// The same, in runs of 100 turns: the run's tool record no longer
		// grows for the whole benchmark (millions of records), which
		// otherwise dominates the figure with its append and GC costs.
		{"parallel_run_timeout_100_turn_runs", toolwrap.Config{MaxParallel: 8, Timeout: 30 * time.Second}, nil},
		{"sequential", toolwrap.Config{}, func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ex, err := toolwrap.New(ts, bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			if bc.ctx == nil {
				parent, cancel := context.WithCancel(context.Background())
				defer cancel()
				var ctx context.Context
				for i := 0; b.Loop(); i++ {
					if i%100 == 0 {
						ctx, _ = middleware.StartRun(parent, "bench")
					}
					if _, err := ex.Execute(ctx, cs); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			ctx, cancel := bc.ctx()
			defer cancel()
			for b.Loop() {
				if _, err := ex.Execute(ctx, cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Offloading a 2MB result: index, store, excerpt, token estimate
// (target: < 5ms).
func BenchmarkOffloadTwoMegabytes(b *testing.B) {
	log, _ := bigLog(2 << 20)
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(1<<30), toolwrap.ArtifactConfig{ThresholdTokens: 1000}, nil)
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := arts.Offload(ctx, log); err != nil {
			b.Fatal(err)
		}
	}
}

// read_artifact of 100 lines from a 2MB artifact (target: < 200µs).
func BenchmarkReadArtifactHundredLines(b *testing.B) {
	log, n := bigLog(2 << 20)
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{}, nil)
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	_, id, _, err := arts.Offload(ctx, log)
	if err != nil {
		b.Fatal(err)
	}
	read := arts.ReadTool().Call
	args := fmt.Sprintf(`{"id":%q,"offset":%d,"limit":100}`, id, n/2)
	b.Run("range", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := read(ctx, args); err != nil {
				b.Fatal(err)
			}
		}
	})
	grep := fmt.Sprintf(`{"id":%q,"grep":"ERROR"}`, id)
	b.Run("grep_2MB", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := read(ctx, grep); err != nil {
				b.Fatal(err)
			}
		}
	})
}
