package route_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/policies"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustPolicy(t testing.TB, yaml string) *policies.Policy {
	t.Helper()
	p, err := policies.LoadBytes([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
