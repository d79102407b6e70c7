package policies

import (
	"reflect"
	"strings"
	"testing"
)

// TestDuplicateKeysAreListedWithEveryOtherProblem: a key written twice in
// one mapping (a pasted block, a second routing: at the end of the file)
// is one problem among the others, at its line with its field path and
// the line of the first, never a syntax error that hides every other
// problem of the file. YAML and JSON alike.
func TestDuplicateKeysAreListedWithEveryOtherProblem(t *testing.T) {
	t.Parallel()
	const src = `version: 1
name: dup
limts: {max_calls: 10}
budget:
  run: {max_usd: 1}
  run: {max_usd: 2}
  on_exceed: downgrad
routing:
  default: gpt-4o
  default: gpt-4o-mini
  rules:
    - {name: a, when: {stage: tool_selection}, model: gpt-4o-mini, model: gpt-4o}
models:
  local-llama: {free: true}
  local-llama: {free: true}
name: again
`
	_, err := LoadBytes([]byte(src), "dup.yaml")
	if err == nil {
		t.Fatal("a policy with duplicate keys loaded")
	}
	want := []Problem{
		{Path: "limts", File: "dup.yaml", Line: 3, Column: 1, Msg: `unknown field "limts" (did you mean "limits"?)`},
		{Path: "budget.run", File: "dup.yaml", Line: 6, Column: 3, Msg: `key "run" is given twice in this mapping (first at line 5): keep one`},
		{Path: "budget.on_exceed", File: "dup.yaml", Line: 7, Column: 3, Msg: `invalid value "downgrad": want reject, downgrade or warn (did you mean "downgrade"?)`},
		{Path: "routing.default", File: "dup.yaml", Line: 10, Column: 3, Msg: `key "default" is given twice in this mapping (first at line 9): keep one`},
		{Path: "routing.rules[0].model", File: "dup.yaml", Line: 12, Column: 68, Msg: `key "model" is given twice in this mapping (first at line 12): keep one`},
		{Path: "models.local-llama", File: "dup.yaml", Line: 15, Column: 3, Msg: `key "local-llama" is given twice in this mapping (first at line 14): keep one`},
		{Path: "name", File: "dup.yaml", Line: 16, Column: 1, Msg: `key "name" is given twice in this mapping (first at line 2): keep one`},
	}
	got := problemsOf(t, err)
	for i := range got {
		if got[i].Err != nil {
			t.Errorf("problem %d: Err = %v, want none", i, got[i].Err)
		}
		got[i].Err = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %v\nwant %v", got, want)
	}

	const js = `{
  "version": 1,
  "limits": {"max_calls": "ten"},
  "limits": {"max_calls": 5}
}`
	_, err = LoadBytes([]byte(js), "dup.json")
	got = problemsOf(t, err)
	wantJS := []string{
		"dup.json:3:27: limits.max_calls: expected an integer, got string \"ten\"",
		"dup.json:4:3: limits: key \"limits\" is given twice in this mapping (first at line 3): keep one",
	}
	var gotJS []string
	for _, p := range got {
		gotJS = append(gotJS, p.String())
	}
	if !reflect.DeepEqual(gotJS, wantJS) {
		t.Errorf("JSON problems:\n got %q\nwant %q", gotJS, wantJS)
	}
}

// TestSameKeyInOtherMappingsIsNoDuplicate: the same key in two mappings,
// a key beside the one a merge key brings in, and one anchored mapping
// read twice through aliases are no duplicates, and each problem of an
// aliased mapping is reported once.
func TestSameKeyInOtherMappingsIsNoDuplicate(t *testing.T) {
	t.Parallel()
	const ok = `version: 1
name: ok
budget:
  run: &cap {max_usd: 1}
  team: {<<: *cap, max_usd: 5, period: daily}
routing:
  rules:
    - {name: a, when: {stage: tool_selection}, model: gpt-4o-mini}
    - {name: b, when: {stage: result_analysis}, model: gpt-4o-mini}
`
	if _, err := LoadBytes([]byte(ok), "ok.yaml"); err != nil {
		t.Fatalf("a policy without duplicate keys: %v", err)
	}
	const aliased = `version: 1
name: aliased
budget:
  request: &r {max_input_tokens: 10, max_input_tokens: 20}
routing:
  rules:
    - {name: a, when: &w {stage: tool_selection, stage: final_answer}, model: gpt-4o-mini}
    - {name: b, when: *w, model: gpt-4o}
`
	_, err := LoadBytes([]byte(aliased), "aliased.yaml")
	var msgs []string
	for _, p := range problemsOf(t, err) {
		if strings.Contains(p.Msg, "given twice") {
			msgs = append(msgs, p.String())
		}
	}
	want := []string{
		"aliased.yaml:4:38: budget.request.max_input_tokens: key \"max_input_tokens\" is given twice in this mapping (first at line 4): keep one",
		"aliased.yaml:7:50: routing.rules[0].when.stage: key \"stage\" is given twice in this mapping (first at line 7): keep one",
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("duplicate problems:\n got %q\nwant %q", msgs, want)
	}
}

// TestTwoMergeKeysAreADuplicate: a mapping merges with one << key (a list
// merges several mappings); a second << is reported like any key written
// twice, not merged in some order the writer did not choose.
func TestTwoMergeKeysAreADuplicate(t *testing.T) {
	t.Parallel()
	const src = `version: 1
name: merges
budget:
  run: &a {max_usd: 1}
  request: &b {max_input_tokens: 10}
  team:
    <<: *a
    <<: *b
    period: daily
`
	_, err := LoadBytes([]byte(src), "merges.yaml")
	var msgs []string
	for _, p := range problemsOf(t, err) {
		msgs = append(msgs, p.String())
	}
	want := []string{`merges.yaml:8:5: budget.team["<<"]: key "<<" is given twice in this mapping (first at line 7): keep one`}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("problems:\n got %q\nwant %q", msgs, want)
	}
}
