package policies

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// # Extends
//
// A policy file may name a base with `extends: default.yaml`. The path is
// relative to the extending file and must stay inside the policy directory
// (the directory given to LoadDir, or the file's own directory for
// LoadFileExtends); an absolute path or one that climbs out with ".." is an
// error, and so is a cycle (a.yaml extends b.yaml extends a.yaml). Bases may
// extend bases, to any depth.
//
// The merge is deep and works on what the team file actually writes; a key
// the file does not write is inherited unchanged:
//
//   - mappings with fixed fields (budget, cache, routing.regenerate_final,
//     ...) merge field by field, recursively;
//   - maps keyed by name (models, tools.per_tool) merge key by key; an entry
//     present in both is merged field by field (models: {gpt-4o:
//     {input_per_1m: 2.40}} overrides one price and keeps the rest);
//   - lists (routing.rules, fallback.models, budget.warn_at, ...) are
//     replaced as a whole: a team that writes routing.rules owns all its
//     rules, in its order;
//   - scalars replace the base's value;
//   - `key: null` or an empty mapping `key: {}` resets the key to its zero
//     value (off), whatever the base says;
//   - name: the team file's own name, or its file name without extension
//     when it writes none; extends: the team file's;
//   - timeouts.total, which bounds a call's attempts together and is at
//     least timeouts.call: a file that writes a call timeout above the
//     total it inherits, and no total, gets the total raised to its call
//     timeout (max(inherited total, call)), so that raising the one does
//     not ask to know about the other; a total the file writes is its
//     own, and one below its call timeout is an error;
//   - timeouts.models entries a file inherits (it writes no
//     timeouts.models): a call, total, first_token or idle limit the file
//     raises above an entry's raises the entry's with it, so that the
//     models an entry gives longer limits never get shorter ones than the
//     others (a file that writes timeouts.call: 15m gives the default's
//     reasoning models 15m, not 10m).
//
// Validation runs on the merged policy, so a team file may rely on models
// its base defines; every problem names the file and line the offending
// value came from.

// ErrExtendsCycle matches an extends chain that loops back on itself.
var ErrExtendsCycle = errors.New("tokenwise/policies: extends cycle")

// ErrExtendsEscape matches an extends path outside the policy directory.
var ErrExtendsEscape = errors.New("tokenwise/policies: extends path outside the policy directory")

// fileOf returns the file a path's value came from in a merged policy, or
// "" for a policy read from a single file.
func (s *sourceMap) fileOf(path string) string {
	if s == nil || s.files == nil {
		return ""
	}
	for {
		if f, ok := s.files[path]; ok {
			return f
		}
		if path == "" {
			return ""
		}
		path = parentPath(path)
	}
}

// rawFile is one decoded, unvalidated policy file.
type rawFile struct {
	p     *Policy
	src   *sourceMap
	probs []Problem // decode problems (unknown keys, types, syntax)
}

// resolver resolves extends chains of the files under root, memoising
// each file's merged result.
type resolver struct {
	root    string // absolute, cleaned
	display func(abs string) string
	raw     map[string]*rawFile
	merged  map[string]chainResult
	errs    map[string][]Problem
	tried   map[string]bool // every file read or tried, bases included
}

// chainResult is the merged policy of a file and the decode problems of
// its chain (unknown keys, types); the policy is still merged and
// validated, so that one pass reports every problem.
type chainResult struct {
	p     *Policy
	probs []Problem
}

func newResolver(root string) (*resolver, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/policies: %w", err)
	}
	r := &resolver{root: filepath.Clean(abs), raw: map[string]*rawFile{}, merged: map[string]chainResult{}, errs: map[string][]Problem{}, tried: map[string]bool{}}
	// Files are named as the caller named the directory: teams/devops.yaml.
	r.display = func(a string) string {
		if rel, err := filepath.Rel(r.root, a); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(root, rel)
		}
		return a
	}
	return r, nil
}

func (r *resolver) read(abs string) (*rawFile, error) {
	if rf, ok := r.raw[abs]; ok {
		return rf, nil
	}
	r.tried[abs] = true
	b, err := readPolicyFile(abs)
	if err != nil {
		return nil, err
	}
	name := r.display(abs)
	p := &Policy{}
	src := &sourceMap{file: name, pos: map[string]position{}}
	probs, parsed := decodeDocument(b, p, src)
	rf := &rawFile{p: p, src: src, probs: probs}
	if !parsed {
		rf.p = nil
	}
	r.raw[abs] = rf
	return rf, nil
}

// resolve returns the merged policy of the file at abs, validated, or a
// *ValidationError listing every problem of the chain: decode problems
// (unknown keys, wrong types) and the validation of the merged policy
// together, a validation problem left out where it would repeat a decode
// problem of the same value or read a value that failed to decode.
func (r *resolver) resolve(abs string) (*Policy, error) {
	p, probs := r.resolveChain(abs, nil)
	probs = slices.Clone(probs)
	if p != nil {
		for _, vp := range p.problems(probs) {
			if !shadowed(vp, probs) {
				probs = append(probs, vp)
			}
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ValidationError{Problems: dedupProblems(probs)}
	}
	return p, nil
}

// resolveChain returns the merged, unvalidated policy of abs and the
// decode problems of its chain. The policy is nil when the chain cannot be
// merged (a syntax error, a missing base, a cycle).
func (r *resolver) resolveChain(abs string, stack []string) (*Policy, []Problem) {
	if cr, ok := r.merged[abs]; ok {
		return cr.p, cr.probs
	}
	if probs, ok := r.errs[abs]; ok {
		return nil, probs
	}
	for i, s := range stack {
		if s == abs {
			chain := make([]string, 0, len(stack)-i+1)
			for _, c := range slices.Concat(stack[i:], []string{abs}) {
				rel, err := filepath.Rel(r.root, c)
				if err != nil {
					rel = c
				}
				chain = append(chain, filepath.ToSlash(rel))
			}
			return nil, []Problem{{File: r.display(stack[len(stack)-1]), Path: "extends", Err: ErrExtendsCycle,
				Msg: fmt.Sprintf("%v: %s", ErrExtendsCycle, strings.Join(chain, " → "))}}
		}
	}
	rf, err := r.read(abs)
	if err != nil {
		pr := Problem{File: r.display(abs), Msg: err.Error(), Err: err}
		if len(stack) > 0 {
			pr.File = r.display(stack[len(stack)-1])
			pr.Path = "extends"
		}
		return nil, []Problem{pr}
	}
	if rf.p == nil {
		r.errs[abs] = rf.probs
		return nil, rf.probs
	}
	stem := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	if rf.p.Extends == "" {
		p := copyPolicy(rf.p)
		p.src = withFiles(rf.src)
		if p.Name == "" {
			p.Name = stem
		}
		r.merged[abs] = chainResult{p, rf.probs}
		return p, rf.probs
	}
	baseAbs, perr := r.basePath(abs, rf.p.Extends)
	if perr != nil {
		pr := Problem{File: rf.src.file, Path: "extends", Msg: perr.Error(), Err: perr}
		if pos, ok := rf.src.pos["extends"]; ok {
			pr.Line, pr.Column = pos.line, pos.col
		}
		r.errs[abs] = append(slices.Clone(rf.probs), pr)
		return nil, r.errs[abs]
	}
	base, probs := r.resolveChain(baseAbs, append(stack, abs))
	if base == nil {
		// A cycle is reported once, at the file that closes it; other
		// problems of the base are the base's own.
		probs = slices.Clone(probs)
		if pos, ok := rf.src.pos["extends"]; ok {
			for i := range probs {
				if probs[i].Line == 0 && probs[i].Path == "extends" && probs[i].File == rf.src.file {
					probs[i].Line, probs[i].Column = pos.line, pos.col
				}
			}
		}
		probs = append(probs, rf.probs...)
		if len(stack) == 0 || !isCycle(probs) {
			r.errs[abs] = probs
		}
		return nil, probs
	}
	p := mergePolicies(base, rf.p, rf.src)
	if p.Name == "" || !rf.src.has("name") {
		p.Name = stem
	}
	probs = slices.Concat(probs, rf.probs)
	r.merged[abs] = chainResult{p, probs}
	return p, probs
}

func isCycle(probs []Problem) bool {
	for _, p := range probs {
		if errors.Is(p.Err, ErrExtendsCycle) {
			return true
		}
	}
	return false
}

func dedupProblems(ps []Problem) []Problem {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if k := p.String(); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// basePath resolves an extends value against the extending file, refusing
// absolute paths and paths outside the root.
func (r *resolver) basePath(from, ext string) (string, error) {
	switch strings.ToLower(filepath.Ext(ext)) {
	case ".yaml", ".yml", ".json":
	default:
		// Never read it: a message about it could quote a .env file.
		return "", fmt.Errorf("%w: extends %q: a base is a .yaml, .yml or .json file", ErrNotPolicy, clip(ext))
	}
	if filepath.IsAbs(ext) || strings.HasPrefix(ext, "/") || filepath.VolumeName(ext) != "" {
		return "", fmt.Errorf("%w: %q is absolute; name a file of the policy directory", ErrExtendsEscape, clip(ext))
	}
	abs := filepath.Clean(filepath.Join(filepath.Dir(from), filepath.FromSlash(ext)))
	rel, err := filepath.Rel(r.root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q", ErrExtendsEscape, clip(ext))
	}
	// A symlink inside the directory may still point out of it.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		rootReal, rerr := filepath.EvalSymlinks(r.root)
		if rerr == nil {
			if rel, err := filepath.Rel(rootReal, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return "", fmt.Errorf("%w: %q links to %s", ErrExtendsEscape, clip(ext), real)
			}
		}
	}
	return abs, nil
}

func (s *sourceMap) has(path string) bool {
	_, ok := s.pos[path]
	return ok
}

// withFiles returns a copy of src whose paths name src's file.
func withFiles(src *sourceMap) *sourceMap {
	out := &sourceMap{file: src.file, pos: make(map[string]position, len(src.pos)), files: make(map[string]string, len(src.pos))}
	for k, v := range src.pos {
		out.pos[k] = v
		out.files[k] = src.file
	}
	return out
}

// LoadFileExtends reads the policy file at path and resolves its extends
// chain within the file's directory, then validates the merged policy.
// See the package documentation for the merge rules.
func LoadFileExtends(path string) (*Policy, error) {
	return LoadFileExtendsIn(path, filepath.Dir(path))
}

// LoadFileExtendsIn is LoadFileExtends with an explicit root directory
// that extends paths must stay within.
func LoadFileExtendsIn(path, root string) (*Policy, error) {
	r, err := newResolver(root)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/policies: %w", err)
	}
	return r.resolve(abs)
}

// mergePolicies returns base overlaid with what child's file writes
// (paths recorded in csrc). base is not modified.
func mergePolicies(base, child *Policy, csrc *sourceMap) *Policy {
	out := copyPolicy(base)
	m := &merger{set: csrc.pos, replaced: map[string]bool{}}
	m.value("", reflect.ValueOf(out).Elem(), reflect.ValueOf(child).Elem())
	if csrc.has("timeouts.call") && !csrc.has("timeouts.total") {
		// A file that raises the call timeout above the total it
		// inherits raises the total with it: max(inherited total, call).
		// (A total the file writes is its own, and validated as such.)
		if t := &out.Timeouts; t.Total > 0 && t.Call > t.Total {
			t.Total = t.Call
		}
	}
	if len(out.Timeouts.Models) > 0 && !csrc.has("timeouts.models") {
		// Inherited timeouts.models entries give their models longer
		// limits than the others: a limit the file raises above an
		// entry's raises the entry's with it, so that a file that raises
		// timeouts.call to 15m does not leave its reasoning models at the
		// base's 10m.
		t := &out.Timeouts
		raise := func(path string, own Duration, entry *Duration) {
			if csrc.has(path) && *entry > 0 && own > *entry {
				*entry = own
			}
		}
		models := slices.Clone(t.Models) // base's list is not modified
		for i := range models {
			e := &models[i]
			raise("timeouts.call", t.Call, &e.Call)
			raise("timeouts.first_token", t.FirstToken, &e.FirstToken)
			raise("timeouts.idle", t.Idle, &e.Idle)
			if csrc.has("timeouts.call") || csrc.has("timeouts.total") {
				if e.Total > 0 && t.Total > e.Total {
					e.Total = t.Total
				}
			}
		}
		t.Models = models
	}
	// Provenance: base positions, minus what the child replaced wholesale,
	// plus every position of the child.
	src := &sourceMap{file: csrc.file, pos: map[string]position{}, files: map[string]string{}}
	if bs := base.src; bs != nil {
		for k, v := range bs.pos {
			if k == "" || m.replacedUnder(k) {
				continue
			}
			src.pos[k] = v
			src.files[k] = bs.fileOf(k)
			if src.files[k] == "" {
				src.files[k] = bs.file
			}
		}
	}
	for k, v := range csrc.pos {
		src.pos[k] = v
		src.files[k] = csrc.file
	}
	out.src = src
	out.Extends = child.Extends
	return out
}

type merger struct {
	set      map[string]position
	replaced map[string]bool // paths the child replaced wholesale
	parents  map[string]bool // every strict ancestor of a path in set
}

// replacedUnder reports whether path or one of its ancestors was replaced.
func (m *merger) replacedUnder(path string) bool {
	for {
		if m.replaced[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// hasBelow reports whether the child wrote any path strictly below path.
func (m *merger) hasBelow(path string) bool {
	if m.parents == nil {
		m.parents = make(map[string]bool, len(m.set))
		for k := range m.set {
			for k != "" {
				k = parentPath(k)
				if m.parents[k] {
					break
				}
				m.parents[k] = true
			}
		}
	}
	return m.parents[path]
}

func isLeafType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// value merges the struct src into dst field by field, for fields the child wrote.
func (m *merger) value(path string, dst, src reflect.Value) {
	t := dst.Type()
	fields := fieldsOf(t)
	for _, name := range fields.names {
		idx := fields.index[name]
		fp := joinPath(path, name)
		if _, ok := m.set[fp]; !ok {
			continue
		}
		df, sf := dst.Field(idx), src.Field(idx)
		switch {
		case sf.Kind() == reflect.Struct && !isLeafType(sf.Type()):
			if !m.hasBelow(fp) { // null or {}: reset
				df.SetZero()
				m.replaced[fp] = true
				continue
			}
			m.value(fp, df, sf)
		case sf.Kind() == reflect.Map:
			if sf.IsNil() || sf.Len() == 0 {
				df.SetZero()
				m.replaced[fp] = true
				continue
			}
			m.mapValue(fp, df, sf)
		default:
			df.Set(deepCopy(sf))
			m.replaced[fp] = true
		}
	}
}

func (m *merger) mapValue(path string, dst, src reflect.Value) {
	if dst.IsNil() {
		dst.Set(reflect.MakeMapWithSize(dst.Type(), src.Len()))
	}
	for _, k := range src.MapKeys() {
		kp := keyPath(path, k.String())
		sv := src.MapIndex(k)
		dv := dst.MapIndex(k)
		if dv.IsValid() && sv.Kind() == reflect.Struct && !isLeafType(sv.Type()) && m.hasBelow(kp) {
			nv := reflect.New(sv.Type()).Elem()
			nv.Set(deepCopy(dv))
			m.value(kp, nv, sv)
			dst.SetMapIndex(k, nv)
			continue
		}
		dst.SetMapIndex(k, deepCopy(sv))
		m.replaced[kp] = true
	}
}

// copyPolicy returns a deep copy of p (sharing its sourceMap, which is
// never mutated).
func copyPolicy(p *Policy) *Policy {
	c := deepCopy(reflect.ValueOf(p).Elem()).Interface().(Policy)
	c.src, c.weights = p.src, p.weights
	return &c
}

// deepCopy copies v so that the copy shares no maps, slices or pointers
// with it. Unexported fields are left zero.
func deepCopy(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return out
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		out.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return out
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		out.Set(s)
	case reflect.Map:
		if v.IsNil() {
			return out
		}
		mm := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			mm.SetMapIndex(iter.Key(), deepCopy(iter.Value()))
		}
		out.Set(mm)
	default:
		out.Set(v)
	}
	return out
}

// Origin is one effective value of a policy and where it came from.
type Origin struct {
	Path  string // field path, e.g. "budget.run.max_usd"
	Value string // the value as YAML-ish text
	File  string // the file that set it; "" when it is a zero value no file set
	Line  int    // 1-based line in File; 0 when unknown
}

// Explain lists the policy's non-zero leaf values in schema order, each
// with the file and line it came from (after extends, a value may come
// from the base or from the team file).
func (p *Policy) Explain() []Origin {
	var out []Origin
	explainValue(p.src, "", reflect.ValueOf(p).Elem(), &out)
	return out
}

func explainValue(src *sourceMap, path string, v reflect.Value, out *[]Origin) {
	add := func(text string) {
		o := Origin{Path: path, Value: text}
		if src != nil {
			if pos, ok := src.pos[path]; ok {
				o.Line = pos.line
				o.File = src.file
				if f := src.fileOf(path); f != "" {
					o.File = f
				}
			}
		}
		*out = append(*out, o)
	}
	if v.Kind() != reflect.Pointer && isLeafType(v.Type()) {
		if !v.IsZero() {
			add(fmt.Sprint(v.Interface()))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			explainValue(src, path, v.Elem(), out)
		}
	case reflect.Struct:
		fields := fieldsOf(v.Type())
		for _, name := range fields.names {
			explainValue(src, joinPath(path, name), v.Field(fields.index[name]), out)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			explainValue(src, keyPath(path, k.String()), v.MapIndex(k), out)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			return
		}
		scalar := true
		for i := range v.Len() {
			if k := v.Index(i).Kind(); k == reflect.Struct || k == reflect.Map || k == reflect.Slice {
				scalar = false
			}
		}
		if scalar {
			parts := make([]string, v.Len())
			for i := range v.Len() {
				parts[i] = fmt.Sprint(v.Index(i).Interface())
			}
			add("[" + strings.Join(parts, ", ") + "]")
			return
		}
		for i := range v.Len() {
			explainValue(src, indexPath(path, i), v.Index(i), out)
		}
	default:
		if !v.IsZero() {
			add(fmt.Sprint(v.Interface()))
		}
	}
}
