package langchaingo

import (
	"maps"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/middleware"
)

// nativeResponse is the Response.Native the provider sets: the inner
// model's response and the core view derived from it. When the response
// reaches the caller with that view unchanged, the caller gets a copy of
// the inner response itself (every choice and GenerationInfo key). It is
// immutable: nobody outside this package sees raw.
type nativeResponse struct {
	raw      *llms.ContentResponse
	view     middleware.Response // Native nil, Message cloned
	n        int                 // the request's candidate count
	streamed bool                // the inner call streamed
}

var _ middleware.NativeFinisher = (*nativeResponse)(nil)

// AllFinished implements middleware.NativeFinisher: whether every candidate
// of a request for several (n > 1) finished normally (stop, tool calls),
// not only the first, which Response.FinishReason is. A streamed answer
// of several is never whole: langchaingo's openai backend streams one
// choice (the first candidate with NewTransport; without it, the others'
// text mixed into it), not the candidates a plain call of the same
// request gets. The choices of a single answer (content blocks) finish
// with the first.
func (n *nativeResponse) AllFinished() bool {
	if n.n <= 1 {
		return true
	}
	got := 0
	for _, c := range n.raw.Choices {
		if c == nil {
			continue
		}
		if !middleware.FinishedNormally(finishReason(c.StopReason)) {
			return false
		}
		got++
	}
	return !n.streamed || got >= n.n
}

// coreResponse converts the inner model's response. The message is the
// first choice's. Unless the request asked for several candidates, later
// choices are content blocks of the same answer (Anthropic returns its
// thinking, text and tool use blocks as separate choices), so their text,
// reasoning and tool calls are appended. Usage is the first choice's,
// billed at tier when it is not "" (the service_tier the answer named,
// which the backends do not decode: see httpFailure.setTier).
func coreResponse(cr *llms.ContentResponse, req *middleware.Request, tier string) (*middleware.Response, bool) {
	if cr == nil || len(cr.Choices) == 0 || cr.Choices[0] == nil {
		return nil, false
	}
	c0 := cr.Choices[0]
	box := &responseBox{}
	resp, nr := &box.resp, &box.nat
	*resp = middleware.Response{
		Model:        req.Model,
		Message:      middleware.Message{Role: middleware.RoleAssistant, Content: c0.Content, Reasoning: reasoningOf(c0)},
		FinishReason: finishReason(c0.StopReason),
		Usage:        responseUsage(cr),
	}
	if tier != "" && !resp.Usage.IsZero() {
		resp.Usage.ServiceTier = tier
	}
	resp.Message.ToolCalls = appendToolCalls(nil, c0)
	if req.N <= 1 {
		for _, c := range cr.Choices[1:] {
			if c == nil {
				continue
			}
			resp.Message.Content += c.Content
			resp.Message.Reasoning += reasoningOf(c)
			resp.Message.ToolCalls = appendToolCalls(resp.Message.ToolCalls, c)
			if resp.FinishReason == "" {
				resp.FinishReason = finishReason(c.StopReason)
			}
		}
	}
	*nr = nativeResponse{raw: cr, view: *resp, n: req.N, streamed: req.Stream != nil}
	nr.view.Message = resp.Message.Clone()
	resp.Native = nr
	return resp, true
}

// responseBox holds a core response and its Native in one allocation.
type responseBox struct {
	resp middleware.Response
	nat  nativeResponse
}

func reasoningOf(c *llms.ContentChoice) string {
	if c.ReasoningContent != "" {
		return c.ReasoningContent
	}
	s, _ := c.GenerationInfo["ThinkingContent"].(string)
	return s
}

func appendToolCalls(out []middleware.ToolCall, c *llms.ContentChoice) []middleware.ToolCall {
	for _, tc := range c.ToolCalls {
		call := middleware.ToolCall{ID: tc.ID}
		if tc.FunctionCall != nil {
			call.Name, call.Arguments = tc.FunctionCall.Name, tc.FunctionCall.Arguments
		}
		out = append(out, call)
	}
	if len(c.ToolCalls) == 0 && c.FuncCall != nil {
		// A legacy function call only.
		out = append(out, middleware.ToolCall{Name: c.FuncCall.Name, Arguments: c.FuncCall.Arguments})
	}
	return out
}

// finishReason maps the backends' stop reasons to the core's finish
// reasons; others pass through unchanged.
func finishReason(s string) string {
	k := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	k = strings.TrimPrefix(k, "finishreason")
	switch k {
	case "stop", "endturn", "stopsequence", "eos", "eostoken":
		return middleware.FinishStop
	case "length", "maxtokens", "modellength":
		return middleware.FinishLength
	case "toolcalls", "functioncall", "tooluse":
		return middleware.FinishToolCalls
	case "contentfilter", "safety", "recitation", "blocklist", "prohibitedcontent", "spii", "refusal":
		return middleware.FinishContentFilter
	}
	return s
}

// contentResponse converts the chain's answer for the caller. It always
// returns memory the caller owns: mutating it never affects a later call,
// a cache or a recorded run.
func contentResponse(resp *middleware.Response) *llms.ContentResponse {
	nr, _ := resp.Native.(*nativeResponse)
	if nr != nil && sameAnswer(resp, &nr.view) {
		return copyContentResponse(nr.raw)
	}
	if cr := storedContentResponse(resp); cr != nil {
		return cr // a cache hit: every choice of the stored answer
	}
	m := &resp.Message
	c := &llms.ContentChoice{Content: m.Content, ReasoningContent: m.Reasoning, StopReason: resp.FinishReason}
	for _, tc := range m.ToolCalls {
		c.ToolCalls = append(c.ToolCalls, llms.ToolCall{ID: tc.ID, Type: "function",
			FunctionCall: &llms.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	if len(c.ToolCalls) > 0 {
		c.FuncCall = c.ToolCalls[0].FunctionCall // as the openai backend does
	}
	switch {
	case nr != nil && nr.raw.Choices[0].GenerationInfo != nil:
		c.GenerationInfo = maps.Clone(nr.raw.Choices[0].GenerationInfo)
		if resp.Usage != nr.view.Usage {
			writeUsage(c.GenerationInfo, resp.Usage)
		}
	default:
		c.GenerationInfo = make(map[string]any, 8)
		writeUsage(c.GenerationInfo, resp.Usage)
	}
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{c}}
}

func sameAnswer(a, b *middleware.Response) bool {
	return a.FinishReason == b.FinishReason && a.Usage == b.Usage && a.Message.Equal(&b.Message)
}

// copyContentResponse copies a response down to its choices' tool calls and
// GenerationInfo maps (values inside the maps are shared: the backends put
// numbers, strings and provider metadata there).
func copyContentResponse(cr *llms.ContentResponse) *llms.ContentResponse {
	var out *llms.ContentResponse
	var choices []llms.ContentChoice
	if len(cr.Choices) == 1 {
		// The common case in one allocation.
		box := &struct {
			resp    llms.ContentResponse
			ptrs    [1]*llms.ContentChoice
			choices [1]llms.ContentChoice
		}{}
		out, choices = &box.resp, box.choices[:]
		out.Choices = box.ptrs[:]
	} else {
		out = &llms.ContentResponse{Choices: make([]*llms.ContentChoice, len(cr.Choices))}
		choices = make([]llms.ContentChoice, len(cr.Choices))
	}
	for i, c := range cr.Choices {
		if c == nil {
			continue
		}
		cc := &choices[i]
		*cc = *c
		cc.GenerationInfo = maps.Clone(c.GenerationInfo)
		if c.ToolCalls != nil {
			cc.ToolCalls = make([]llms.ToolCall, len(c.ToolCalls))
			for j, tc := range c.ToolCalls {
				if tc.FunctionCall != nil {
					fc := *tc.FunctionCall
					tc.FunctionCall = &fc
				}
				cc.ToolCalls[j] = tc
			}
		}
		if c.FuncCall != nil {
			// Keep the openai backend's aliasing of FuncCall and the first
			// tool call's function.
			if len(c.ToolCalls) > 0 && c.FuncCall == c.ToolCalls[0].FunctionCall {
				cc.FuncCall = cc.ToolCalls[0].FunctionCall
			} else {
				fc := *c.FuncCall
				cc.FuncCall = &fc
			}
		}
		out.Choices[i] = cc
	}
	return out
}
