package readme_test

import (
	"bufio"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A docSample is a Go fragment shown to users: a README go block, or a
// tab-indented block of a doc comment that declares something with :=.
type docSample struct {
	where string // README.md:LINE or FILE:LINE
	code  string
}

// readmeGoSamples returns README's go blocks with their lines.
func readmeGoSamples(t *testing.T) []docSample {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docSample
	var cur *strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur, start = &strings.Builder{}, n+1
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, docSample{fmt.Sprintf("README.md:%d", start), cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return out
}

// commentGoSamples returns the code blocks of the repository's doc
// comments (lines "//\t...") that are Go statements declaring something
// with := — the usage samples go doc shows; YAML, formulas and output
// examples are left alone.
func commentGoSamples(t *testing.T) []docSample {
	t.Helper()
	var out []docSample
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var cur []string
		start := 0
		flush := func() {
			code := strings.Join(cur, "\n") + "\n"
			if len(cur) > 0 && strings.Contains(code, ":=") {
				if _, err := parseSample(code); err == nil {
					out = append(out, docSample{fmt.Sprintf("%s:%d", path, start), code})
				}
			}
			cur = nil
		}
		for n, line := range strings.Split(string(b), "\n") {
			trimmed := strings.TrimLeft(line, " \t")
			if code, ok := strings.CutPrefix(trimmed, "//\t"); ok {
				if cur == nil {
					start = n + 1
				}
				cur = append(cur, code)
				continue
			}
			if trimmed == "//" && cur != nil {
				cur = append(cur, "") // a blank line inside a block
				continue
			}
			flush()
		}
		flush()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sampleImport maps a package name a sample uses to its import path. The
// openai of a sample is langchaingo's, go-openai's or openai-go's, told
// apart by what the sample calls (see openaiImport).
var sampleImport = map[string]string{
	"context":        "context",
	"errors":         "errors",
	"fmt":            "fmt",
	"http":           "net/http",
	"time":           "time",
	"testing":        "testing",
	"synctest":       "testing/synctest",
	"agents":         "github.com/tmc/langchaingo/agents",
	"chains":         "github.com/tmc/langchaingo/chains",
	"llms":           "github.com/tmc/langchaingo/llms",
	"option":         "github.com/openai/openai-go/v3/option",
	"goopenai":       "github.com/sashabaranov/go-openai",
	"goredis":        "github.com/redis/go-redis/v9",
	"trace":          "go.opentelemetry.io/otel/trace",
	"metric":         "go.opentelemetry.io/otel/metric",
	"twlc":           "github.com/tokenwise/tokenwise/adapters/langchaingo",
	"langchaingo":    "github.com/tokenwise/tokenwise/adapters/langchaingo",
	"twopenai":       "github.com/tokenwise/tokenwise/adapters/openai",
	"openaitest":     "github.com/tokenwise/tokenwise/adapters/openai/openaitest",
	"twredis":        "github.com/tokenwise/tokenwise/adapters/redis",
	"otel":           "github.com/tokenwise/tokenwise/adapters/otel",
	"gateway":        "github.com/tokenwise/tokenwise/gateway",
	"llmwrap":        "github.com/tokenwise/tokenwise/llmwrap",
	"breaker":        "github.com/tokenwise/tokenwise/llmwrap/breaker",
	"budget":         "github.com/tokenwise/tokenwise/llmwrap/budget",
	"cache":          "github.com/tokenwise/tokenwise/llmwrap/cache",
	"fallback":       "github.com/tokenwise/tokenwise/llmwrap/fallback",
	"guard":          "github.com/tokenwise/tokenwise/llmwrap/guard",
	"ratelimit":      "github.com/tokenwise/tokenwise/llmwrap/ratelimit",
	"retry":          "github.com/tokenwise/tokenwise/llmwrap/retry",
	"route":          "github.com/tokenwise/tokenwise/llmwrap/route",
	"timeout":        "github.com/tokenwise/tokenwise/llmwrap/timeout",
	"middleware":     "github.com/tokenwise/tokenwise/middleware",
	"middlewaretest": "github.com/tokenwise/tokenwise/middleware/middlewaretest",
	"observe":        "github.com/tokenwise/tokenwise/observe",
	"policies":       "github.com/tokenwise/tokenwise/policies",
	"sse":            "github.com/tokenwise/tokenwise/sse",
	"toolwrap":       "github.com/tokenwise/tokenwise/toolwrap",
}

// openaiImport says which openai package a sample means by what it calls.
func openaiImport(sels map[string]bool) string {
	switch {
	case sels["DefaultConfig"] || sels["NewClientWithConfig"]:
		return "github.com/sashabaranov/go-openai"
	case sels["NewClient"]:
		return "github.com/openai/openai-go/v3"
	default:
		return "github.com/tmc/langchaingo/llms/openai"
	}
}

// samplePlaceholders are the values samples take as given, with the types
// they have in a program (a sample's ctx, its policy, its chain...).
var samplePlaceholders = map[string]string{
	"ctx":        "context.Context",
	"pol":        "*policies.Policy",
	"key":        "string",
	"chain":      "middleware.Middleware",
	"rdb":        "*goredis.Client",
	"tools":      "[]toolwrap.Tool",
	"myTools":    "[]llmstools.Tool",
	"msg":        "goopenai.ChatCompletionMessage",
	"llm":        "llms.Model",
	"provider":   "middleware.Handler",
	"next":       "middleware.Handler",
	"agent":      "agents.Agent",
	"input":      "string",
	"cfg":        "*gateway.Config",
	"virtualKey": "string",
	"t":          "*testing.T",
	"tp":         "trace.TracerProvider",
	"mp":         "metric.MeterProvider",
	"err":        "error",
}

// parseSample parses a sample's statements as a function body; import
// lines are left out (a sample may show how to import a package).
func parseSample(code string) (*ast.File, error) {
	var body []string
	for line := range strings.Lines(code) {
		if !strings.HasPrefix(strings.TrimSpace(line), "import ") {
			body = append(body, line)
		}
	}
	return parser.ParseFile(token.NewFileSet(), "sample.go", "package p\nfunc f() error {\n"+strings.Join(body, "")+"\nreturn nil\n}\n", 0)
}

// sampleFile turns a sample into a file of package samples: a function with
// the placeholders it uses as its parameters, the sample as its body (each
// name the sample declares used once after it), and the imports it needs.
func sampleFile(s docSample, fn string) (string, error) {
	f, err := parseSample(s.code)
	if err != nil {
		return "", err
	}
	body := f.Decls[0].(*ast.FuncDecl).Body
	aliases := map[string]string{} // import lines of the sample
	for line := range strings.Lines(s.code) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "import "); ok {
			if fs := strings.Fields(rest); len(fs) == 2 {
				aliases[fs[0]] = strings.Trim(fs[1], `"`)
			}
		}
	}
	// The names the sample declares, each at the end of its statement.
	declaredAt := map[string]token.Pos{}
	declaring := map[*ast.Ident]bool{} // the left sides of :=
	var declared []string
	ast.Inspect(body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && as.Tok == token.DEFINE {
			for _, l := range as.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
					declaring[id] = true
					if _, seen := declaredAt[id.Name]; !seen {
						declaredAt[id.Name] = as.End()
					}
				}
			}
		}
		return true
	})
	for _, st := range body.List { // the names of the function's own scope
		if as, ok := st.(*ast.AssignStmt); ok && as.Tok == token.DEFINE {
			for _, l := range as.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name != "_" && !slices.Contains(declared, id.Name) {
					declared = append(declared, id.Name)
				}
			}
		}
	}
	// The placeholders it uses before declaring them; the packages it names.
	params := map[string]bool{}
	pkgSels := map[string]map[string]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok {
				if _, local := declaredAt[id.Name]; !local && samplePlaceholders[id.Name] == "" {
					if pkgSels[id.Name] == nil {
						pkgSels[id.Name] = map[string]bool{}
					}
					pkgSels[id.Name][x.Sel.Name] = true
				}
			}
		case *ast.Ident:
			if typ := samplePlaceholders[x.Name]; typ != "" && !declaring[x] {
				if at, ok := declaredAt[x.Name]; !ok || x.Pos() < at {
					params[x.Name] = true
				}
			}
		}
		return true
	})
	imports := map[string]string{} // name → path
	for name, sels := range pkgSels {
		switch path, ok := aliases[name]; {
		case ok:
			imports[name] = path
		case name == "openai":
			imports[name] = openaiImport(sels)
		case sampleImport[name] != "":
			imports[name] = sampleImport[name]
		default:
			return "", fmt.Errorf("%s: package %q is not in the samples' import table", s.where, name)
		}
	}
	var ps []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for p := range params {
			if !yield(p) {
				return
			}
		}
	}) {
		typ := samplePlaceholders[name]
		ps = append(ps, name+" "+typ)
		pkg, _, _ := strings.Cut(strings.TrimLeft(typ, "*[]"), ".")
		switch {
		case pkg == "llmstools":
			imports[pkg] = "github.com/tmc/langchaingo/tools"
		case imports[pkg] == "" && sampleImport[pkg] != "":
			imports[pkg] = sampleImport[pkg]
		}
	}
	var b strings.Builder
	b.WriteString("package samples\n\nimport (\n")
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range imports {
			if !yield(n) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "\t%s %q\n", name, imports[name])
	}
	fmt.Fprintf(&b, ")\n\n// %s\nfunc %s(%s) error {\n", s.where, fn, strings.Join(ps, ", "))
	for line := range strings.Lines(s.code) {
		if !strings.HasPrefix(strings.TrimSpace(line), "import ") {
			b.WriteString(line)
		}
	}
	for _, d := range declared {
		fmt.Fprintf(&b, "\t_ = %s\n", d)
	}
	b.WriteString("\treturn nil\n}\n")
	return b.String(), nil
}

// TestDocSamplesCompile builds the Go samples users copy: every go block of
// README.md and every code block of a doc comment that declares something
// with :=, each as the body of a function whose parameters are the values
// the sample takes as given (ctx, pol, chain, rdb...). The names, the
// signatures and the options they show must exist as written: the
// middlewaretest.Must doc once built retry.Config{Attempts: 3}, a field
// retry.Config does not have (it is MaxAttempts). They are built in the
// gateway module, whose graph holds every client the samples use
// (langchaingo, go-openai, openai-go, go-redis), through an overlay: the
// checkout is not written to.
func TestDocSamplesCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the documentation's samples")
	}
	samples := append(readmeGoSamples(t), commentGoSamples(t)...)
	if len(samples) < 10 {
		t.Fatalf("found only %d samples", len(samples))
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(root, "gateway", "zz_docsamples_overlay") // exists only in the overlay
	tmp := t.TempDir()
	replace := map[string]string{}
	where := map[string]string{} // file → sample
	for i, s := range samples {
		src, err := sampleFile(s, fmt.Sprintf("sample%d", i))
		if err != nil {
			t.Error(err)
			continue
		}
		name := fmt.Sprintf("sample%d.go", i)
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		replace[filepath.Join(pkgDir, name)] = p
		where[name] = s.where
	}
	overlay := filepath.Join(tmp, "overlay.json")
	var js strings.Builder
	js.WriteString(`{"Replace":{`)
	first := true
	for k, v := range replace {
		if !first {
			js.WriteString(",")
		}
		first = false
		fmt.Fprintf(&js, "%q:%q", k, v)
	}
	js.WriteString("}}")
	if err := os.WriteFile(overlay, []byte(js.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", overlay, "./"+filepath.Base(pkgDir))
	cmd.Dir = filepath.Dir(pkgDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// Name the sample each error is in.
		msg := string(out)
		for name, w := range where {
			msg = strings.ReplaceAll(msg, name+":", name+" ("+w+"):")
		}
		t.Fatalf("the documentation's Go samples do not build: %v\n%s", err, msg)
	}
	t.Logf("built %d samples", len(samples))
}
