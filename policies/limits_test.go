package policies

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileShapes are documents at MaxFileSize in the shapes that cost the
// YAML parser the most: deep flow and block nesting, and wide mappings,
// lists and anchors.
func hostileShapes() map[string]string {
	fill := func(unit string) string { return strings.Repeat(unit, MaxFileSize/len(unit)) }
	var stair strings.Builder
	for i := 0; stair.Len() < MaxFileSize-2*i-4; i++ {
		stair.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	var crKeys strings.Builder
	for i := 0; crKeys.Len() < MaxFileSize-16; i++ {
		fmt.Fprintf(&crKeys, "k%d: 1\r", i) // a lone \r breaks lines too
	}
	return map[string]string{
		"wide mapping, CR":  crKeys.String(),
		"deep flow list":    fill("["),
		"deep flow mapping": fill("{a: "),
		"deep block list":   fill("- "),
		"deep indentation":  stair.String(),
		"wide mapping":      fill("ab: 1\n"),
		"wide flow list":    "[" + fill("1,")[2:] + "]",
		"wide anchors":      fill("- &a [1]\n"),
		"wide models":       "version: 1\nmodels:\n" + fill("  m: {input_per_1m: 1}\n")[40:],
	}
}

// TestHostileShapesAreRefusedBeforeTheParser: each hostile shape at the
// size limit is an error matching ErrTooDeep or ErrTooLarge, with a
// position, from the check that runs before the parser.
func TestHostileShapesAreRefusedBeforeTheParser(t *testing.T) {
	t.Parallel()
	for name, doc := range hostileShapes() {
		if len(doc) > MaxFileSize {
			t.Fatalf("%s: %d bytes, over the limit", name, len(doc))
		}
		p := prescan([]byte(doc), "p.yaml")
		if p == nil {
			t.Errorf("%s: prescan let it through", name)
			continue
		}
		_, err := LoadBytes([]byte(doc), "p.yaml")
		if !errors.Is(err, ErrTooDeep) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooDeep or ErrTooLarge", name, err)
		}
		if p.Line == 0 {
			t.Errorf("%s: %v has no line", name, p)
		}
	}
}

// TestLimitsLeaveRealPoliciesAlone: every policy file of the repository
// passes the checks that run before the parser.
func TestLimitsLeaveRealPoliciesAlone(t *testing.T) {
	t.Parallel()
	for _, path := range repoPolicyFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if p := prescan(b, path); p != nil {
			t.Errorf("%v", p)
		}
	}
}

// TestLimitsAreExact: a document at each limit is read; one past it is
// refused.
func TestLimitsAreExact(t *testing.T) {
	t.Parallel()
	nest := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%sa:\n", strings.Repeat(" ", i))
		}
		return b.String()
	}
	flow := func(n int) string { return "x: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n" }
	wide := func(n int) string {
		var b strings.Builder
		for i := range n / maxWidth {
			fmt.Fprintf(&b, "k%d:\n%s", i, strings.Repeat("  - 1\n", maxWidth-1))
		}
		return b.String()
	}
	width := func(n int) string { return "m:\n" + strings.Repeat("  - 1\n", n) }
	for _, tt := range []struct {
		name     string
		at, past string
		want     error
	}{
		{"nesting", nest(maxNesting), nest(maxNesting + 1), ErrTooDeep},
		{"flow", flow(maxFlowOpens), flow(maxFlowOpens + 1), ErrTooDeep},
		{"entries", wide(maxEntries), wide(maxEntries) + "x: 1\n", ErrTooLarge},
		{"width", width(maxWidth), width(maxWidth + 1), ErrTooLarge},
	} {
		if p := prescan([]byte(tt.at), "p.yaml"); p != nil {
			t.Errorf("%s at the limit: %v", tt.name, p)
		}
		if p := prescan([]byte(tt.past), "p.yaml"); p == nil || !errors.Is(p.Err, tt.want) {
			t.Errorf("%s past the limit: %v, want %v", tt.name, p, tt.want)
		}
	}
}

// repoPolicyFiles lists the policy files of the repository: this package's
// and those of the examples and the command.
func repoPolicyFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "fuzz") {
			return filepath.SkipDir
		}
		if !d.IsDir() && policyFile(d.Name()) && (strings.HasSuffix(d.Name(), ".yaml") || strings.HasSuffix(d.Name(), ".yml")) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no policy files found")
	}
	return out
}

// worstWithinLimits are documents just within every limit, in the shapes
// the parser finds hardest: what any accepted input can cost.
func worstWithinLimits() map[string]string {
	var nest strings.Builder
	for i := range maxNesting {
		fmt.Fprintf(&nest, "%sa:\n", strings.Repeat(" ", i))
	}
	// Ten mappings of maxWidth keys: the parser's cost grows with the
	// square of a mapping's width.
	var models strings.Builder
	for i := range maxEntries/maxWidth - 1 {
		fmt.Fprintf(&models, "m%d:\n", i)
		for j := range maxWidth - 1 {
			fmt.Fprintf(&models, "  k%d: 1\n", j)
		}
	}
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [*a%d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d]\n", i, i, i-1)
	}
	// An alias bomb that decodes: rules that all point at one rule whose
	// keywords are a wide list.
	var rules strings.Builder
	rules.WriteString("version: 1\nk: &k [" + strings.Repeat("a, ", maxWidth-2) + "a]\nrouting:\n  rules:\n")
	rules.WriteString("    - &r {name: a, when: {keywords: *k}, model: gpt-4o}\n")
	rules.WriteString(strings.Repeat("    - *r\n", maxWidth-1))
	return map[string]string{
		"rule bomb":  rules.String(),
		"long key":   strings.Repeat("k", MaxFileSize-4) + ": 1",
		"deep block": nest.String(),
		"deep flow":  "x: " + strings.Repeat("[", maxFlowOpens) + strings.Repeat("]", maxFlowOpens) + "\n",
		"wide maps":  models.String(),
		"wide list":  "x: [" + strings.Repeat("1, ", maxEntries-2) + "1]\n",
		"alias bomb": bomb.String(),
	}
}

// TestWorstWithinLimitsPassTheChecks keeps the benchmarks honest: their
// documents reach the parser.
func TestWorstWithinLimitsPassTheChecks(t *testing.T) {
	t.Parallel()
	for name, doc := range worstWithinLimits() {
		if p := prescan([]byte(doc), "p.yaml"); p != nil {
			t.Errorf("%s: %v", name, p)
		}
	}
}

// BenchmarkLoadDeep loads the deepest documents within the limits, and a
// deep document at MaxFileSize (refused before the parser).
func BenchmarkLoadDeep(b *testing.B) {
	docs := worstWithinLimits()
	shapes := hostileShapes()
	for _, name := range []string{"deep block", "deep flow"} {
		benchLoad(b, name+" within limits", docs[name])
	}
	benchLoad(b, "deep flow 1MiB", shapes["deep flow list"])
	benchLoad(b, "deep block 1MiB", shapes["deep block list"])
}

// BenchmarkLoadWide loads the widest documents within the limits, and a
// wide document at MaxFileSize (refused before the parser).
func BenchmarkLoadWide(b *testing.B) {
	docs := worstWithinLimits()
	shapes := hostileShapes()
	for _, name := range []string{"wide maps", "wide list", "alias bomb", "rule bomb", "long key"} {
		benchLoad(b, name+" within limits", docs[name])
	}
	benchLoad(b, "wide flow 1MiB", shapes["wide flow list"])
	benchLoad(b, "wide mapping 1MiB", shapes["wide mapping"])
}

func benchLoad(b *testing.B, name, doc string) {
	b.Run(name, func(b *testing.B) {
		src := []byte(doc)
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			_, _ = LoadBytes(src, "p.yaml")
		}
	})
}

// mergeBomb is a document of levels anchored mappings, each merging the
// one before it refs times: refs^levels keys once merges are expanded,
// from a few hundred bytes. m0 has keys keys.
func mergeBomb(levels, refs, keys int) string {
	var b strings.Builder
	b.WriteString("version: 1\nmodels:\n  m0: &m0\n    provider: x\n")
	for k := 1; k < keys; k++ {
		fmt.Fprintf(&b, "    k%d: 1\n", k)
	}
	for i := 1; i <= levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), refs), ", ")
		fmt.Fprintf(&b, "  m%d: &m%d {<<: [%s]}\n", i, i, refs)
	}
	return b.String()
}

// loadWithin runs LoadBytes and fails the test if it has not returned
// within a generous watchdog (a hang would otherwise last until the test
// binary's timeout).
func loadWithin(t *testing.T, doc string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := LoadBytes([]byte(doc), "bomb.yaml"); done <- err }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("LoadBytes of a %d-byte merge-key bomb still running after 30s", len(doc))
		return nil
	}
}

// TestMergeKeyBombIsBounded: merge keys (<<) of anchors merged into one
// another cost the size of the file, not the number of keys the merges
// would expand to. The ten-level, ten-reference bomb (715 bytes, 10^10 keys
// expanded naively) loads at once, each mapping's keys listed once; a bomb
// whose merges bring in more keys than the decoder's budget is ErrTooLarge
// at the merge's line.
func TestMergeKeyBombIsBounded(t *testing.T) {
	t.Parallel()
	doc := mergeBomb(10, 10, 1)
	if p := prescan([]byte(doc), "bomb.yaml"); p != nil {
		t.Fatalf("the bomb should pass prescan: %v", p)
	}
	if err := loadWithin(t, doc); errors.Is(err, ErrTooLarge) {
		t.Errorf("the small bomb: %v, want its keys listed once, not ErrTooLarge", err)
	}

	// 1,000 keys merged ten times per level: 10,000 keys per level, past
	// the budget at the fourth.
	doc = mergeBomb(10, 10, maxWidth)
	if p := prescan([]byte(doc), "bomb.yaml"); p != nil {
		t.Fatalf("the wide bomb should pass prescan: %v", p)
	}
	err := loadWithin(t, doc)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("the wide bomb: err = %v, want ErrTooLarge", err)
	}
	for _, p := range problemsOf(t, err) {
		if errors.Is(p.Err, ErrTooLarge) && (p.Line == 0 || !strings.Contains(p.Msg, "merge keys")) {
			t.Errorf("problem %v: want a line and the merge keys named", p)
		}
	}
}
