package main

import (
	"bytes"
	"context"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The example runs the same task end to end on the embedded scripted
// server under the four policies, through both agents: every run gets the
// same answer, every tool call is printed, and the comparison lists each
// policy's total with its saving against gpt-4o only — figures that must
// agree with the run reports (they are measured, not written).
func TestDevOpsAgentComparesFourPolicies(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "both", task: "I'm out of disk space. Sort it out."}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	// 4 scenarios × 2 agents, scenario d twice: 10 runs, 10 identical answers.
	if n := strings.Count(s, "answer: Your disk was 95% full"); n != 10 {
		t.Errorf("want 10 final answers, got %d", n)
	}
	for _, want := range []string{
		"a) gpt-4o only", "b) stage routing (policy default)", "c) cheap loop, final answer by gpt-4o", "d) c + cache, question asked twice",
		"    tool check_disk", "    tool check_memory", "    tool read_logs", "    tool read_artifact", "    tool clean_logs",
		"tools: check_disk, check_memory (parallel) → read_logs → read_artifact → clean_logs",
		"regenerated the final answer of gpt-4o-mini with gpt-4o",
		"cache hit, saved $",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(s, "    tool "); n != 50 {
		t.Errorf("%d tool lines, want 50 (5 per run)", n)
	}

	// The comparison's totals are the sums of the run reports' costs.
	runCost := map[string]int64{}
	for _, m := range regexp.MustCompile(`(?m)^run ([a-d])/\S+: \d+ calls?, .*?, \$([0-9.]+), llm`).FindAllStringSubmatch(s, -1) {
		runCost[m[1]] += usd(t, m[2])
	}
	rows := regexp.MustCompile(`(?m)^([a-d])\) .*?\s(\d+)\s+(\d+)\s+(\S.*?)\s+(\d+)\s+\$([0-9.]+)\s+\$([0-9.]+)\s+(-|-?\d+%)$`).FindAllStringSubmatch(s, -1)
	if len(rows) != 4 {
		t.Fatalf("comparison has %d rows, want 4:\n%s", len(rows), s[strings.LastIndex(s, "########"):])
	}
	total := map[string]int64{}
	saving := map[string]int{}
	for _, r := range rows {
		total[r[1]] = usd(t, r[6])
		if r[8] != "-" {
			saving[r[1]], _ = strconv.Atoi(strings.TrimSuffix(r[8], "%"))
		}
		if total[r[1]] != runCost[r[1]] {
			t.Errorf("scenario %s: comparison says %d p$, its run reports sum to %d p$", r[1], total[r[1]], runCost[r[1]])
		}
	}
	// What the levers do, whatever the exact figures: stage routing costs
	// less than gpt-4o only, the cheap loop much less, the cache less again
	// per question.
	if !(total["b"] < total["a"] && total["c"] < total["b"] && total["d"]/2 < total["c"]) {
		t.Errorf("costs a %d, b %d, c %d, d %d per two questions", total["a"], total["b"], total["c"], total["d"])
	}
	if !(saving["b"] > 0 && saving["c"] > saving["b"] && saving["d"] >= saving["c"]) {
		t.Errorf("savings %v", saving)
	}
	if !strings.Contains(s, "the cache answered 4 calls of the repeated question") {
		t.Error("the repeated question was not partly answered from the cache")
	}
}

func usd(t *testing.T, s string) int64 {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("not an amount: %q", s)
	}
	r.Mul(r, big.NewRat(1_000_000_000_000, 1))
	if !r.IsInt() {
		t.Fatalf("%q is finer than a pico-dollar", s)
	}
	return r.Num().Int64()
}

func TestDevOpsAgentRejectsUnknownMode(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, config{mode: "nope"})
	if err == nil || !strings.Contains(err.Error(), "unknown -mode") {
		t.Fatalf("err = %v", err)
	}
}

// The scenarios derive from the policy given with -policy: the example
// policy directory's devops team works too.
func TestDevOpsAgentWithExamplePolicy(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{mode: "openai", task: "I'm out of disk space. Sort it out.",
		policyFile: "../policies/devops.yaml"}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "b) stage routing (policy devops)") {
		t.Errorf("output:\n%s", out.String())
	}
}
