package compact_test

import (
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
)

// mwOf returns the middleware of a Compactor built by compact.New (nil
// when it sets no ceiling), or New's error.
func mwOf(c *compact.Compactor, err error) (middleware.Middleware, error) {
	if err != nil {
		return nil, err
	}
	return c.Middleware(), nil
}
