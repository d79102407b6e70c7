package gateway

// CORS: the gateway's answer to browsers. A page of an allowed origin
// gets its preflight answered by the gateway itself (no key is needed for
// it: browsers send none) and every answer carries the headers that let
// the page read it; the upstream's own CORS headers never reach the
// browser, so the gateway's file alone decides.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultCORSMaxAge is how long a browser keeps a preflight's answer when
// cors.max_age is zero.
const DefaultCORSMaxAge = 10 * time.Minute

// corsExposed are the answer's headers a page may read: the request id,
// the retry and rate-limit headers the SDKs read, and the gateway's own.
var corsExposed = strings.Join([]string{
	"X-Request-Id", "Retry-After", "Retry-After-Ms", "X-Should-Retry", "Openai-Processing-Ms", "Openai-Version",
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
	CallIDHeader, RunIDHeader,
}, ", ")

// corsPolicy is a gateway file's cors section, ready to answer.
type corsPolicy struct {
	any     bool
	origins []string // lower case
	maxAge  string   // seconds
}

// newCORS returns the policy of c; nil when it allows no origin.
func newCORS(c CORS) *corsPolicy {
	if len(c.AllowedOrigins) == 0 {
		return nil
	}
	p := &corsPolicy{maxAge: strconv.Itoa(int(durationOr(c.MaxAge, DefaultCORSMaxAge) / time.Second))}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			p.any = true
		}
		p.origins = append(p.origins, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	return p
}

func (p *corsPolicy) allows(origin string) bool {
	return p.any || slices.Contains(p.origins, strings.ToLower(origin))
}

// originProblem says what is wrong with an allowed origin of the file;
// "" when it is one.
func originProblem(o string) string {
	if o == "*" {
		return ""
	}
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "":
		return "is not an origin: write scheme://host[:port], e.g. https://app.example.com, or \"*\" for any"
	case u.Scheme != "http" && u.Scheme != "https":
		return "is not an http or https origin"
	case strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "has more than scheme://host[:port]: a browser's Origin never has a path, query or user"
	}
	return ""
}

// withCORS answers browsers' preflights of r and adds the CORS headers to
// the answer of an allowed origin's call; any other request passes as it
// is.
func (s *Server) withCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.cors.Load()
		origin := r.Header.Get("Origin")
		if p == nil || origin == "" {
			h.ServeHTTP(w, r)
			return
		}
		hdr := w.Header()
		hdr.Add("Vary", "Origin")
		allowed := p.allows(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hdr.Add("Vary", "Access-Control-Request-Method")
			hdr.Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				s.refuse(w, &apiError{Status: http.StatusForbidden, Type: "invalid_request_error", Code: "origin_not_allowed", NoRetry: true,
					Message: "tokenwise/gateway: origin " + strconv.Quote(origin) + " is not in the gateway file's cors.allowed_origins"})
				return
			}
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
				hdr.Set("Access-Control-Allow-Headers", rh)
			}
			hdr.Set("Access-Control-Max-Age", p.maxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Set("Access-Control-Expose-Headers", corsExposed)
		}
		h.ServeHTTP(w, r)
	})
}

// isCORS reports whether k (canonical) is a CORS header of an answer:
// the upstream's are never passed on (the gateway's file decides).
func isCORS(k string) bool { return strings.HasPrefix(k, "Access-Control-") }

// dropCORS deletes the upstream's CORS headers from its answer's h.
func dropCORS(h http.Header) {
	for k := range h {
		if isCORS(http.CanonicalHeaderKey(k)) {
			delete(h, k)
		}
	}
}
