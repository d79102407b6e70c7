package openai

import "net/http"

// BaseFrom is baseFrom, for the tests of the default base transport.
func BaseFrom(t *http.Transport) http.RoundTripper { return baseFrom(t) }
