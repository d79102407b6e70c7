package policies

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The strict decoder walks the goccy/go-yaml AST alongside the Go type by
// reflection. Unlike a stop-at-first-error decoder it records every unknown
// key and type error with its position, keeps going, and records the
// position of every field path it sets (for Validate's messages). JSON is
// read by the same parser, so JSON files get the same treatment.

const (
	maxDecodeNodes = 4 * maxEntries // bounds alias expansion ("billion laughs")
	maxDecodeDepth = 100
)

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

type decoder struct {
	src     *sourceMap
	anchors map[string]ast.Node
	probs   []Problem
	nodes   int
	tooBig  bool
	// merged memoises entries per mapping node that holds a merge key, so
	// that a mapping merged from many places is expanded once.
	merged map[ast.Node][]entry
	// duplicates holds the keys reported as written twice, so that a
	// mapping read more than once (through aliases) reports them once.
	duplicates map[ast.Node]bool
}

// decodeDocument parses b and decodes its single document into v (a
// pointer to a struct). It returns the problems found; positions of decoded
// paths are recorded in src. parsed is false after a syntax error, when
// nothing was decoded.
//
// The limits of prescan are checked first, and a document whose top level
// is not a mapping is refused (ErrNotPolicy) without quoting it: it may be
// any file, secrets included.
func decodeDocument(b []byte, v any, src *sourceMap) (probs []Problem, parsed bool) {
	if p := prescan(b, src.file); p != nil {
		return []Problem{*p}, false
	}
	// A byte order mark may start a YAML stream (Windows editors write
	// one); it is not part of the first key. Line numbers are unchanged.
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	if p := invalidUTF8(b, src.file); p != nil {
		return []Problem{*p}, false
	}
	// Duplicate keys are this decoder's to report (entries), each at its
	// line beside the file's other problems: the parser would stop at the
	// first, a syntax error that hides every other problem.
	f, err := parser.ParseBytes(b, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return []Problem{syntaxProblem(err, b, src.file)}, false
	}
	d := &decoder{src: src, anchors: map[string]ast.Node{}}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.problem("", doc.Body, "a policy file holds one YAML document; found another")
			continue
		}
		body = doc.Body
	}
	rv := reflect.ValueOf(v).Elem()
	d.src.pos[""] = position{1, 1} // a missing field is reported at the top of the file
	if body == nil {
		return d.probs, true
	}
	d.collectAnchors(body, 0)
	if top, _ := d.resolve("", body); top != nil {
		notPolicy := func(format string, args ...any) ([]Problem, bool) {
			d.probs = nil
			d.problem("", body, format, args...)
			d.probs[0].Err = ErrNotPolicy
			return d.probs, false
		}
		switch top.(type) {
		case *ast.MappingNode, *ast.MappingValueNode:
			// A mapping none of whose keys is a field or close to one (an
			// env file in YAML, another tool's config) is not a policy:
			// say so, and quote neither its keys nor its values.
			if es, ok := d.entries("", top, 0); ok && len(es) > 0 {
				fields := fieldsOf(rv.Type())
				known := false
				for _, e := range es {
					_, ok := fields.index[e.key]
					if !e.badKey && (ok || suggest(e.key, fields.names) != "") {
						known = true // a field, or a typo of one
						break
					}
				}
				if !known {
					return notPolicy("none of the %d keys of the top level is a field of %s", len(es), typeName(rv.Type()))
				}
			}
		case *ast.NullNode:
		default:
			return notPolicy("the top level is %s, not a mapping of policy fields", nodeKind(top))
		}
	}
	d.decode("", body, rv, 0)
	return d.probs, true
}

// invalidUTF8 returns a problem at the first byte of b that is not valid
// UTF-8 (line and column, counted in characters), or nil. The parser would
// replace it with U+FFFD and a policy would silently hold another text.
func invalidUTF8(b []byte, file string) *Problem {
	if utf8.Valid(b) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Problem{File: file, Line: line, Column: col,
				Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x): a policy file must be UTF-8 text", b[i])}
		}
		switch {
		case r == '\n', r == '\r' && (i+1 >= len(b) || b[i+1] != '\n'):
			line, col = line+1, 1
		case r == '\r':
		default:
			col++
		}
		i += size
	}
	return nil
}

func syntaxProblem(err error, src []byte, file string) Problem {
	p := Problem{File: file, Msg: "syntax error"} // err.Error() would quote the source
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		p.Msg = "syntax error: " + clipSyntax(msg)
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Column = tk.Position.Line, tk.Position.Column
		}
		// The parser quotes the tab itself, which a terminal shows as
		// blank quotes: name it, and what YAML wants instead.
		if strings.Contains(msg, "'\t'") {
			p.Msg = "syntax error: a tab where YAML wants spaces"
			if p.Line > 0 && tabIndented(src, p.Line) {
				p.Msg = "syntax error: a tab indents this line; YAML indents with spaces"
			}
		}
	}
	return p
}

// tabIndented reports whether line n (from 1) of src has a tab in its
// indentation.
func tabIndented(src []byte, n int) bool {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return false
		}
		src = src[j+1:]
	}
	for _, c := range src {
		switch c {
		case '\t':
			return true
		case ' ':
		default:
			return false
		}
	}
	return false
}

// clipSyntax bounds a parser message, which may quote the file.
func clipSyntax(msg string) string {
	const max = 4 * maxEcho
	if len(msg) <= max {
		return msg
	}
	i := max
	for i > 0 && !utf8.RuneStart(msg[i]) {
		i--
	}
	return msg[:i] + "…"
}

func (d *decoder) problem(path string, n ast.Node, format string, args ...any) {
	p := Problem{Path: path, File: d.src.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Column = tk.Position.Line, tk.Position.Column
		}
	}
	d.probs = append(d.probs, p)
}

func (d *decoder) record(path string, n ast.Node) {
	if n == nil {
		return
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		if _, dup := d.src.pos[path]; !dup {
			d.src.pos[path] = position{tk.Position.Line, tk.Position.Column}
		}
	}
}

// collectAnchors indexes every anchor of the document by name, so that an
// alias resolves wherever it sits.
func (d *decoder) collectAnchors(n ast.Node, depth int) {
	if n == nil || depth > maxDecodeDepth {
		return
	}
	switch t := n.(type) {
	case *ast.AnchorNode:
		if t.Name != nil {
			d.anchors[t.Name.GetToken().Value] = t.Value
		}
		d.collectAnchors(t.Value, depth+1)
	case *ast.MappingNode:
		for _, mv := range t.Values {
			d.collectAnchors(mv, depth+1)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(t.Key, depth+1)
		d.collectAnchors(t.Value, depth+1)
	case *ast.MappingKeyNode:
		d.collectAnchors(t.Value, depth+1)
	case *ast.SequenceNode:
		for _, e := range t.Values {
			d.collectAnchors(e, depth+1)
		}
	case *ast.TagNode:
		d.collectAnchors(t.Value, depth+1)
	}
}

// resolve strips anchors, tags and aliases. asString is set by a !!str tag.
// It returns nil after recording a problem for an unknown alias.
func (d *decoder) resolve(path string, n ast.Node) (res ast.Node, asString bool) {
	for range maxDecodeDepth {
		switch t := n.(type) {
		case *ast.AnchorNode:
			n = t.Value
		case *ast.TagNode:
			if t.Start != nil && (t.Start.Value == "!!str" || t.Start.Value == "tag:yaml.org,2002:str") {
				asString = true
			}
			n = t.Value
		case *ast.AliasNode:
			name := ""
			if t.Value != nil {
				name = t.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.problem(path, t, "unknown alias *%s", clip(name))
				return nil, false
			}
			n = target
		case *ast.MappingKeyNode:
			n = t.Value
		default:
			return n, asString
		}
	}
	d.problem(path, n, "aliases nest too deep")
	return nil, false
}

// spend counts k units of work (a decoded value, a key brought in by a
// merge) against maxDecodeNodes. Past it, it records one ErrTooLarge
// problem at n, and it and every later call return false.
func (d *decoder) spend(path string, n ast.Node, k int) bool {
	if d.tooBig {
		return false
	}
	if d.nodes += k; d.nodes > maxDecodeNodes {
		d.tooBig = true
		d.problem(path, n, "more than %d values once aliases and merge keys are expanded", maxDecodeNodes)
		d.probs[len(d.probs)-1].Err = ErrTooLarge
		return false
	}
	return true
}

func (d *decoder) decode(path string, n ast.Node, v reflect.Value, depth int) {
	if !d.spend(path, n, 1) {
		return
	}
	if depth > maxDecodeDepth {
		d.problem(path, n, "nesting too deep")
		return
	}
	orig := n
	n, asString := d.resolve(path, n)
	if n == nil {
		return
	}
	if _, ok := n.(*ast.NullNode); ok && !asString {
		v.SetZero()
		return
	}
	if v.Kind() != reflect.Pointer && reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		text, ok := scalarText(n)
		if !ok {
			d.problem(path, orig, "expected %s, got %s", describeType(v.Type()), describeNode(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
			d.problem(path, orig, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(path, orig, elem.Elem(), depth+1)
		v.Set(elem)
	case reflect.Struct:
		d.decodeStruct(path, orig, n, v, depth)
	case reflect.Map:
		d.decodeMap(path, orig, n, v, depth)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.problem(path, orig, "expected a list, got %s", describeNode(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, e := range seq.Values {
			ep := indexPath(path, i)
			d.record(ep, e)
			d.decode(ep, e, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.String:
		text, ok := scalarText(n)
		_, isStr := n.(*ast.StringNode)
		_, isLit := n.(*ast.LiteralNode)
		if !ok || !(isStr || isLit || asString) {
			d.problem(path, orig, "expected a string, got %s%s", describeNode(n), quoteHint(n))
			return
		}
		v.SetString(text)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok || asString {
			d.problem(path, orig, "expected true or false, got %s", describeValue(n, asString))
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		in, ok := n.(*ast.IntegerNode)
		if !ok || asString {
			if s, isStr := n.(*ast.StringNode); isStr && s.Token.Type == token.StringType && s.Value != "" && allDigits(strings.TrimLeft(s.Value, "+-")) {
				// The parser leaves integers beyond 64 bits as plain strings.
				d.problem(path, orig, "integer %s is too large", clip(s.Value))
				return
			}
			d.problem(path, orig, "expected an integer, got %s", describeValue(n, asString))
			return
		}
		var i int64
		switch x := in.Value.(type) {
		case int64:
			i = x
		case uint64:
			if x > 1<<63-1 {
				d.problem(path, orig, "integer %s is too large", clip(in.Token.Value))
				return
			}
			i = int64(x)
		}
		if v.OverflowInt(i) {
			d.problem(path, orig, "integer %s is too large", clip(in.Token.Value))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		switch x := n.(type) {
		case *ast.IntegerNode:
			f, err := strconv.ParseFloat(strings.ReplaceAll(x.Token.Value, "_", ""), 64)
			if err != nil || asString {
				d.problem(path, orig, "expected a number, got %s", describeValue(n, asString))
				return
			}
			v.SetFloat(f)
		case *ast.FloatNode:
			if asString {
				d.problem(path, orig, "expected a number, got %s", describeValue(n, asString))
				return
			}
			v.SetFloat(x.Value)
		default:
			d.problem(path, orig, "expected a number, got %s", describeValue(n, asString))
		}
	default:
		d.problem(path, orig, "cannot decode into %s", v.Type())
	}
}

// entry is one key of a mapping, after merge keys are expanded.
type entry struct {
	key     string
	keyNode ast.Node
	value   ast.Node
	badKey  bool
}

// entries lists the keys of a mapping node. Explicit keys win over keys
// brought in by a merge key (<<), and earlier merged maps win over later ones.
//
// Every key a merge brings in counts against maxDecodeNodes, and the keys
// of a mapping with merge keys are listed once however often it is merged:
// a file of anchors merged into one another ten levels deep (a "merge-key
// bomb") costs its size, not ten to the tenth.
func (d *decoder) entries(path string, n ast.Node, depth int) ([]entry, bool) {
	if es, ok := d.merged[n]; ok {
		return es, true
	}
	var values []*ast.MappingValueNode
	switch t := n.(type) {
	case *ast.MappingNode:
		values = t.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{t}
	default:
		return nil, false
	}
	var explicit, merged []entry
	first := make(map[string]ast.Node, len(values))
	for _, mv := range values {
		if mv.Key != nil && mv.Key.IsMergeKey() {
			if prev, dup := first["<<"]; dup {
				d.duplicate(path, entry{key: "<<", keyNode: mv.Key}, prev)
				continue // one merge key: a list merges several mappings
			}
			first["<<"] = mv.Key
			if depth > maxDecodeDepth {
				d.problem(path, mv.Key, "merge keys nest too deep")
				continue
			}
			src, _ := d.resolve(path, mv.Value)
			var srcs []ast.Node
			if seq, ok := src.(*ast.SequenceNode); ok {
				for _, e := range seq.Values {
					r, _ := d.resolve(path, e)
					srcs = append(srcs, r)
				}
			} else {
				srcs = []ast.Node{src}
			}
			for _, s := range srcs {
				if s == nil {
					continue
				}
				es, ok := d.entries(path, s, depth+1)
				if !ok {
					d.problem(path, mv.Value, "merge key << needs a mapping or a list of mappings, got %s", describeNode(s))
					continue
				}
				if !d.spend(path, mv.Key, len(es)) {
					return nil, true
				}
				merged = append(merged, es...)
			}
			continue
		}
		k, _ := d.resolve(path, mv.Key)
		text, ok := scalarText(k)
		e := entry{key: text, keyNode: mv.Key, value: mv.Value, badKey: !ok}
		if _, isNull := k.(*ast.NullNode); isNull {
			e.badKey = true
		}
		if !e.badKey {
			if prev, dup := first[text]; dup {
				d.duplicate(path, e, prev)
				continue
			}
			first[text] = mv.Key
		}
		explicit = append(explicit, e)
	}
	if len(merged) == 0 {
		return explicit, true
	}
	seen := make(map[string]bool, len(explicit)+len(merged))
	for _, e := range explicit {
		seen[e.key] = true
	}
	out := explicit
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			out = append(out, e)
		}
	}
	if d.merged == nil {
		d.merged = map[ast.Node][]entry{}
	}
	d.merged[n] = out
	return out, true
}

// duplicate reports key e, written again in its mapping after prev,
// once however often the mapping is read. The second value is not read:
// which one the writer meant is theirs to say.
func (d *decoder) duplicate(path string, e entry, prev ast.Node) {
	if d.duplicates[e.keyNode] {
		return
	}
	if d.duplicates == nil {
		d.duplicates = map[ast.Node]bool{}
	}
	d.duplicates[e.keyNode] = true
	line := 0
	if tk := prev.GetToken(); tk != nil && tk.Position != nil {
		line = tk.Position.Line
	}
	d.problem(keyPath(path, e.key), e.keyNode, "key %q is given twice in this mapping (first at line %d): keep one", clip(e.key), line)
}

func (d *decoder) decodeStruct(path string, orig, n ast.Node, v reflect.Value, depth int) {
	es, ok := d.entries(path, n, depth)
	if !ok {
		d.problem(path, orig, "expected a mapping, got %s", describeNode(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, e := range es {
		if e.badKey {
			d.problem(path, e.keyNode, "keys must be plain strings")
			continue
		}
		fp := joinPath(path, e.key)
		idx, ok := fields.index[e.key]
		if !ok {
			d.problem(fp, e.keyNode, "unknown field %q%s", clip(e.key), suggest(e.key, fields.names))
			continue
		}
		d.record(fp, e.keyNode)
		d.decode(fp, e.value, v.Field(idx), depth+1)
	}
}

func (d *decoder) decodeMap(path string, orig, n ast.Node, v reflect.Value, depth int) {
	if v.Type().Key().Kind() != reflect.String {
		d.problem(path, orig, "cannot decode into %s", v.Type())
		return
	}
	es, ok := d.entries(path, n, depth)
	if !ok {
		d.problem(path, orig, "expected a mapping, got %s", describeNode(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(es)))
	}
	for _, e := range es {
		if e.badKey || e.key == "" {
			d.problem(path, e.keyNode, "keys must be non-empty plain strings")
			continue
		}
		kp := keyPath(path, e.key)
		d.record(kp, e.keyNode)
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(kp, e.value, elem, depth+1)
		v.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
}

type structFields struct {
	index map[string]int
	names []string
}

// yamlName returns the name a field has in a policy file (its yaml tag's,
// else its lowercased Go name), and false for a field the file cannot set
// (unexported, or tagged "-").
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return "", false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

// fieldsOf maps the yaml names of t's exported fields to their index.
func fieldsOf(t reflect.Type) structFields {
	sf := structFields{index: make(map[string]int, t.NumField())}
	for i := range t.NumField() {
		name, ok := yamlName(t.Field(i))
		if !ok {
			continue
		}
		sf.index[name] = i
		sf.names = append(sf.names, name)
	}
	return sf
}

// scalarText returns the text of a scalar node: the unquoted value of a
// string, the source text of a number (so that 2.50 stays "2.50").
func scalarText(n ast.Node) (string, bool) {
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.LiteralNode:
		if t.Value == nil {
			return "", true
		}
		return t.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode, *ast.NullNode:
		return n.GetToken().Value, true
	}
	return "", false
}

// typeName names the document type in messages.
func typeName(t reflect.Type) string {
	if t == reflect.TypeFor[Policy]() {
		return "a policy"
	}
	return strings.ToLower(t.Name())
}

// nodeKind names the kind of a node without its value.
func nodeKind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.NullNode:
		return "null"
	}
	return "a " + n.Type().String()
}

// describeValue describes a scalar as read: a string when a !!str tag
// made it one ("!!str 5" is the string "5", not an integer).
func describeValue(n ast.Node, asString bool) string {
	if asString {
		if text, ok := scalarText(n); ok {
			return fmt.Sprintf("string %q (tagged !!str)", clip(text))
		}
	}
	return describeNode(n)
}

func describeNode(n ast.Node) string {
	switch t := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("string %q", clip(t.Value))
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode:
		return "integer " + clip(t.Token.Value)
	case *ast.FloatNode:
		return "number " + clip(t.Token.Value)
	case *ast.BoolNode:
		return t.Token.Value
	case *ast.NullNode:
		return "null"
	case *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value
	}
	return n.Type().String()
}

func quoteHint(n ast.Node) string {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return fmt.Sprintf(" (quote it: \"%s\")", clip(n.GetToken().Value))
	}
	return ""
}

func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[USD]():
		return "a dollar amount like 1.50"
	case reflect.TypeFor[Duration]():
		return `a duration like "30s"`
	case reflect.TypeFor[ByteSize]():
		return `a size like 8192 or "64MiB"`
	}
	return "a scalar"
}
