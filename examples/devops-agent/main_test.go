package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The example runs end to end on the embedded scripted server through both
// agents: each makes five calls (check_disk + check_memory in one turn,
// read_logs, read_artifact, clean_logs, answer) and prints the report, which
// shows the wall time the parallel turn saved and the artifact's savings.
func TestDevOpsAgentRunsOnScriptedServer(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "both", task: "I'm out of disk space. Sort it out."}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"== langchaingo agent", "== go-openai loop",
		"run langchaingo-agent: 5 calls", "run go-openai-loop: 5 calls",
		"parallel saved", "artifacts: 1, ~",
		"freed 20GB",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "answer: Your disk was 95% full"); n != 2 {
		t.Errorf("want 2 final answers, got %d:\n%s", n, s)
	}
}

func TestDevOpsAgentRejectsUnknownMode(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, config{mode: "nope"})
	if err == nil || !strings.Contains(err.Error(), "unknown -mode") {
		t.Fatalf("err = %v", err)
	}
}
