package policies_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-yaml"

	"github.com/tokenwise/tokenwise/policies"
)

const regenerate = "go run ./cmd/tokenwise policy schema > policies/schema.json"

// TestSchemaInSync regenerates the JSON Schema from the structs and compares
// it with the shipped policies/schema.json.
func TestSchemaInSync(t *testing.T) {
	t.Parallel()
	got, err := policies.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatalf("%v; create it with: %s", err, regenerate)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("policies/schema.json is out of date with the Policy structs; regenerate it from the repository root with:\n\t%s", regenerate)
	}
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := policies.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchemaCoversStructs checks a few facts of the generated schema: every
// yaml key of Policy is a property, objects are closed, enums come from the
// constants and the unit types accept their spellings.
func TestSchemaCoversStructs(t *testing.T) {
	t.Parallel()
	s := loadSchema(t)
	props := s["properties"].(map[string]any)
	for _, k := range []string{"version", "name", "extends", "models", "limits", "timeouts", "budget", "cache", "routing",
		"fallback", "tools", "context", "observability"} {
		if _, ok := props[k]; !ok {
			t.Errorf("schema lacks top-level %q", k)
		}
	}
	if s["additionalProperties"] != false {
		t.Error("top level allows unknown keys")
	}
	budget := props["budget"].(map[string]any)["properties"].(map[string]any)
	if enum := budget["on_exceed"].(map[string]any)["enum"]; !slices.Equal(toStrings(enum), []string{"reject", "downgrade", "warn"}) {
		t.Errorf("on_exceed enum = %v", enum)
	}
	usd := budget["run"].(map[string]any)["properties"].(map[string]any)["max_usd"].(map[string]any)
	pat := regexp.MustCompile(usd["anyOf"].([]any)[1].(map[string]any)["pattern"].(string))
	for _, v := range []string{"0.15", "$2.50", "1", ".5"} {
		if !pat.MatchString(v) {
			t.Errorf("USD pattern rejects %q", v)
		}
	}
	if pat.MatchString("ten") {
		t.Error(`USD pattern accepts "ten"`)
	}
	models := props["models"].(map[string]any)
	if models["additionalProperties"].(map[string]any)["properties"].(map[string]any)["input_per_1m"] == nil {
		t.Error("models entries lack input_per_1m")
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestExamplePoliciesMatchSchema checks every policy file shipped in the
// repository (policies/default.yaml, testdata, examples) against the
// schema's keys: top-level keys first, then every nested key.
func TestExamplePoliciesMatchSchema(t *testing.T) {
	t.Parallel()
	s := loadSchema(t)
	var files []string
	for _, pat := range []string{"*.yaml", "testdata/*.yaml", "testdata/*/*.yaml", "../examples/*/*.yaml", "../examples/*/*/*.yaml",
		"../cmd/tokenwise/testdata/*.yaml", "../cmd/tokenwise/testdata/*/*.yaml"} {
		m, _ := filepath.Glob(pat)
		for _, f := range m {
			if filepath.Base(f) != "catalog.yaml" && !strings.Contains(f, "broken") {
				files = append(files, f)
			}
		}
	}
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	top := s["properties"].(map[string]any)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for k := range doc {
			if _, ok := top[k]; !ok {
				t.Errorf("%s: top-level key %q is not in the schema", f, k)
			}
		}
		for _, p := range unknownKeys("", s, doc) {
			t.Errorf("%s: key %s is not in the schema", f, p)
		}
	}
	t.Logf("checked %d files: %v", len(files), files)
	// The walk does catch a misspelt nested key.
	var bad map[string]any
	if err := yaml.Unmarshal([]byte("budget:\n  run: {max_usd: 1, max_dollars: 2}\nrouting:\n  rules: [{model: x, whenn: {}}]\n"), &bad); err != nil {
		t.Fatal(err)
	}
	if got := unknownKeys("", s, bad); !slices.Equal(slices.Sorted(slices.Values(got)), []string{".budget.run.max_dollars", ".routing.rules[].whenn"}) {
		t.Errorf("unknownKeys on a bad policy = %v", got)
	}
}

// unknownKeys walks v along schema s and returns the paths of keys the
// schema forbids.
func unknownKeys(path string, s map[string]any, v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for k, x := range v {
			if sub, ok := props[k].(map[string]any); ok {
				out = append(out, unknownKeys(path+"."+k, sub, x)...)
			} else if sub, ok := s["additionalProperties"].(map[string]any); ok {
				out = append(out, unknownKeys(path+"."+k, sub, x)...)
			} else if s["additionalProperties"] == false {
				out = append(out, path+"."+k)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for _, x := range v {
				out = append(out, unknownKeys(path+"[]", items, x)...)
			}
		}
	}
	return out
}

// valid reports whether v satisfies schema s, for the keywords the policy
// schema uses (type, const, enum, pattern, minLength, bounds, anyOf,
// properties, additionalProperties, items, minItems, required).
func valid(s map[string]any, v any) bool {
	if alts, ok := s["anyOf"].([]any); ok {
		if !slices.ContainsFunc(alts, func(a any) bool { return valid(a.(map[string]any), v) }) {
			return false
		}
	}
	num, isNum := v.(float64)
	switch s["type"] {
	case "string":
		str, ok := v.(string)
		if !ok {
			return false
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			return false
		}
		if m, ok := s["minLength"].(float64); ok && float64(utf8.RuneCountInString(str)) < m {
			return false
		}
	case "integer":
		if !isNum || num != float64(int64(num)) {
			return false
		}
	case "number":
		if !isNum {
			return false
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return false
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return false
		}
		if m, ok := s["minItems"].(float64); ok && float64(len(arr)) < m {
			return false
		}
		for _, x := range arr {
			if !valid(s["items"].(map[string]any), x) {
				return false
			}
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		props, _ := s["properties"].(map[string]any)
		for k, x := range obj {
			if sub, ok := props[k].(map[string]any); ok {
				if !valid(sub, x) {
					return false
				}
			} else if sub, ok := s["additionalProperties"].(map[string]any); ok {
				if !valid(sub, x) {
					return false
				}
			} else if s["additionalProperties"] == false {
				return false
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					return false
				}
			}
		}
	}
	if c, ok := s["const"]; ok && c != v {
		return false
	}
	if e, ok := s["enum"].([]any); ok && !slices.Contains(e, v) {
		return false
	}
	if isNum {
		if m, ok := s["minimum"].(float64); ok && num < m {
			return false
		}
		if m, ok := s["maximum"].(float64); ok && num > m {
			return false
		}
		if m, ok := s["exclusiveMinimum"].(float64); ok && num <= m {
			return false
		}
		if m, ok := s["exclusiveMaximum"].(float64); ok && num >= m {
			return false
		}
		// As editors' validators do: a quotient within rounding of an
		// integer is a multiple.
		if m, ok := s["multipleOf"].(float64); ok {
			if q := num / m; math.Abs(q-math.Round(q)) > 1e-9*math.Max(1, math.Abs(q)) {
				return false
			}
		}
	}
	return true
}

// TestSchemaAsStrictAsTheLoader sets single fields to many values —
// durations with and without units, negative counts, fractions out of
// range, store kinds — and checks that the schema an editor uses accepts
// exactly what the loader accepts.
func TestSchemaAsStrictAsTheLoader(t *testing.T) {
	t.Parallel()
	s := loadSchema(t)
	durations := []string{"0", "30s", "200ms", "1h30m", "1d", "1.5s", ".5m", "7d12h", "200", "1.5", "-5s", "5 s", "s", "5x", "\"30s\"", "\"200\"", "-0", "0s", "1us"}
	counts := []string{"0", "1", "10", "-1", "-100", "1.5", "\"3\"", "true"}
	fractions := []string{"0", "0.5", "1", "1.01", "-0.1", "2", "\"0.5\""}
	percentiles := []string{"0", "50", "95", "99.9", "100", "-1", "150"}
	sizes := []string{"0", "8192", "64MiB", "2KB", "1.5KiB", "100b", "-1", "64 mib", "lots", "1PB"}
	stores := []string{"memory", "redis", "dir", "disk", "Memory"}
	// Amounts: at most six decimals, trailing zeros aside. (1e3 as a
	// number is 1000 to a JSON validator; the loader reads its text.)
	usds := []string{"0", "0.5", "1.25", "0.000001", "0.0000001", "1.1234567", "1.1234560", "\"0.15\"", "\"$2.50\"", "\"0.0000001\"",
		"\"1.1234567\"", "\"1.12345600\"", "\".5\"", "\"1.\"", "\"1e3\"", "\"x\""}
	fields := []struct {
		doc    string // %s is the value
		values []string
	}{
		{"timeouts: {call: %s}", durations},
		{"fallback:\n  retry: {base_delay: %s}", durations},
		{"cache: {ttl: %s}", durations},
		{"limits: {max_calls: %s}", counts},
		{"cache: {max_entries: %s}", counts},
		{"tools: {max_parallel: %s}", counts},
		{"budget:\n  request: {max_input_tokens: %s}", counts},
		{"budget: {warn_at: [%s]}", fractions},
		{"fallback:\n  breaker: {failure_ratio: %s}", fractions},
		{"context: {window_fraction: %s}", fractions},
		{"fallback:\n  hedge: {percentile: %s}", percentiles},
		{"cache: {max_bytes: %s}", sizes},
		{"budget:\n  store: {kind: %s}", stores},
		{"budget:\n  run: {max_usd: %s}", usds},
		{"cache: {store: %s}", stores},
		{"tools:\n  artifacts: {store: %s}", []string{"memory", "redis", "disk", "Memory"}}, // dir needs a dir: a cross-field rule
		{"timeouts:\n  models:\n    - match: [%s]\n      call: 5m", []string{"o3", "\"o3*\"", "\"o3*\", gpt-5", "\"\"", "\" \"", "\"o1[\"", "\"openai/*\"", "\"\\t\""}},
		{"timeouts:\n  models:\n    - match: %s\n      call: 5m", []string{"[o3]", "[]", "o3", "null", "{o3: 1}"}},
		{"timeouts:\n  models:\n    - {match: [o3], idle: %s}", durations},
		{"timeouts:\n  models:\n    - %s", []string{"{match: [o3]}", "{match: [o3], total: 0}", "{match: [o3], total: 5m}", "{match: [o3], call: 0, idle: 1m}", "{match: [o3], tool: 1m, call: 1m}"}},
	}
	checked := 0
	for _, f := range fields {
		for _, v := range f.values {
			src := "version: 1\n" + strings.ReplaceAll(f.doc, "%s", v) + "\n"
			_, loadErr := policies.LoadBytes([]byte(src), "p.yaml")
			var doc any
			if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			// Compare as JSON values: what an editor's validator sees.
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var jv any
			if err := json.Unmarshal(b, &jv); err != nil {
				t.Fatal(err)
			}
			if schemaOK := valid(s, jv); schemaOK != (loadErr == nil) {
				t.Errorf("%q: schema accepts=%v, loader error=%v", src, schemaOK, loadErr)
			}
			checked++
		}
	}
	t.Logf("%d documents: schema and loader agree", checked)
}

// A duration without a unit is an error whose message does not guess the
// unit: 200 may mean 200ms as well as 200s.
func TestDurationWithoutUnitIsAnError(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"200", "1.5", "\"200\""} {
		_, err := policies.LoadBytes([]byte("version: 1\nfallback:\n  retry: {base_delay: "+v+"}\n"), "p.yaml")
		if err == nil {
			t.Fatalf("base_delay: %s accepted", v)
		}
		if msg := err.Error(); !strings.Contains(msg, "missing unit") || !strings.Contains(msg, "ms") || strings.Contains(msg, "e.g. \"200s\"") {
			t.Errorf("base_delay: %s: %v", v, err)
		}
	}
}
