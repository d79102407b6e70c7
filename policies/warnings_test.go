package policies

import (
	"strings"
	"testing"
)

// TestWarningsWorstCaseCallOverBudget: policy check warns when one
// worst-case call costs more than the run or team budget, on every model
// that may serve a call, and stays quiet once the request caps make every
// call fit.
func TestWarningsWorstCaseCallOverBudget(t *testing.T) {
	t.Parallel()
	src := `version: 1
budget:
  run: {max_usd: 0.10}
  team: {period: daily, max_tokens: 20000}
routing:
  default: gpt-4o
  rules:
    - name: cheap
      when: {stage: tool_selection}
      model: gpt-4o-mini
`
	p, err := LoadBytes([]byte(src), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ws := p.Warnings()
	var text []string
	for _, w := range ws {
		text = append(text, w.String())
	}
	all := strings.Join(text, "\n")
	want := "w.yaml:6:3: routing.default: a worst-case call on gpt-4o (16384 output tokens) reserves $0.16384, more than budget.run.max_usd $0.10"
	if !strings.Contains(all, want) {
		t.Errorf("warnings lack %q:\n%s", want, all)
	}
	if strings.Contains(all, "gpt-4o-mini (16384 output tokens) reserves $") {
		t.Errorf("gpt-4o-mini's worst case ($0.0098) fits $0.10, yet:\n%s", all)
	}
	if len(ws) != 1 {
		t.Errorf("got %d warnings, want 1 (16,384 tokens fit the 20,000-token team budget):\n%s", len(ws), all)
	}

	p.Budget.Request.MaxOutputTokens = 2000
	if ws := p.Warnings(); len(ws) != 0 {
		t.Errorf("with max_output_tokens 2000 every call fits, yet: %v", ws)
	}
	p.Budget.Request.MaxInputTokens = 19000
	if ws := p.Warnings(); len(ws) != 2 || !strings.Contains(ws[0].Msg, "and 19000 input tokens") {
		t.Errorf("19,000 input + 2,000 output tokens exceed the team's 20,000 on both models: %v", ws)
	}
}
