package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// The example writes a trace with -trace; replaying it offline through the
// same policy reproduces the example's routed cost figure, run by run.
func TestTraceReplayReproducesTheCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "both", task: "I'm out of disk space. Sort it out.", traceFile: path}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(\S+)\s+routed (\$[0-9.]+)`).FindAllStringSubmatch(out.String(), -1) {
		want[m[1]] = m[2]
	}
	if len(want) != 2 {
		t.Fatalf("no routed cost figures in the output:\n%s", out.String())
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
	if len(recs) != 10 {
		t.Fatalf("trace has %d records, want 10", len(recs))
	}
	res, err := observe.Replay(context.Background(), policies.Default(), recs, observe.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Runs {
		if got := middleware.FormatPico(r.Totals().CostPico); got != want[r.ID()] {
			t.Errorf("run %s: replay costs %s, the example printed %s", r.ID(), got, want[r.ID()])
		}
	}
	if res.CostPico != res.RecordedCost || res.Failed != 0 {
		t.Errorf("replay %d p$ (%d failed), recorded %d p$", res.CostPico, res.Failed, res.RecordedCost)
	}
}
