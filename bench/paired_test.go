package bench_test

import (
	"context"
	"runtime"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
)

// paired measures tokenwise − raw when the machine's load moves more than
// that difference between two sub-benchmarks run a second apart: each op
// runs op once with the raw client and once through tokenwise (in turn
// first), on the benchmark's own locked OS thread, and each side's CPU is
// summed over its own runs only: the thread's (the client's work, see
// threadCPUNanos) and the process's (the local server and the garbage
// collector's background work included: that of one side may run during
// the other's turn, so the process figure splits the collector's work
// between the sides by time). It reports per unit (units per op, e.g. 30
// calls or 200 chunks) both sides and their difference, overhead-*: what
// tokenwise costs.
func paired(b *testing.B, tw, raw *goopenai.Client,
	units float64, unit string, op func(ctx context.Context, c *goopenai.Client, n int) error) {
	ctx := context.Background()
	for _, c := range []*goopenai.Client{raw, tw} { // warm up
		if err := op(ctx, c, -1); err != nil {
			b.Fatal(err)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var thread, proc [2]int64 // raw, tokenwise
	clients := [2]*goopenai.Client{raw, tw}
	n := 0
	for b.Loop() {
		for k := range 2 {
			side := (n + k) % 2
			p0, _ := cpuNanos()
			t0, _ := threadCPUNanos()
			if err := op(ctx, clients[side], n); err != nil {
				b.Fatal(err)
			}
			t1, _ := threadCPUNanos()
			p1, _ := cpuNanos()
			thread[side] += t1 - t0
			proc[side] += p1 - p0
		}
		n++
	}
	if n == 0 {
		return
	}
	per := func(v int64) float64 { return float64(v) / float64(n) / units }
	b.ReportMetric(per(thread[0]), "raw-thread-cpu-ns/"+unit)
	b.ReportMetric(per(thread[1]), "tokenwise-thread-cpu-ns/"+unit)
	b.ReportMetric(per(thread[1]-thread[0]), "overhead-thread-cpu-ns/"+unit)
	b.ReportMetric(per(proc[0]), "raw-cpu-ns/"+unit)
	b.ReportMetric(per(proc[1]), "tokenwise-cpu-ns/"+unit)
	b.ReportMetric(per(proc[1]-proc[0]), "overhead-cpu-ns/"+unit)
}

// BenchmarkPairedAgentRun30 is BenchmarkGoOpenAIAgentRun30 with both
// clients in turn in every op (see paired): per call of the agent run.
func BenchmarkPairedAgentRun30(b *testing.B) {
	srv := newAgentServer(b)
	raw := newClient(b, srv, false, nil)
	tw := newClient(b, srv, true, agentPolicy(b))
	paired(b, tw, raw, agentIterations, "call", func(ctx context.Context, c *goopenai.Client, n int) error {
		out, err := agentRun(ctx, c, n)
		if err == nil && out != answer {
			b.Fatalf("final answer %q", out)
		}
		return err
	})
}

// BenchmarkPairedStream200 is BenchmarkGoOpenAIStream200 with both
// clients in turn in every op (see paired): per chunk of the stream (the
// request's own cost spread over its 200 chunks, as there).
func BenchmarkPairedStream200(b *testing.B) {
	srv := newServer(b)
	raw := newClient(b, srv, false, nil)
	tw := newClient(b, srv, true, fullPolicy(b))
	paired(b, tw, raw, streamChunks, "chunk", streamOnce)
}

// BenchmarkPairedFullPolicyMiss is BenchmarkGoOpenAI8KBFullPolicyMiss with
// both clients in turn in every op (see paired). The same request
// streamed costs this once per stream: BenchmarkPairedStream200's
// overhead per chunk less this one's divided by 200 is what a chunk
// itself costs.
func BenchmarkPairedFullPolicyMiss(b *testing.B) {
	srv := newServer(b)
	raw := newClient(b, srv, false, nil)
	tw := newClient(b, srv, true, fullPolicy(b))
	paired(b, tw, raw, 1, "call", func(ctx context.Context, c *goopenai.Client, n int) error {
		resp, err := c.CreateChatCompletion(ctx, agentRequest(n))
		if err == nil && (len(resp.Choices) != 1 || resp.Choices[0].Message.Content != answer) {
			b.Fatalf("answer %+v", resp.Choices)
		}
		return err
	})
}

// BenchmarkPairedNewMessageIn50 is BenchmarkGoOpenAINewMessageIn50 with
// both clients in turn in every op (see paired): one turn of a 50-message
// conversation, a new 500-byte user message each.
func BenchmarkPairedNewMessageIn50(b *testing.B) {
	srv := newServer(b)
	raw := newClient(b, srv, false, nil)
	tw := newClient(b, srv, true, fullPolicy(b))
	conv := conversation()
	paired(b, tw, raw, 1, "call", func(ctx context.Context, c *goopenai.Client, n int) error {
		msgs := append(conv[:len(conv):len(conv)], newMessage(n))
		resp, err := c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
		if err == nil && (len(resp.Choices) != 1 || resp.Choices[0].Message.Content != answer) {
			b.Fatalf("answer %+v", resp.Choices)
		}
		return err
	})
}
