package openai

import (
	"net/http"
	"net/url"
	"sync"
)

// DefaultProviderName is the provider name recorded in errors and events
// when [WithProviderName] is not given.
const DefaultProviderName = "openai"

// An Option configures a [Transport] or a [Provider]. Options are code-side
// settings only; policies live in the chain.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithBaseTransport sets the RoundTripper that carries requests upstream,
// and, for a Transport, every request that is not a chat completion. A
// nil rt keeps the default: [http.DefaultTransport] as net/http made it,
// cloned once per process (when the first client that keeps the default
// is made, so configure http.DefaultTransport before that) and shared by
// every such client, with connections that buffer 64 KiB of a request
// instead of 4: an agent's request, often tens of kilobytes, then goes out
// in one write system call with its headers, where net/http's default
// writes the first 4 KiB and copies the rest through a buffer it allocates
// for every request. A program (or a test's HTTP mock) that has replaced
// http.DefaultTransport gets what it put there, as it is.
func WithBaseTransport(rt http.RoundTripper) Option {
	return optionFunc(func(c *config) {
		if rt != nil {
			c.base = rt
		}
	})
}

// WithProviderName sets the provider name that [middleware.ProviderError]s
// carry, e.g. "azure" or "vllm". The default is [DefaultProviderName].
func WithProviderName(name string) Option {
	return optionFunc(func(c *config) {
		if name != "" {
			c.name = name
		}
	})
}

// WithHeader adds a header to every upstream chat completion request, after
// the caller's own headers (it replaces a header of the same name). Use it
// for a [Provider] that needs more than a bearer token, e.g. "api-key" for
// Azure OpenAI.
func WithHeader(key, value string) Option {
	return optionFunc(func(c *config) {
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Set(key, value)
	})
}

// WithLegacyMaxTokens makes a middleware's output cap (a budget injecting
// [middleware.Request.MaxTokens] into a request that had none) travel as
// "max_tokens" instead of "max_completion_tokens", for OpenAI-compatible
// servers that only know the older field. A request that already carried
// either field keeps its own. Without it, an endpoint that refuses
// max_completion_tokens as unknown (a 400 or 422 naming it unrecognized,
// as Azure OpenAI's older api-versions do) is sent the cap as max_tokens
// once it has refused it.
func WithLegacyMaxTokens() Option {
	return optionFunc(func(c *config) { c.enc.legacyMaxTokens = true })
}

// WithUpstream sends each call a [Transport]'s chain makes to the upstream
// that serves the model the chain settled on (after routing, a fallback or
// a budget's downgrade) rather than to the URL of the caller's request:
// route returns the chat completions URL of model's upstream and the
// headers to set on the call (its credentials, e.g. Authorization; a
// header without a value is removed, e.g. another upstream's key); ok
// false sends it to the caller's URL with the caller's headers. route
// must be safe for concurrent use and must not modify what it returns.
// (The gateway, `tokenwise serve`, routes by it between its upstreams.)
func WithUpstream(route func(model string) (u *url.URL, header http.Header, ok bool)) Option {
	return optionFunc(func(c *config) { c.route = route })
}

// WithUnpolicedRefused makes a [Transport] refuse, with an OpenAI-shaped
// 400, every billable request it cannot run through the chain (a POST to
// the Responses API, legacy completions, embeddings, images, audio, an
// Assistants run, ...), rather than pass it to the base transport with a
// warning: for a client
// that must never spend outside its budget. (The gateway, `tokenwise
// serve`, polices the Responses API and embeddings against the team's
// budget.)
func WithUnpolicedRefused() Option {
	return optionFunc(func(c *config) { c.refuseUnpoliced = true })
}

type config struct {
	base            http.RoundTripper
	name            string
	header          http.Header
	enc             encodeOptions
	route           func(model string) (*url.URL, http.Header, bool)
	refuseUnpoliced bool
	join            int  // joinLimit of base
	netHTTP         bool // base is net/http's Transport, which calls a request's trace hooks
}

func newConfig(opts []Option) config {
	c := config{name: DefaultProviderName}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.base == nil {
		c.base = DefaultBaseTransport()
	}
	c.join = joinLimit(c.base)
	_, c.netHTTP = c.base.(*http.Transport)
	return c
}

// DefaultBaseTransport returns the default base transport (see
// [WithBaseTransport]), for a caller that wraps it (an instrumented
// transport around it, given back with WithBaseTransport) or that sends
// other requests over the same connections.
func DefaultBaseTransport() http.RoundTripper {
	if http.DefaultTransport != netDefault {
		return http.DefaultTransport // replaced: the program's own
	}
	return defaultBase()
}

// netDefault is http.DefaultTransport as net/http made it.
var netDefault = http.DefaultTransport

// defaultBase is the clone of netDefault that clients keeping the default
// share.
var defaultBase = sync.OnceValue(func() http.RoundTripper { return baseFrom(netDefault) })

// baseFrom returns the default base transport made from rt: a clone of
// it with defaultWriteBuffer, rt itself when it is not an *http.Transport.
func baseFrom(rt http.RoundTripper) http.RoundTripper {
	t, ok := rt.(*http.Transport)
	if !ok {
		return rt
	}
	c := t.Clone()
	c.WriteBufferSize = defaultWriteBuffer
	return c
}

// defaultWriteBuffer is the write buffer of the default base transport's
// connections.
const defaultWriteBuffer = 64 << 10
