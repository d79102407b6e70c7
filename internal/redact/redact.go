// Package redact is a helper of the adapters that removes credentials from
// what a provider sends back (error bodies, error messages, headers) before
// it reaches an error, an event, a log, a trace, a run report or a cache.
//
// What is replaced by [Mask]:
//
//   - every secret the caller names (the configured API key, the bearer
//     token of the request), wherever it appears, 8 bytes or longer;
//   - "Bearer <token>" and "Basic <token>", any case: the token;
//   - key-shaped strings: sk-… (OpenAI, sk-proj-…, Anthropic sk-ant-…),
//     AIza… (Google), gsk_… (Groq), xai-…, hf_… (Hugging Face), ghp_… and
//     github_pat_…, each with at least 16 characters after the prefix;
//   - the value after a word that names a credential — key, api_key,
//     apikey, token, access_token, secret, password, authorization —
//     followed by ':' or '=' (quotes allowed) when the value is 16 or more
//     characters of [A-Za-z0-9._~+/=-]: long hex and base64 tokens.
//
// Header values of Authorization, Proxy-Authorization, Api-Key, X-Api-Key,
// Cookie and Set-Cookie are replaced whole by [Header]; the other values go
// through Mask. Mask is meant for failure paths: it uses regular
// expressions and allocates.
package redact

import (
	"net/http"
	"regexp"
	"strings"
)

// Redacted replaces what is removed.
const Redacted = "[REDACTED]"

// minSecret is the shortest named secret that is looked for: shorter
// strings would match ordinary text.
const minSecret = 8

var (
	bearer    = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}`)
	keyShaped = regexp.MustCompile(`\b(sk-|AIza|gsk_|xai-|hf_|ghp_|github_pat_)[A-Za-z0-9_-]{16,}`)
	named     = regexp.MustCompile(`(?i)((?:api[_-]?key|access[_-]?token|secret|password|authorization|token|key)["']?\s*[:=]\s*["']?)([A-Za-z0-9._~+/=-]{16,})`)
)

// Mask returns s with the secrets and every key-shaped string replaced by
// Redacted. It returns s itself when there is nothing to replace.
func Mask(s string, secrets ...string) string {
	for _, k := range secrets {
		if len(k) >= minSecret && strings.Contains(s, k) {
			s = strings.ReplaceAll(s, k, Redacted)
		}
	}
	s = bearer.ReplaceAllString(s, "${1}${2}"+Redacted)
	s = keyShaped.ReplaceAllString(s, Redacted)
	s = named.ReplaceAllString(s, "${1}"+Redacted)
	return s
}

// Bytes is Mask for a body. It returns b itself when there is nothing to
// replace.
func Bytes(b []byte, secrets ...string) []byte {
	s := string(b)
	if m := Mask(s, secrets...); m != s {
		return []byte(m)
	}
	return b
}

// sensitive are the headers whose values are credentials.
var sensitive = []string{"Authorization", "Proxy-Authorization", "Api-Key", "X-Api-Key", "Cookie", "Set-Cookie", "X-Goog-Api-Key"}

// Header returns a copy of h with credential headers replaced and every
// other value masked. A nil h gives nil.
func Header(h http.Header, secrets ...string) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			c[i] = Mask(v, secrets...)
		}
		out[k] = c
	}
	for _, k := range sensitive {
		if vs, ok := out[k]; ok {
			for i := range vs {
				vs[i] = Redacted
			}
		}
	}
	return out
}

// Secrets returns the credentials a request carries: the token of its
// Authorization header (without "Bearer ") and the values of Api-Key,
// X-Api-Key and X-Goog-Api-Key, for Mask to look for in the answer.
func Secrets(h http.Header) []string {
	var out []string
	if v := h.Get("Authorization"); v != "" {
		if _, tok, ok := strings.Cut(v, " "); ok {
			v = strings.TrimSpace(tok)
		}
		out = append(out, v)
	}
	for _, k := range []string{"Api-Key", "X-Api-Key", "X-Goog-Api-Key"} {
		if v := h.Get(k); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Error returns err with its text masked: an error whose Error() is the
// masked text and whose Unwrap returns err, so that errors.Is and
// errors.As still see the causes. It returns err itself when its text has
// nothing to mask, and nil for nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if m := Mask(msg, secrets...); m != msg {
		return &maskedError{msg: m, err: err}
	}
	return err
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
