package route

import (
	"context"
	"strings"

	"github.com/tokenwise/tokenwise/middleware"
)

// DetectStage infers a call's stage from its request, as
// middleware.DetectStage does, and also recognises a one-shot (ReAct)
// agent's prompt: langchaingo's one-shot agent sends one user message
// holding the question and a scratchpad of Thought/Action/Observation
// lines; an Observation after the last "Question:" means the model is
// reading a tool result. priorCalls is the number of calls the run already
// made.
func DetectStage(req *middleware.Request, priorCalls int) middleware.Stage {
	if last := req.LastMessage(); last != nil && last.Role == middleware.RoleUser && len(req.Tools) == 0 {
		text := last.Text()
		if q := strings.LastIndex(text, "Question:"); q >= 0 {
			if strings.Contains(text[q:], "\nObservation:") {
				return middleware.StageResultAnalysis
			}
			return middleware.StageToolSelection
		}
	}
	return middleware.DetectStage(req, priorCalls)
}

// IsFinalAnswer reports whether resp answers the user rather than asking
// for a tool: it calls no tool, has text, and is not a one-shot agent's
// "Action:/Action Input:" step.
func IsFinalAnswer(resp *middleware.Response) bool {
	if resp == nil || len(resp.Message.ToolCalls) > 0 {
		return false
	}
	text := resp.Message.Text()
	if strings.TrimSpace(text) == "" {
		return false
	}
	if strings.Contains(text, "Final Answer:") {
		return true
	}
	return !(strings.Contains(text, "Action:") && strings.Contains(text, "Action Input:"))
}

// stageOf returns the stage of the call: declared in the context, or
// detected with DetectStage.
func stageOf(ctx context.Context, req *middleware.Request) middleware.Stage {
	if s := middleware.StageFrom(ctx); s != middleware.StageUnknown {
		return s
	}
	prior := 0
	if ci := middleware.CallInfoFrom(ctx); ci != nil {
		prior = max(ci.Seq()-1, 0)
	} else if run := middleware.RunFrom(ctx); run != nil {
		prior = run.Seq()
	}
	return DetectStage(req, prior)
}
