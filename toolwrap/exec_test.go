package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// sleepTool waits d (fake time in a bubble) or until ctx ends, and logs
// its start and end.
func sleepTool(name string, d time.Duration, log *eventLog, meta toolwrap.Meta) toolwrap.Tool {
	return toolwrap.Tool{Name: name, Meta: meta, Call: func(ctx context.Context, args string) (string, error) {
		log.add("start " + name)
		defer log.add("end " + name)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return name + " ok " + args, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}}
}

type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(s string) { l.mu.Lock(); l.ev = append(l.ev, s); l.mu.Unlock() }
func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ev...)
}
func (l *eventLog) index(s string) int {
	for i, e := range l.all() {
		if e == s {
			return i
		}
	}
	return -1
}

func calls(names ...string) []middleware.ToolCall {
	out := make([]middleware.ToolCall, len(names))
	for i, n := range names {
		out[i] = middleware.ToolCall{ID: fmt.Sprintf("call_%d", i+1), Name: n, Arguments: fmt.Sprintf(`{"n":%d}`, i+1)}
	}
	return out
}

func TestExecuteParallelThreeTwoSecondTools(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		ex, err := toolwrap.New([]toolwrap.Tool{
			sleepTool("check_disk", 2*time.Second, &log, toolwrap.Meta{}),
			sleepTool("check_memory", 2*time.Second, &log, toolwrap.Meta{}),
			sleepTool("check_cpu", 2*time.Second, &log, toolwrap.Meta{}),
		}, toolwrap.Config{MaxParallel: 8})
		if err != nil {
			t.Fatal(err)
		}
		ctx, run := middleware.StartRun(t.Context(), "r1")
		start := time.Now()
		res, err := ex.Execute(ctx, calls("check_disk", "check_memory", "check_cpu"))
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("turn took %v, want 2s (parallel)", got)
		}
		for i, want := range []string{"check_disk", "check_memory", "check_cpu"} {
			if res[i].Name != want || res[i].CallID != fmt.Sprintf("call_%d", i+1) || res[i].Err != nil {
				t.Errorf("result %d = %+v, want %s call_%d", i, res[i], want, i+1)
			}
			if wantC := fmt.Sprintf(`%s ok {"n":%d}`, want, i+1); res[i].Content != wantC {
				t.Errorf("result %d content %q, want %q", i, res[i].Content, wantC)
			}
		}
		tot := run.Totals()
		if tot.ToolCalls != 3 || tot.ToolTime != 6*time.Second || tot.ToolWall != 2*time.Second || tot.ToolTurns != 1 {
			t.Errorf("totals: %d calls, %v tool time, %v wall, %d turns; want 3, 6s, 2s, 1", tot.ToolCalls, tot.ToolTime, tot.ToolWall, tot.ToolTurns)
		}
		if !strings.Contains(observe.Report(run), "parallel saved 4s") {
			t.Errorf("report does not show the saved wall time:\n%s", observe.Report(run))
		}
	})
}

func TestExecuteSequentialByDefault(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		ex, _ := toolwrap.New([]toolwrap.Tool{
			sleepTool("a", time.Second, &log, toolwrap.Meta{}),
			sleepTool("b", time.Second, &log, toolwrap.Meta{}),
		}, toolwrap.Config{})
		start := time.Now()
		if _, err := ex.Execute(t.Context(), calls("a", "b")); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("took %v, want 2s (max_parallel zero = one at a time)", got)
		}
	})
}

func TestExecuteSideEffectsRunAloneInOrder(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		ex, _ := toolwrap.New([]toolwrap.Tool{
			sleepTool("check_disk", 2*time.Second, &log, toolwrap.Meta{}),
			sleepTool("check_memory", 1*time.Second, &log, toolwrap.Meta{}),
			sleepTool("clean_logs", 3*time.Second, &log, toolwrap.Meta{SideEffects: true}),
			sleepTool("check_cpu", 2*time.Second, &log, toolwrap.Meta{}),
			sleepTool("check_net", 2*time.Second, &log, toolwrap.Meta{}),
		}, toolwrap.Config{MaxParallel: 8})
		start := time.Now()
		res, err := ex.Execute(t.Context(), calls("check_disk", "check_memory", "clean_logs", "check_cpu", "check_net"))
		if err != nil {
			t.Fatal(err)
		}
		// 2s (disk ∥ memory) + 3s (clean_logs alone) + 2s (cpu ∥ net)
		if got := time.Since(start); got != 7*time.Second {
			t.Errorf("took %v, want 7s", got)
		}
		for i, n := range []string{"check_disk", "check_memory", "clean_logs", "check_cpu", "check_net"} {
			if res[i].Name != n {
				t.Errorf("result %d is %s, want %s", i, res[i].Name, n)
			}
		}
		clean := log.index("start clean_logs")
		cleanEnd := log.index("end clean_logs")
		for _, before := range []string{"end check_disk", "end check_memory"} {
			if log.index(before) > clean {
				t.Errorf("%s after clean_logs started: %v", before, log.all())
			}
		}
		for _, after := range []string{"start check_cpu", "start check_net"} {
			if log.index(after) < cleanEnd {
				t.Errorf("%s before clean_logs ended: %v", after, log.all())
			}
		}
	})
}

func TestExecuteBoundedParallelism(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var cur, peak atomic.Int32
		tool := toolwrap.Tool{Name: "t", Call: func(ctx context.Context, _ string) (string, error) {
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-time.After(time.Second) // fake time inside the bubble
			cur.Add(-1)
			return "ok", nil
		}}
		ex, _ := toolwrap.New([]toolwrap.Tool{tool}, toolwrap.Config{MaxParallel: 3})
		start := time.Now()
		if _, err := ex.Execute(t.Context(), calls("t", "t", "t", "t", "t", "t", "t")); err != nil {
			t.Fatal(err)
		}
		if peak.Load() != 3 {
			t.Errorf("peak concurrency %d, want 3", peak.Load())
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("took %v, want 3s (7 calls, 3 at a time)", got)
		}
	})
}

func TestExecuteFailuresBecomeObservations(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		boom := errors.New("disk not mounted")
		var events []middleware.Event
		var mu sync.Mutex
		ex, _ := toolwrap.New([]toolwrap.Tool{
			{Name: "panicky", Call: func(context.Context, string) (string, error) { panic("nil map") }},
			sleepTool("clean_logs", time.Hour, &log, toolwrap.Meta{Timeout: 30 * time.Second}),
			{Name: "broken", Call: func(context.Context, string) (string, error) { return "", boom }},
			sleepTool("check_disk", time.Second, &log, toolwrap.Meta{}),
		}, toolwrap.Config{MaxParallel: 4})
		ctx, run := middleware.StartRun(t.Context(), "r")
		ctx = middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}))
		start := time.Now()
		res, err := ex.Execute(ctx, calls("panicky", "clean_logs", "broken", "check_disk", "nope"))
		if err != nil {
			t.Fatalf("Execute failed the run: %v", err)
		}
		if got := time.Since(start); got != 30*time.Second {
			t.Errorf("took %v, want the 30s timeout", got)
		}
		want := []struct {
			content string
			is      error
		}{
			{"tool panicky failed: panic: nil map", toolwrap.ErrPanic},
			{"tool clean_logs timed out after 30s", toolwrap.ErrTimeout},
			{"tool broken failed: disk not mounted", boom},
			{`check_disk ok {"n":4}`, nil},
			{"tool nope does not exist", toolwrap.ErrUnknownTool},
		}
		for i, w := range want {
			if res[i].Content != w.content {
				t.Errorf("result %d: %q, want %q", i, res[i].Content, w.content)
			}
			if (w.is == nil) != (res[i].Err == nil) || w.is != nil && !errors.Is(res[i].Err, w.is) {
				t.Errorf("result %d error %v, want %v", i, res[i].Err, w.is)
			}
		}
		if len(run.Tools()) != 5 {
			t.Errorf("run recorded %d tools, want 5", len(run.Tools()))
		}
		mu.Lock()
		var n, panics int
		for _, e := range events {
			switch e := e.(type) {
			case middleware.ToolFinished:
				n++
			case middleware.PanicRecovered:
				if len(e.Stack) > 0 {
					panics++
				}
			}
		}
		mu.Unlock()
		if n != 5 || panics != 1 {
			t.Errorf("%d ToolFinished events, want 5; %d PanicRecovered with a stack, want 1", n, panics)
		}
	})
}

func TestExecuteFailOnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	ex, _ := toolwrap.New([]toolwrap.Tool{
		{Name: "ok", Call: func(context.Context, string) (string, error) { return "fine", nil }},
		{Name: "bad", Call: func(context.Context, string) (string, error) { return "", boom }},
	}, toolwrap.Config{FailOnError: true, MaxParallel: 2})
	res, err := ex.Execute(t.Context(), calls("ok", "bad"))
	var te *toolwrap.Error
	if !errors.As(err, &te) || te.Tool != "bad" || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want *Error for bad wrapping boom", err)
	}
	if res[0].Content != "fine" {
		t.Errorf("results not returned with the error: %+v", res)
	}
}

func TestExecuteRunDeadlineCancelsEverything(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		ex, _ := toolwrap.New([]toolwrap.Tool{
			sleepTool("a", time.Hour, &log, toolwrap.Meta{}),
			sleepTool("b", time.Hour, &log, toolwrap.Meta{}),
		}, toolwrap.Config{MaxParallel: 2})
		runErr := errors.New("run deadline")
		ctx, cancel := context.WithTimeoutCause(t.Context(), 5*time.Second, runErr)
		defer cancel()
		start := time.Now()
		res, err := ex.Execute(ctx, calls("a", "b", "a"))
		if !errors.Is(err, runErr) {
			t.Fatalf("err = %v, want the run's cause", err)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("took %v, want 5s", got)
		}
		for i, r := range res {
			if r.Err == nil {
				t.Errorf("result %d has no error", i)
			}
		}
	})
}

func TestExecuteAbandonsToolIgnoringContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "stuck", Meta: toolwrap.Meta{Timeout: time.Second},
			Call: func(context.Context, string) (string, error) { <-release; return "late", nil }}}, toolwrap.Config{})
		res, err := ex.Execute(t.Context(), calls("stuck"))
		if err != nil || !errors.Is(res[0].Err, toolwrap.ErrTimeout) {
			t.Fatalf("res %+v err %v, want a timeout observation", res, err)
		}
		close(release)
		synctest.Wait()
	})
}

func TestToolCacheRunsIdempotentToolOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "dns_lookup", Meta: toolwrap.Meta{Idempotent: true},
			Call: func(_ context.Context, args string) (string, error) {
				runs.Add(1)
				return "10.0.0.1 for " + args, nil
			}},
			{Name: "uptime", Call: func(context.Context, string) (string, error) { runs.Add(100); return "up", nil }},
		}, toolwrap.Config{CacheTTL: time.Minute})
		ctx, run := middleware.StartRun(t.Context(), "r")
		first, _ := ex.Execute(ctx, []middleware.ToolCall{{ID: "1", Name: "dns_lookup", Arguments: `{"host":"db","type":"A"}`}})
		// same arguments, other key order and spacing: canonical key matches
		second, _ := ex.Execute(ctx, []middleware.ToolCall{{ID: "2", Name: "dns_lookup", Arguments: `{ "type":"A", "host":"db" }`}})
		if runs.Load() != 1 {
			t.Fatalf("tool ran %d times, want 1", runs.Load())
		}
		if first[0].Cached || !second[0].Cached || second[0].Content != first[0].Content || second[0].CallID != "2" {
			t.Errorf("first %+v second %+v", first[0], second[0])
		}
		if !run.Tools()[1].Cached {
			t.Error("run does not record the cache hit")
		}
		// other arguments miss
		ex.Execute(ctx, []middleware.ToolCall{{ID: "3", Name: "dns_lookup", Arguments: `{"host":"web"}`}})
		if runs.Load() != 2 {
			t.Errorf("tool ran %d times, want 2", runs.Load())
		}
		// TTL expiry
		<-time.After(time.Minute)
		ex.Execute(ctx, []middleware.ToolCall{{ID: "4", Name: "dns_lookup", Arguments: `{"host":"db","type":"A"}`}})
		if runs.Load() != 3 {
			t.Errorf("after the TTL the tool ran %d times in all, want 3", runs.Load())
		}
		// non-idempotent tools are never cached
		ex.Execute(ctx, calls("uptime"))
		ex.Execute(ctx, calls("uptime"))
		if runs.Load() != 203 {
			t.Errorf("runs = %d, want 203 (uptime not cached)", runs.Load())
		}
	})
}

func TestNewRejectsBadTools(t *testing.T) {
	t.Parallel()
	f := func(context.Context, string) (string, error) { return "", nil }
	for _, tools := range [][]toolwrap.Tool{
		{{Name: "", Call: f}},
		{{Name: "a"}},
		{{Name: "a", Call: f}, {Name: "a", Call: f}},
	} {
		if _, err := toolwrap.New(tools, toolwrap.Config{}); err == nil {
			t.Errorf("New(%v) accepted", tools)
		}
	}
}

// TestPanicInTheExecutorsWorkIsACallError: an observer that panics while
// the executor reports a call (on a worker goroutine, or in a direct
// group) fails that call with an error matching middleware.ErrPanic; the
// process and the other calls go on.
func TestPanicInTheExecutorsWorkIsACallError(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{2, 3} { // a worker pool; a direct group (every call at once)
		ok := func(context.Context, string) (string, error) { return "fine", nil }
		ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "a", Call: ok}, {Name: "bad", Call: ok}},
			toolwrap.Config{MaxParallel: workers, Timeout: time.Minute})
		ctx := middleware.WithObserver(t.Context(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if f, isf := e.(middleware.ToolFinished); isf && f.Name == "bad" {
				panic("observer broken")
			}
		}))
		res, err := ex.Execute(ctx, calls("a", "bad", "a"))
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res[1].Err, middleware.ErrPanic) || !errors.Is(res[1].Err, toolwrap.ErrPanic) {
			t.Errorf("%d workers: the call whose report panicked: %+v", workers, res[1])
		}
		if res[0].Err != nil || res[2].Err != nil || res[0].Content != "fine" {
			t.Errorf("%d workers: the other calls: %+v %+v", workers, res[0], res[2])
		}
	}
}

// TestPanicReportingAGivenUpCallIsACallError: an observer that panics
// while the executor reports a call it gave up on in a direct group (at
// its timeout, its tool still running) or a call it did not run
// (toolwrap.ErrNotRun) fails that call with an error matching
// middleware.ErrPanic, as for a call that ran. Before, those reports were
// made on Execute's own goroutine without recovery, and the panic ended
// the caller (the agent's run, the process).
func TestPanicReportingAGivenUpCallIsACallError(t *testing.T) {
	for _, workers := range []int{4, 1} { // a direct group; one call at a time
		t.Run(fmt.Sprintf("max_parallel %d", workers), func(t *testing.T) {
			testPanicReportingAGivenUpCall(t, workers)
		})
	}
}

func testPanicReportingAGivenUpCall(t *testing.T, workers int) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		deaf := func(context.Context, string) (string, error) { <-release; return "late", nil }
		ok := func(context.Context, string) (string, error) { return "fine", nil }
		ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "stuck", Call: deaf}, {Name: "a", Call: ok},
			{Name: "deploy", Call: ok, Meta: toolwrap.Meta{SideEffects: true}}},
			toolwrap.Config{MaxParallel: workers, Timeout: time.Second})
		var deployed bool
		ctx := middleware.WithObserver(t.Context(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if f, isf := e.(middleware.ToolFinished); isf && f.Err != nil {
				panic("observer broken")
			} else if isf && f.Name == "deploy" {
				deployed = true
			}
		}))
		var res []toolwrap.Result
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("Execute panicked: %v", v)
				}
			}()
			res, err = ex.Execute(ctx, calls("stuck", "a", "deploy"))
		}()
		close(release)
		synctest.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 3 {
			t.Fatalf("%d results", len(res))
		}
		for _, i := range []int{0, 2} {
			if !errors.Is(res[i].Err, middleware.ErrPanic) || res[i].Content == "" {
				t.Errorf("call %s, whose report panicked: %+v", res[i].Name, res[i])
			}
		}
		if deployed {
			t.Error("deploy ran beside the call given up on, still running, whose report panicked")
		}
		if res[1].Err != nil || res[1].Content != "fine" {
			t.Errorf("the other call: %+v", res[1])
		}
	})
}
