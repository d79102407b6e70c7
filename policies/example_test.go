package policies_test

import (
	"errors"
	"fmt"

	"github.com/tokenwise/tokenwise/policies"
)

// A policy file with mistakes is reported in one error, every problem on
// its own line with file:line:col and field path.
func ExampleLoadBytes() {
	src := []byte(`version: 1
name: devops
routing:
  default: gpt-4o
  rules:
    - when: {stage: tool_selection, regex: "(?i)analy[sz"}
      model: gpt-4o-mini
  fallbak: [gpt-4o-mini]
budget:
  run: {max_usd: 0.50}
  warn_at: [0.5, 1.5]
`)
	_, err := policies.LoadBytes(src, "devops.yaml")
	fmt.Println(err)

	var ve *policies.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(len(ve.Problems), "problems; first on line", ve.Problems[0].Line)
	}
	// Output:
	// devops.yaml:6:37: routing.rules[0].when.regex: invalid regex: missing closing ]: `[sz`
	// devops.yaml:8:3: routing.fallbak: unknown field "fallbak"
	// devops.yaml:11:18: budget.warn_at[1]: must be a fraction in (0,1], got 1.5
	// 3 problems; first on line 6
}

func ExampleDefault() {
	p := policies.Default()
	fmt.Printf("default %q, %s -> %s\n", p.Routing.Default, p.Routing.Rules[0].When.Stage, p.Routing.Rules[0].Model)
	fmt.Println(p.Limits.MaxCalls, p.Limits.RunTimeout, p.Timeouts.Call)
	// Output:
	// default "", tool_selection -> gpt-4o-mini
	// 10 15m 30s
}

// Cost prices a call from its token counts, exactly, in pico-dollars.
func ExampleModelSpec_Cost() {
	var p *policies.Policy // a nil policy reads the embedded catalog alone
	m, _ := p.Model("gpt-4o-2024-08-06")
	cost := m.Cost(policies.TokenCounts{Input: 10_000, CachedInput: 4_000, Output: 1_000, Reasoning: 300})
	fmt.Println(cost, cost.Ceil().Micro())
	small := m.Cost(policies.TokenCounts{Input: 7, Output: 3})
	fmt.Println(small, small.Ceil())
	// Output:
	// $0.03 30000
	// $0.0000475 $0.000048
}
