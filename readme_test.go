// Package readme_test keeps README.md true: the commands of its sh blocks
// run, its policies load, and the repository's doc comments name what exists.
package readme_test

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/policies"
)

// blocks returns the bodies of README's fenced code blocks of language lang.
func blocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

// trailingComment is a shell comment after a command.
var trailingComment = regexp.MustCompile(`\s+#.*$`)

// TestReadmeCommandsRun runs every command of README's sh blocks from the
// repository root, without an API key (the examples then use the embedded
// scripted server), and wants exit 0 from each. `go test` itself is
// skipped (it would run this test again). Each command is bounded.
func TestReadmeCommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs README's commands")
	}
	var cmds []string
	for _, b := range blocks(t, "sh") {
		for _, line := range strings.Split(b, "\n") {
			cmd := strings.TrimSpace(trailingComment.ReplaceAllString(line, ""))
			if cmd == "" || strings.HasPrefix(cmd, "#") {
				continue
			}
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) < 5 {
		t.Fatalf("found only %d commands in README.md: %q", len(cmds), cmds)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENAI_") {
			env = append(env, kv)
		}
	}
	// Commands may write files (a plot, trained weights) into the working
	// tree: remove what was not there before, so a test run leaves the
	// checkout as it found it.
	before := map[string]bool{}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		before[e.Name()] = true
	}
	t.Cleanup(func() {
		after, _ := os.ReadDir(".")
		for _, e := range after {
			if !before[e.Name()] {
				os.RemoveAll(e.Name())
			}
		}
	})
	ran := 0
	for _, cmd := range cmds {
		if strings.HasPrefix(cmd, "go test") {
			continue
		}
		if strings.ContainsAny(cmd, "><|;&`$") {
			t.Errorf("README command %q redirects, pipes or expands: show commands that only print", cmd)
			continue
		}
		t.Run(cmd, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, "sh", "-c", cmd)
			c.Env = env
			out, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			if len(strings.TrimSpace(string(out))) == 0 {
				t.Errorf("%s printed nothing", cmd)
			}
		})
		ran++
	}
	t.Logf("ran %d README commands", ran)
}

// Every policy README shows in a yaml block loads.
func TestReadmePoliciesLoad(t *testing.T) {
	bs := blocks(t, "yaml")
	if len(bs) == 0 {
		t.Fatal("no yaml block in README.md")
	}
	for i, b := range bs {
		if !strings.HasPrefix(b, "version:") && !strings.Contains(b, "\nversion:") {
			b = "version: 1\n" + b // a fragment showing one section
		}
		if _, err := policies.LoadBytes([]byte(b), "README.md yaml block"); err != nil {
			t.Errorf("block %d: %v\n%s", i+1, err, b)
		}
	}
}

// TestReadmeNamesTheFuzzTargetsCIRuns: README's paragraph of fuzz targets
// says `.ci/run` runs each for 15 s; it names exactly the targets .ci/run
// fuzzes, each in the package .ci/run fuzzes it in. It once left out three
// that .ci/run ran (the differential checks against go-openai's own reading
// of answers, chunks and whole calls).
func TestReadmeNamesTheFuzzTargetsCIRuns(t *testing.T) {
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]string{} // target → package
	for _, m := range regexp.MustCompile(`(?m)^fuzz (Fuzz\w+) (\S+)`).FindAllStringSubmatch(string(ci), -1) {
		runs[m[1]] = m[2]
	}
	if len(runs) < 10 {
		t.Fatalf(".ci/run fuzzes %d targets", len(runs))
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	para, _, _ := strings.Cut(string(readme[strings.Index(string(readme), "Fuzz targets cover"):]), "\n\n")
	para = strings.Join(strings.Fields(para), " ")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`(Fuzz\\w+)`").FindAllStringSubmatch(para, -1) {
		named[m[1]] = true
		if _, ok := runs[m[1]]; !ok {
			t.Errorf("README names %s among the targets .ci/run fuzzes; .ci/run does not", m[1])
		}
	}
	for target, pkg := range runs {
		if !named[target] {
			t.Errorf(".ci/run fuzzes %s (%s); README's list of fuzz targets leaves it out", target, pkg)
			continue
		}
		// The package README gives it: the first `./pkg` after its name.
		after := para[strings.Index(para, "`"+target+"`"):]
		if m := regexp.MustCompile("`(\\./[\\w/]+)`").FindStringSubmatch(after); m == nil || m[1] != pkg {
			t.Errorf("README puts %s in %v; .ci/run fuzzes it in %s", target, m, pkg)
		}
	}
}

// TestReadmePackagesTableNamesEveryPackage: the Packages table of README
// names every package of the repository, in its first column (a row of
// `llmwrap/*` or `examples/...` names the packages under it), or as a
// package its parent's row presents (`openaitest` in adapters/openai's).
// It once left out three internal helpers (sendtrack, ssesniff, wiregen).
func TestReadmePackagesTableNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(readme[strings.Index(string(readme), "\n## Packages\n"):])
	sec = sec[:strings.Index(sec[1:], "\n## ")+1]
	rows := map[string]string{} // a name of the first column → its row
	for line := range strings.Lines(sec) {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = line
		}
	}
	if len(rows) < 10 {
		t.Fatalf("README's Packages table has %d names", len(rows))
	}
	dirs := map[string]bool{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules", "docs":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") && filepath.Dir(path) != "." {
			dirs[filepath.ToSlash(filepath.Dir(path))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range dirs {
		if _, ok := rows[dir]; ok {
			continue
		}
		parent := filepath.ToSlash(filepath.Dir(dir))
		if _, ok := rows[parent+"/*"]; ok {
			continue
		}
		if strings.HasPrefix(dir, "examples/") {
			if _, ok := rows["examples/..."]; ok {
				continue
			}
		}
		if strings.Contains(rows[parent], "`"+filepath.Base(dir)+"`") {
			continue
		}
		t.Errorf("README's Packages table does not name the package %s", dir)
	}
}

// TestReadmeTestCommandRunsInAPathWithASpace: README's test command finds
// every package of the workspace from a checkout whose path has a space
// (macOS's "~/Documents/My Projects/..."). It once expanded the modules'
// directories, `$(go list -m -f '{{.Dir}}/...')`, which the shell splits at
// the space: every pattern matched nothing, and the suite did not run. The
// command is run as README shows it, with go list in place of go test.
func TestReadmeTestCommandRunsInAPathWithASpace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the workspace")
	}
	var cmd string
	for _, b := range blocks(t, "sh") {
		for line := range strings.Lines(b) {
			if c := strings.TrimSpace(trailingComment.ReplaceAllString(line, "")); strings.HasPrefix(c, "go test -race ") {
				cmd = c
			}
		}
	}
	if cmd == "" {
		t.Fatal("README shows no `go test -race` command")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "My Projects")
	if err := os.Symlink(root, dir); err != nil {
		t.Fatal(err)
	}
	// The test flags before the packages (-timeout 30m) are go test's, not
	// go list's.
	args := strings.TrimPrefix(cmd, "go test -race ")
	for strings.HasPrefix(args, "-timeout ") {
		_, args, _ = strings.Cut(strings.TrimPrefix(args, "-timeout "), " ")
	}
	list := "go list " + args
	c := exec.CommandContext(t.Context(), "sh", "-c", list)
	c.Dir = dir
	c.Env = append(os.Environ(), "PWD="+dir)
	out, err := c.CombinedOutput()
	if err != nil || strings.Contains(string(out), "matched no packages") {
		t.Fatalf("%s in %q: %v\n%s", list, dir, err, out)
	}
	for _, want := range []string{"github.com/tokenwise/tokenwise\n", "github.com/tokenwise/tokenwise/gateway\n", "github.com/tokenwise/tokenwise/e2e\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s in %q lists no %s", list, dir, strings.TrimSpace(want))
		}
	}
}
