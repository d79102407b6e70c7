package readme_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// pkgDecls is what one package directory declares: top-level names, and the
// members (methods, fields, interface methods) of each of its types.
type pkgDecls struct {
	names    map[string]bool
	members  map[string]map[string]bool
	embedded map[string][]string // type → the types it embeds
}

// hasMember reports whether typ has member name, directly or promoted from
// a type it embeds; a type that embeds one of another package is given the
// benefit of the doubt.
func (pd *pkgDecls) hasMember(typ, name string, depth int) bool {
	if pd.members[typ][name] {
		return true
	}
	for _, e := range pd.embedded[typ] {
		if _, ours := pd.members[e]; !ours || depth > 8 || pd.hasMember(e, name, depth+1) {
			return true
		}
	}
	return false
}

func recvType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// TestDocCommentsNameWhatExists: a comment that names pkg.Ident (pkg a
// package of this repository: middleware.Meter, budget.ErrExceeded),
// Type.Member of a type of its own package (Run.Record; a member promoted
// from an embedded type counts), or an unqualified With…/New…/Must… names
// something that exists: go doc users read these. It once found guard's
// Middleware doc saying "Place it inside middleware.Instrument" (the front
// door is llmwrap/instrument.New), gateway.Config's doc linking the
// unexported [Config.Problems], middleware.RunSums's and Run.Record's
// pointing at Run.SharedTotals (it is Run.SharedState), and
// toolwrap.Meta.Idempotent saying "see WithCache" (Config.CacheTTL turns the
// cache on). A third-party name (go-openai's NewClient) is written
// qualified (openai.NewClient) so as not to be taken for one of ours.
func TestDocCommentsNameWhatExists(t *testing.T) {
	fset := token.NewFileSet()
	decls := map[string]*pkgDecls{}         // dir → decls
	pkgDirs := map[string][]string{}        // package name → dirs
	comments := map[string][]*ast.Comment{} // file → comments
	fileDir := map[string]string{}
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
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return nil // not ours to judge here
		}
		dir := filepath.Dir(path)
		pd := decls[dir]
		if pd == nil {
			pd = &pkgDecls{names: map[string]bool{}, members: map[string]map[string]bool{}, embedded: map[string][]string{}}
			decls[dir] = pd
			pkgDirs[f.Name.Name] = append(pkgDirs[f.Name.Name], dir)
		}
		member := func(typ, name string) {
			if pd.members[typ] == nil {
				pd.members[typ] = map[string]bool{}
			}
			pd.members[typ][name] = true
		}
		for _, dcl := range f.Decls {
			switch x := dcl.(type) {
			case *ast.FuncDecl:
				if x.Recv != nil && len(x.Recv.List) == 1 {
					member(recvType(x.Recv.List[0].Type), x.Name.Name)
				} else {
					pd.names[x.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range x.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						pd.names[s.Name.Name] = true
						var fields *ast.FieldList
						switch tt := s.Type.(type) {
						case *ast.StructType:
							fields = tt.Fields
						case *ast.InterfaceType:
							fields = tt.Methods
						}
						if fields != nil {
							for _, fl := range fields.List {
								for _, n := range fl.Names {
									member(s.Name.Name, n.Name)
								}
								if len(fl.Names) == 0 { // embedded
									member(s.Name.Name, recvType(fl.Type))
									pd.embedded[s.Name.Name] = append(pd.embedded[s.Name.Name], recvType(fl.Type))
								}
							}
						}
						if pd.members[s.Name.Name] == nil {
							pd.members[s.Name.Name] = map[string]bool{}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							pd.names[n.Name] = true
						}
					}
				}
			}
		}
		for _, cg := range f.Comments {
			comments[path] = append(comments[path], cg.List...)
		}
		fileDir[path] = dir
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The aliases README and the docs use for the adapters; names that are
	// also third-party packages (openai, langchaingo, redis, otel) are left
	// out: a comment's openai.X is usually go-openai's.
	pkgDirs["twopenai"] = []string{filepath.Join("adapters", "openai")}
	pkgDirs["twlc"] = []string{filepath.Join("adapters", "langchaingo")}
	pkgDirs["twredis"] = []string{filepath.Join("adapters", "redis")}
	for _, n := range []string{"openai", "langchaingo", "redis", "otel", "main"} {
		delete(pkgDirs, n)
	}
	// Every name any package of the repository declares, for the
	// unqualified With…/New…/Must… a comment names.
	anywhere := map[string]bool{}
	for _, pd := range decls {
		for n := range pd.names {
			anywhere[n] = true
		}
		for _, ms := range pd.members {
			for n := range ms {
				anywhere[n] = true
			}
		}
	}
	unqualified := regexp.MustCompile(`(?:^|[^\w./-])((?:With|New|Must)[A-Z]\w*)`)
	qualified := regexp.MustCompile(`(?:^|[^\w.])([a-z]\w*)\.([A-Z]\w*)`)
	member := regexp.MustCompile(`(?:^|[^\w.])([A-Z]\w*)\.([A-Z]\w*)\b`)
	var bad []string
	files := make([]string, 0, len(comments))
	for f := range comments {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, file := range files {
		own := decls[fileDir[file]]
		for _, c := range comments[file] {
			pos := fset.Position(c.Pos())
			for _, m := range qualified.FindAllStringSubmatch(c.Text, -1) {
				dirs, ok := pkgDirs[m[1]]
				if !ok {
					continue
				}
				found := false
				for _, d := range dirs {
					if decls[d] != nil && decls[d].names[m[2]] {
						found = true
					}
				}
				if !found {
					bad = append(bad, pos.String()+": "+m[1]+"."+m[2])
				}
			}
			for _, m := range unqualified.FindAllStringSubmatch(c.Text, -1) {
				if !anywhere[m[1]] && !anywhere[strings.TrimSuffix(m[1], "s")] {
					bad = append(bad, pos.String()+": "+m[1])
				}
			}
			for _, m := range member.FindAllStringSubmatch(c.Text, -1) {
				if _, isType := own.members[m[1]]; isType && !own.hasMember(m[1], m[2], 0) {
					bad = append(bad, pos.String()+": "+m[1]+"."+m[2])
				}
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("comments name what does not exist:\n%s", strings.Join(bad, "\n"))
	}
}

// TestLlmwrapDocOnionIsREADMEs: README's onion has the meter between
// the call timeout and the provider (llmwrap.Build appends
// middleware.Meter last); so does llmwrap's package doc, which go doc
// shows.
func TestLlmwrapDocOnionIsREADMEs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("llmwrap", "doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "call timeout → meter → provider") {
		t.Error("llmwrap/doc.go's onion lacks the meter README shows: ... → call timeout → meter → provider")
	}
}
