package policies

import (
	"strings"
	"testing"
)

// TestValidateLearnedRouting checks routing.learned: each mistake with its
// path and line, and a valid section loads.
func TestValidateLearnedRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, path string
		line            int
		msg             string
	}{
		{"no weights", "routing:\n  default: gpt-4o\n  learned: {weak: gpt-4o-mini}\n", "routing.learned.weights", 4, "required"},
		{"threshold over one", "routing:\n  default: gpt-4o\n  learned: {weights: w.bin, weak: gpt-4o-mini, threshold: 1.5}\n", "routing.learned.threshold", 4, "not in [0,1]"},
		{"no strong", "routing:\n  learned: {weights: w.bin, weak: gpt-4o-mini}\n", "routing.learned.strong", 3, "required when routing.default is empty"},
		{"no weak", "routing:\n  default: gpt-4o\n  learned:\n    weights: w.bin\n", "routing.learned.weak", 4, "required"},
		{"unknown weak", "routing:\n  default: gpt-4o\n  learned: {weights: w.bin, weak: gpt-4o-mni}\n", "routing.learned.weak", 4, `unknown model "gpt-4o-mni"`},
		{"weak is strong", "routing:\n  default: gpt-4o\n  learned: {weights: w.bin, weak: gpt-4o}\n", "routing.learned.weak", 4, "the same model as the strong one"},
		{"unknown key", "routing:\n  default: gpt-4o\n  learned: {weights: w.bin, weak: gpt-4o-mini, thresold: 0.3}\n", "routing.learned.thresold", 4, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte("version: 1\n"+tt.src), "p.yaml")
			if err == nil {
				t.Fatalf("LoadBytes succeeded, want %s: %s", tt.path, tt.msg)
			}
			for _, pr := range problemsOf(t, err) {
				if pr.Path == tt.path && pr.Line == tt.line && strings.Contains(pr.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("no problem %s (line %d) containing %q; got:\n%v", tt.path, tt.line, tt.msg, err)
		})
	}
	p, err := LoadBytes([]byte("version: 1\nrouting:\n  default: gpt-4o\n  learned: {weights: w.bin, threshold: 0.3, weak: gpt-4o-mini}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if l := p.Routing.Learned; l.Weights != "w.bin" || l.Threshold != 0.3 || l.Weak != "gpt-4o-mini" || l.IsZero() {
		t.Fatalf("learned %+v", l)
	}
}
