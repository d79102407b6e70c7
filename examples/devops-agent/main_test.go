package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The example runs end to end on the embedded scripted server through both
// agents: each makes three calls (check_disk, clean_logs, answer) and prints
// the report.
func TestDevOpsAgentRunsOnScriptedServer(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "both", task: "I'm out of disk space. Sort it out."}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"== langchaingo agent", "== go-openai loop",
		"run langchaingo-agent: 3 calls", "run go-openai-loop: 3 calls",
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
