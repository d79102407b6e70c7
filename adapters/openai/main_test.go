package openai_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// stream's chain goroutine must end with its call.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
