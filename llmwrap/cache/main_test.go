package cache_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/policies"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cachePolicy is a policy with only the cache on, so that the tests do not
// depend on other layers.
func cachePolicy(c policies.Cache) *policies.Policy {
	c.Enabled = true
	return &policies.Policy{Version: policies.Version, Cache: c}
}
