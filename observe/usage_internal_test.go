package observe

import (
	"math/rand/v2"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// Every usage field survives the trace, so a replay prices what was
// billed (audio included).
func TestTraceUsageRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	for range 1000 {
		u := middleware.Usage{InputTokens: rng.Int64(), OutputTokens: rng.Int64(), CachedInputTokens: rng.Int64(), CacheWriteTokens: rng.Int64(),
			ReasoningTokens: rng.Int64(), AudioInputTokens: rng.Int64(), AudioOutputTokens: rng.Int64()}
		if got := traceUsage(u).Usage(); got != u {
			t.Fatalf("%+v came back as %+v", u, got)
		}
	}
}
