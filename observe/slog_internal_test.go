package observe

import (
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

func TestUSDMatchesFormatUSD(t *testing.T) {
	for _, m := range []int64{0, 1, 9, 10, 350, 999_999, 1_000_000, 1_000_001, 12_345_678, -350, -1_000_001} {
		if got, want := usd(m), middleware.FormatUSD(m); got != want {
			t.Errorf("usd(%d) = %q, want %q", m, got, want)
		}
	}
}
