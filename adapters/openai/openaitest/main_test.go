package openaitest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: stalled
// handlers, latency timers and in-memory transports must all clean up.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
