package llmwrap

import (
	"fmt"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

// The per-model timeout layers find a model's timeouts.models entry as
// policies.Timeouts.For does (the first that matches), and remember at
// most maxResolved names: a gateway's clients naming ever new models
// cannot grow the memo, and a name past it is still matched.
func TestModelMatchIsForsAndBounded(t *testing.T) {
	entries := []policies.ModelTimeouts{
		{Match: []string{"o3-pro"}, Call: policies.Duration(1)},
		{Match: []string{"o3*", "gpt-5*"}, Call: policies.Duration(2)},
		{Match: []string{"o3-mini"}, Call: policies.Duration(3)},
	}
	m := &modelMatch{entries: entries}
	want := map[string]int{"o3-pro": 0, "o3": 1, "o3-mini": 1, "gpt-5-mini": 1, "gpt-4o": 3, "": 3}
	for range 2 { // the second time from the memo
		for model, i := range want {
			if got := m.index(model); got != i {
				t.Errorf("index(%q) = %d, want %d", model, got, i)
			}
		}
	}
	for i := range maxResolved + 100 {
		m.index(fmt.Sprintf("model-%d", i))
	}
	if n := m.n.Load(); n != maxResolved {
		t.Errorf("%d names remembered, want at most %d", n, maxResolved)
	}
	if got := m.index("o3-2026-01-01"); got != 1 {
		t.Errorf("index of a name past the memo's bound = %d, want 1", got)
	}
}

// The per-model timeout layers fold case as Timeouts.For does ("O3" is
// o3's entry; a name an entry matches as written keeps it), and names in
// any number of casings still leave the memo bounded.
func TestModelMatchFoldsCase(t *testing.T) {
	to := policies.Timeouts{Models: []policies.ModelTimeouts{
		{Match: []string{"o3*", "gpt-5*"}, Call: policies.Duration(1)},
		{Match: []string{"O3-Custom"}, Call: policies.Duration(2)},
	}}
	m := &modelMatch{entries: to.Models}
	for range 2 {
		for _, model := range []string{"O3", "o3", "GPT-5-Mini", "OpenAI/O3", "O3-Custom", "O3-CUSTOM", "gpt-4o", "GPT-4O"} {
			want := to.Entry(model)
			if want < 0 {
				want = len(to.Models)
			}
			if got := m.index(model); got != want {
				t.Errorf("index(%q) = %d, want %d (Timeouts.Entry's)", model, got, want)
			}
		}
	}
	if got := m.index("O3-Custom"); got != 1 {
		t.Errorf("index(O3-Custom) = %d, want 1 (matched as written)", got)
	}
	if got := m.index("GPT-5"); got != 0 {
		t.Errorf("index(GPT-5) = %d, want 0", got)
	}
	for i := range maxResolved + 100 {
		name := []byte("o3-" + fmt.Sprint(i))
		name[0] = 'O'
		m.index(string(name))
	}
	if n := m.n.Load(); n > maxResolved {
		t.Errorf("%d names remembered, want at most %d", n, maxResolved)
	}
}
