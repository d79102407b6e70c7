package middleware

import (
	"bytes"
	"encoding/json"
)

// NativeServiceTier is implemented by an adapter's request Native that
// knows the processing tier the request asks for outside Extra (the
// OpenAI adapter's: service_tier does not change the answer, so it is no
// part of Extra and of the cache key, but it changes the price).
type NativeServiceTier interface {
	RequestedServiceTier() string
}

// RequestServiceTier returns the processing tier req asks for: its
// Native's (NativeServiceTier), else the service_tier member of its Extra
// ("flex", "priority", "scale", ...),
// or "" for none, "auto" and "default" — the standard rate, which is what
// "auto" bills unless the provider's project is set to another tier.
// Prices differ per tier (see policies.ModelSpec.ServiceTiers): the
// budget reserves a call at the rate of the tier it asks for, and a call
// whose answer does not say which tier processed it is billed at it.
func RequestServiceTier(req *Request) string {
	if req == nil {
		return ""
	}
	if n, ok := req.Native.(NativeServiceTier); ok {
		if t := n.RequestedServiceTier(); t != "" {
			return t
		}
	}
	if !bytes.Contains(req.Extra, []byte(`"service_tier"`)) {
		return ""
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(req.Extra, &members) != nil {
		return ""
	}
	var tier string
	if json.Unmarshal(members["service_tier"], &tier) != nil {
		return ""
	}
	switch tier {
	case "auto", "default":
		return ""
	}
	return tier
}

// WithServiceTier returns u billed at req's tier when u does not say its
// own (see Usage.ServiceTier). A usage whose tier is "auto" (an answer
// that echoes the request's "the project's tier" instead of naming the
// tier it used) is billed at the tier req asks for, else it stays "auto":
// the provider project's default tier, which the pricer knows (package
// llmwrap prices it at the policy's budget.default_service_tier).
func (u Usage) WithServiceTier(req *Request) Usage {
	if u.ServiceTier == "" || u.ServiceTier == "auto" {
		if t := RequestServiceTier(req); t != "" || u.ServiceTier == "" {
			u.ServiceTier = t
		}
	}
	return u
}
