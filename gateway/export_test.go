package gateway

import (
	"errors"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// SetAnswerBounds sets how much of a Responses answer the gateway reads
// to charge it, and returns a function that restores it (tests of
// answers over the bound, which would otherwise need answers of tens of
// megabytes).
func SetAnswerBounds(responses int) (restore func()) {
	r := maxResponsesEvent
	maxResponsesEvent = responses
	return func() { maxResponsesEvent = r }
}

// FailResponsesChains makes every policy's fallback section fail to build
// for the Responses calls (their chain), as one the policy checks let
// through would; restore undoes it.
func FailResponsesChains() (restore func()) {
	r := resilienceOf
	resilienceOf = func(*llmwrap.Registry, *policies.Policy) (*llmwrap.Resilience, error) {
		return nil, errors.New("tokenwise/fallback: invalid config: a test's")
	}
	return func() { resilienceOf = r }
}

// SetMaxResponseOwners sets how many response ids the gateway keeps the
// creating team of in memory; restore undoes it.
func SetMaxResponseOwners(n int) (restore func()) {
	r := maxResponseOwners
	maxResponseOwners = n
	return func() { maxResponseOwners = r }
}
