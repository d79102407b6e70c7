package policies_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/tokenwise/tokenwise/policies"
)

const regenerate = "go run ./cmd/tokenwise policy schema > policies/schema.json"

// TestSchemaInSync regenerates the JSON Schema from the structs and compares
// it with the shipped policies/schema.json.
func TestSchemaInSync(t *testing.T) {
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
