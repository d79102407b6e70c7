package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/policies"
)

// This file is the one place that maps a policy to the layers' configs:
// each layer package takes its own plain Config and never reads a policy.

// timeoutConfig maps policy.timeouts.
func timeoutConfig(p *policies.Policy) timeout.Config {
	t := p.Timeouts
	return timeout.Config{Call: t.Call.Duration(), FirstToken: t.FirstToken.Duration(), Idle: t.Idle.Duration()}
}
