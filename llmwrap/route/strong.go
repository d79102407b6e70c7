package route

import "github.com/tokenwise/tokenwise/policies"

// StrongOnly returns a copy of p that sends every call to model: no rules,
// no cascade, no regeneration (larger_window escalation is kept). It is
// the baseline a routed run is compared with, e.g. in the DevOps example's
// side-by-side cost. Empty model means p's routing.default. The copy
// shares p's other sections: do not mutate either.
func StrongOnly(p *policies.Policy, model string) *policies.Policy {
	c := *p
	if model == "" {
		model = p.Routing.Default
	}
	c.Routing = policies.Routing{Default: model, LargerWindow: p.Routing.LargerWindow}
	return &c
}
