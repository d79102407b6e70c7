package route

import (
	"context"

	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// IsFinalAnswer reports whether resp answers the user rather than asking
// for a tool (see instrument.IsFinalAnswer).
func IsFinalAnswer(resp *middleware.Response) bool {
	return resp != nil && instrument.IsFinalAnswer(&resp.Message)
}

// stageOf returns the stage of the call: the one the instrument layer
// recorded in the call's facts (declared with middleware.WithStage, or
// detected once with instrument.DetectStage), else the declared one, else
// instrument.DetectStage's. There is one detector, so the report's stage
// and the rule that matched it always agree.
func stageOf(ctx context.Context, req *middleware.Request) middleware.Stage {
	if ci := middleware.CallInfoFrom(ctx); ci != nil {
		if s := ci.Stage(); s != middleware.StageUnknown {
			return s
		}
	}
	if s := middleware.StageFrom(ctx); s != middleware.StageUnknown {
		return s
	}
	return instrument.DetectStage(req)
}
