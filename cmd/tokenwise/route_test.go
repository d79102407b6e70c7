package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const examples = "../../examples/routing/"

// apgrOf reads the scorer's and the random band's APGR from a report.
func apgrOf(t *testing.T, out string) (scorer, randomHi float64) {
	t.Helper()
	m := regexp.MustCompile(`APGR ([0-9.]+)\s+random [0-9.]+ \[[0-9.]+–([0-9.]+)\]`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no APGR line in:\n%s", out)
	}
	s, _ := strconv.ParseFloat(m[1], 64)
	hi, _ := strconv.ParseFloat(m[2], 64)
	return s, hi
}

// The README's keyword policy on the bundled data: one operating point,
// inside the random band, with its cost saving; and the SVG plot.
func TestRouteEvalKeywordPolicyCommand(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "plot.svg")
	code, out, stderr := runCmd("route", "eval", "--policy", examples+"keywords.yaml", "--svg", svg, examples+"test.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"1000 queries, 6 categories", "weak   gpt-4o-mini", "strong gpt-4o", "CPT(50%)", "CPT(80%)",
		"policy's own routing:", "INSIDE the random band", "saving", "plot written to"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if s, hi := apgrOf(t, out); s > hi {
		t.Errorf("keyword rules APGR %.3f above random (95th percentile %.3f)", s, hi)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, new(struct{})); err != nil || !strings.Contains(string(b), "<svg") {
		t.Fatalf("plot is not SVG: %v", err)
	}
}

// Train on the bundled training file, evaluate the weights on the test
// file (above random) and transferred to the shifted file (flagged), then
// through a policy naming the weights by a relative path.
func TestRouteTrainThenEvalCommand(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(dir, "router.bin")
	code, out, stderr := runCmd("route", "train", "--out", weights, "--bits", "14", examples+"train.jsonl")
	if code != 0 {
		t.Fatalf("train exit %d: %s", code, stderr)
	}
	for _, want := range []string{"1000 queries", "← chosen", "out-of-fold APGR", "threshold", "learned: {weights: "} {
		if !strings.Contains(out, want) {
			t.Errorf("train output lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = runCmd("route", "eval", "--weights", weights, "--transfer", examples+"shifted.jsonl", examples+"test.jsonl")
	if code != 0 {
		t.Fatalf("eval exit %d: %s", code, stderr)
	}
	if s, hi := apgrOf(t, out); s < hi+0.05 {
		t.Errorf("learned APGR %.3f not clearly above random (95th percentile %.3f)", s, hi)
	}
	if !strings.Contains(out, "does NOT transfer") {
		t.Errorf("transfer to another domain not flagged:\n%s", out)
	}
	// A policy beside the weights names them relatively.
	pol := filepath.Join(dir, "learned.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nrouting:\n  default: gpt-4o\n  learned: {weights: router.bin, weak: gpt-4o-mini}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCmd("route", "eval", "--policy", pol, examples+"test.jsonl")
	if code != 0 {
		t.Fatalf("policy eval exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "above the random band") {
		t.Errorf("learned policy's operating point not above random:\n%s", out)
	}
}

func TestRouteEvalBaselinesCommand(t *testing.T) {
	for _, b := range []string{"length", "category"} {
		code, out, stderr := runCmd("route", "eval", "--baseline", b, "--target", "0.8", examples+"test.jsonl")
		if code != 0 || !strings.Contains(out, b) || !strings.Contains(out, "at PGR target 0.80") {
			t.Errorf("baseline %s: exit %d\n%s%s", b, code, out, stderr)
		}
	}
}

func TestRouteCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"prompt":"a","weak_correct":true,"strong_correct":true}`+"\n"+`{"prompt":"b","weak_correct":true}`+"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"route"}, 2, "usage"},
		{[]string{"route", "eval", examples + "test.jsonl"}, 2, "usage"},
		{[]string{"route", "eval", "--baseline", "length", "--weights", "w.bin", examples + "test.jsonl"}, 2, "usage"},
		{[]string{"route", "eval", "--baseline", "vibes", examples + "test.jsonl"}, 2, "unknown baseline"},
		{[]string{"route", "eval", "--baseline", "length", bad}, 1, bad + ":2: no strong_correct nor strong_score"},
		{[]string{"route", "eval", "--weights", bad, examples + "test.jsonl"}, 1, "not a valid weights file"},
		{[]string{"route", "eval", "--baseline", "length", "--weak", "gpt-9", examples + "test.jsonl"}, 1, `no price for the weak model "gpt-9"`},
		{[]string{"route", "train", examples + "test.jsonl"}, 2, "usage"},
		{[]string{"route", "train", "--out", filepath.Join(dir, "w.bin"), "--label", "vibes", examples + "test.jsonl"}, 2, "unknown label"},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// The RouteLLM extract (600 MMLU questions) reads whole, and the keyword
// policy bundled for it routes no better than random routers do.
func TestRouteEvalRouteLLMExtract(t *testing.T) {
	const dir = examples + "routellm/"
	code, out, stderr := runCmd("route", "eval", "--policy", dir+"keywords.yaml", "--strong", "gpt-4o", dir+"mmlu6.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// 324 and 379 of the 600 answers are correct in the source CSVs.
	for _, want := range []string{"600 queries, 6 categories", "gpt-4o-mini accuracy 54.0%", "gpt-4o accuracy 63.2%", "policy's own routing"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if s, hi := apgrOf(t, out); s > hi {
		t.Errorf("keyword rules APGR %.3f above random (95th percentile %.3f)", s, hi)
	}
	for _, f := range []string{"mmlu6_train.jsonl", "mmlu6_test.jsonl"} {
		if code, out, stderr := runCmd("route", "eval", "--baseline", "category", "--routers", "20", dir+f); code != 0 || !strings.Contains(out, "300 queries, 6 categories") {
			t.Errorf("%s: exit %d\n%s%s", f, code, out, stderr)
		}
	}
}

// --policy takes a directory and a team, as replay does.
func TestRouteEvalPolicyDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\nrouting:\n  default: gpt-4o\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "devops.yaml"), []byte("version: 1\nextends: default.yaml\nrouting:\n  rules:\n    - {name: easy, when: {keywords: [simple, quick]}, model: gpt-4o-mini}\n"), 0o644)
	code, out, stderr := runCmd("route", "eval", "--policy", dir, "--team", "devops", "--routers", "20", examples+"test.jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"(team devops)", "policy's own routing", "weak   gpt-4o-mini"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
