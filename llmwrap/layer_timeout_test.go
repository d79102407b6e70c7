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
