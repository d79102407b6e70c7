package openaitest

import "strings"

// Matcher selects the requests a rule answers. Any func(*ChatRequest) bool
// is a Matcher, so custom conditions need no adapter:
//
//	srv.On(func(r *openaitest.ChatRequest) bool { return len(r.Tools) > 0 })
//
// Matchers run outside the server's lock and must be safe for concurrent use.
type Matcher func(*ChatRequest) bool

// Model matches requests for exactly this model.
func Model(name string) Matcher {
	return func(r *ChatRequest) bool { return r.Model == name }
}

// LastContains matches requests whose last message's text contains s.
func LastContains(s string) Matcher {
	return func(r *ChatRequest) bool {
		return len(r.Messages) > 0 && strings.Contains(r.LastMessage().Content.String(), s)
	}
}

// AnyContains matches requests in which any message's text contains s.
func AnyContains(s string) Matcher {
	return func(r *ChatRequest) bool {
		for _, m := range r.Messages {
			if strings.Contains(m.Content.String(), s) {
				return true
			}
		}
		return false
	}
}

// LastRole matches requests whose last message has this role, e.g. "user"
// for a new question or "tool" for a turn that carries tool results.
func LastRole(role string) Matcher {
	return func(r *ChatRequest) bool {
		return len(r.Messages) > 0 && r.LastMessage().Role == role
	}
}

// Streaming matches streaming requests ("stream": true).
func Streaming() Matcher {
	return func(r *ChatRequest) bool { return r.Stream }
}
