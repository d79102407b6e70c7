package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
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

// guardConfig maps policy.limits and budget.run's max_calls and
// max_wall_time: the smaller non-zero value of the two places a policy can
// set each wins.
func guardConfig(p *policies.Policy) guard.Config {
	l := guard.Config{MaxCalls: p.Limits.MaxCalls, RunTimeout: p.Limits.RunTimeout.Duration()}
	if n := p.Budget.Run.MaxCalls; n > 0 && (l.MaxCalls == 0 || n < l.MaxCalls) {
		l.MaxCalls = n
	}
	if d := p.Budget.Run.MaxWallTime.Duration(); d > 0 && (l.RunTimeout == 0 || d < l.RunTimeout) {
		l.RunTimeout = d
	}
	return l
}

// retryConfig maps policy.fallback.retry.
func retryConfig(p *policies.Policy) retry.Config {
	r := p.Fallback.Retry
	return retry.Config{
		MaxAttempts:  r.MaxAttempts,
		BaseDelay:    r.BaseDelay.Duration(),
		MaxDelay:     r.MaxDelay.Duration(),
		MaxTotalWait: r.MaxTotalWait.Duration(),
	}
}

// breakerConfig maps policy.fallback.breaker.
func breakerConfig(p *policies.Policy) breaker.Config {
	b := p.Fallback.Breaker
	return breaker.Config{
		ConsecutiveFailures: b.ConsecutiveFailures,
		FailureRatio:        b.FailureRatio,
		MinRequests:         b.MinRequests,
		OpenFor:             b.OpenFor.Duration(),
		HalfOpenProbes:      b.HalfOpenProbes,
		Window:              b.Window.Duration(),
	}
}
