package toolwrap

import (
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// recordTurn records a turn's wall time in the run; the calls themselves
// were recorded as they finished.
func recordTurn(run *middleware.Run, wall time.Duration, _ []Result) {
	run.RecordToolTurn(wall)
}
