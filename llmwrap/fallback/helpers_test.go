package fallback_test

import "github.com/tokenwise/tokenwise/middleware"

// layer returns the middleware of a layer built by its New, panicking on
// a construction error (the configs of these tests are valid).
func layer[L interface{ Middleware() middleware.Middleware }](l L, err error) middleware.Middleware {
	if err != nil {
		panic(err)
	}
	return l.Middleware()
}
