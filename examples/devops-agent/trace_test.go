package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// The example writes a trace of scenario b with -trace; replaying it
// offline through the same policy reproduces the cost the example printed
// for that scenario.
func TestTraceReplayReproducesTheCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "openai", task: "I'm out of disk space. Sort it out.", traceFile: path}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^b\) .*?\s\$([0-9.]+)\s+\$[0-9.]+\s+-?\d+%$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no cost for scenario b in the output:\n%s", out.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := observe.ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("trace has %d records, want the go-openai loop's 5 calls", len(recs))
	}
	res, err := observe.Replay(context.Background(), policies.Default(), recs, observe.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.CostPico, usd(t, m[1]); got != want || res.Failed != 0 {
		t.Errorf("replay costs %d p$ (%d failed), the example printed %d p$", got, res.Failed, want)
	}
	if res.CostPico != res.RecordedCost {
		t.Errorf("replay %d p$, recorded %d p$", res.CostPico, res.RecordedCost)
	}
}
