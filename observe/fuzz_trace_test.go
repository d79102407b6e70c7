package observe_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// FuzzReplayTrace: a trace file is input from outside (`tokenwise replay`
// reads whatever file it is given). Whatever its lines, reading, replaying
// it under a policy, forecasting from the replay and reporting its runs
// return results or errors, never a panic, and the replay's sums are
// consistent: no negative cost, usage or count.
func FuzzReplayTrace(f *testing.F) {
	b, err := os.ReadFile("../examples/traces/devops.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	for i := 0; i+3 <= len(lines) && i < 30; i += 3 {
		f.Add(strings.Join(lines[i:i+3], "\n"))
	}
	f.Add(`{"v":1,"run":"r","request":{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":-5,"n":-3},"response":{"model":"gpt-4o","message":{"role":"assistant","content":"y"},"usage":{"input_tokens":-10,"output_tokens":9223372036854775807}},"cost_usd_pico":-1,"latency_ms":-1}`)
	pol, err := policies.LoadFile("../examples/policies/devops.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, trace string) {
		w := time.AfterFunc(10*time.Second, func() { panic("replay of a trace still running after 10 s") })
		defer w.Stop()
		recs, err := observe.ReadTrace(strings.NewReader(trace))
		if err != nil || len(recs) == 0 || len(recs) > 50 {
			return
		}
		res, err := observe.Replay(context.Background(), pol, recs, observe.ReplayOptions{})
		if err != nil {
			return
		}
		if res.CostPico < 0 || res.SavedPico < 0 || res.Usage.InputTokens < 0 || res.Usage.OutputTokens < 0 || res.Failed > res.Calls {
			t.Fatalf("replay sums: cost %d saved %d usage %+v failed %d of %d", res.CostPico, res.SavedPico, res.Usage, res.Failed, res.Calls)
		}
		for _, run := range res.Runs {
			_ = observe.Report(run)
			if _, err := observe.ReportJSON(run); err != nil {
				t.Fatalf("report of a replayed run: %v", err)
			}
		}
		if fc, err := observe.ForecastReplay(pol, recs, res, observe.ForecastOptions{RunsPerDay: 1000}); err == nil && fc == nil {
			t.Fatal("no forecast and no error")
		}
		if fc, err := observe.ForecastReplay(pol, recs, res, observe.ForecastOptions{}); err == nil && fc == nil {
			t.Fatal("no forecast and no error")
		}
	})
}
