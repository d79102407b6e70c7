package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/tidwall/sjson"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// A Responses call goes through its team's routing.cascade as a chat
// call goes through the chain's: a call routed
// to one of the cascade's models (or, when no rule matched and the policy
// has no routing.default, any call, from the cascade's first model) is
// sent to that model first, through the team's fallback chain; its
// answer is read whole and checked (routing.cascade.checks, all three
// when none is listed: valid_tool_json — function calls name a tool the
// request offers, with arguments that are a JSON object matching its
// parameters —, non_empty — text, or a call of a tool —, finish_reason —
// the status completed, not incomplete); an answer that fails a check is
// charged at its usage (the provider billed it) and the call escalates to
// the next model, whose answer the client gets, checked in turn but for
// the last model's. An error that the fallback chain could not help
// escalates too, but for a budget's refusal and the call's own end. The
// run's record has the call once, at the cost of every attempt, each
// rejected answer under its model with the check that failed. A stream of
// a model that is not the cascade's last is held back until it ends (as
// the chain holds a chat stream back; its read bounded by the team's
// first_token and idle as a stream passed on is), and its final event's
// response checked: the client reads one stream, of the model whose answer passed
// (the last model's, live). A stream that is cut, longer than the
// gateway reads whole, or without a final response to check, is passed
// on as it came.

// cascadeOf returns the models a call of req (as routed) tries under
// pol's cascade, in order; nil when no cascade applies.
func cascadeOf(pol *policies.Policy, req *responsesRequest) []string {
	if pol == nil || req.background() {
		// A background call's answer is a response queued, with nothing
		// to check yet: escalated, it would start a second response.
		return nil
	}
	models := pol.Routing.Cascade.Models
	if len(models) < 2 {
		return nil
	}
	start := slices.Index(models, req.Model)
	if start < 0 && !req.routed && pol.Routing.Default == "" {
		start = 0 // no rule matched, no default: the cascade decides
	}
	if start < 0 || start == len(models)-1 && models[start] == req.Model {
		return nil
	}
	return models[start:]
}

// cascadeChecks returns the checks pol's cascade lists (the chat path's
// own: route.BuiltinChecks).
func cascadeChecks(pol *policies.Policy) []route.NamedCheck {
	names := make([]route.CheckName, len(pol.Routing.Cascade.Checks))
	for i, c := range pol.Routing.Cascade.Checks {
		names[i] = route.CheckName(c)
	}
	return route.BuiltinChecks(names)
}

// responsesView is a Responses answer as the cascade's checks read it: a
// chat answer of its output text, its function calls as tool calls and
// its status as a finish reason; acted when it calls another kind of tool
// (custom, hosted), whose input is not a JSON object of a function's.
type responsesView struct {
	resp  middleware.Response
	acted bool
}

// viewResponses reads the response object b for the cascade's checks;
// false when b is not one.
func viewResponses(b []byte) (*responsesView, bool) {
	var o struct {
		Status            string `json:"status"`
		IncompleteDetails *struct {
			Reason string `json:"reason"`
		} `json:"incomplete_details"`
		Output []struct {
			Type    string `json:"type"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			CallID    string `json:"call_id"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"output"`
	}
	if json.Unmarshal(b, &o) != nil || o.Status == "" || o.Output == nil {
		return nil, false // (an answer without its output cannot be checked)
	}
	v := &responsesView{}
	var text strings.Builder
	for _, it := range o.Output {
		switch {
		case it.Type == "message":
			for _, c := range it.Content {
				if c.Type == "output_text" {
					text.WriteString(c.Text)
				}
			}
		case it.Type == "function_call":
			v.resp.Message.ToolCalls = append(v.resp.Message.ToolCalls, middleware.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments})
		case it.Type != "reasoning" && strings.HasSuffix(it.Type, "_call"):
			v.acted = true
		}
	}
	v.resp.Message.Role = middleware.RoleAssistant
	v.resp.Message.Content = text.String()
	switch o.Status {
	case "completed":
		v.resp.FinishReason = middleware.FinishStop
		if len(v.resp.Message.ToolCalls) > 0 {
			v.resp.FinishReason = middleware.FinishToolCalls
		}
	case "incomplete":
		v.resp.FinishReason = "incomplete"
		if d := o.IncompleteDetails; d != nil {
			switch d.Reason {
			case "max_output_tokens":
				v.resp.FinishReason = middleware.FinishLength
			case "content_filter":
				v.resp.FinishReason = middleware.FinishContentFilter
			}
		}
	default:
		v.resp.FinishReason = o.Status
	}
	return v, true
}

// check runs the call's cascade checks on the answer of attempt a, of
// model; nil when it passes them, or cannot be read whole to check.
func (c *responsesCall) check(a *responsesAttempt, model string) *route.RejectedError {
	c.bound.held(a.resp) // read under the attempt's clocks, as an answer passed on is
	v, ok := viewOf(a)
	if !ok {
		return nil // too long, cut, or without a final response: passed on as it is, the charge tells
	}
	req := responsesConversation(c.req)
	for _, ch := range c.checks {
		if v.acted && ch.Name == string(route.CheckNonEmpty) {
			continue // a call of a custom or hosted tool is an answer
		}
		if err := ch.Check(req, &v.resp); err != nil {
			return &route.RejectedError{Model: model, Check: ch.Name, Err: err}
		}
	}
	return nil
}

// viewOf reads the answer of attempt a whole — a stream held back until
// it ends — and gives it back to pass on, and returns it as the checks
// read it (its response object kept in a.final); false when it cannot be
// read so: longer than the gateway reads whole, cut, or without a final
// response.
func viewOf(a *responsesAttempt) (*responsesView, bool) {
	readWhole(a.resp) // (a cut answer stays cut)
	ab, whole := a.resp.Body.(*answerBody)
	if !whole {
		return nil, false
	}
	if isEventStream(a.resp) {
		var final []byte
		s := &responsesStream{src: io.NopCloser(bytes.NewReader(ab.data)), final: func(o *responseObject) { a.final = o },
			cut: func(error) {}, finalRaw: func(r []byte) { final = r }}
		if h := a.hold; h != nil {
			// The output its deltas streamed: a response that failed
			// mid-answer, set aside, is billed at least that, as one
			// passed on is (responseObject.streamed).
			s.count = func(t string) int64 { return h.s.est.Text(h.model, t) }
		}
		if _, err := io.Copy(io.Discard, s); err != nil || final == nil {
			return nil, false
		}
		return viewResponses(final)
	}
	v, ok := viewResponses(ab.data)
	if !ok {
		return nil, false
	}
	var o responseObject
	if json.Unmarshal(ab.data, &o) == nil {
		a.final = &o
	}
	return v, true
}

// reject charges the answer of attempt a, which rej rejected, at its
// usage, closes it, and records the rejection in a's record.
func (c *responsesCall) reject(ctx context.Context, a *responsesAttempt, rej *route.RejectedError) {
	c.setAside(ctx, a, rej)
	c.s.logger.Info("tokenwise/gateway: a responses answer failed a cascade check: escalated", "team", c.team,
		"model", rej.Model, "check", rej.Check, "reason", rej.Err.Error())
}

// setAside charges the answer of attempt a, which the client will not
// get, at its usage (the provider billed it), closes it, and records its
// usage, cost and why (nil: a final answer written again) in a's record.
func (c *responsesCall) setAside(ctx context.Context, a *responsesAttempt, why error) {
	ctx = context.WithoutCancel(ctx)
	var u middleware.Usage
	var pico int64
	var aside *cache.Billed
	if a.hold != nil {
		o := a.final // read by check
		if o == nil {
			o = &responseObject{}
		}
		u, pico = a.hold.settleObject(ctx, o)
		if !u.IsZero() {
			// (At the model settleObject billed it at.)
			aside = &cache.Billed{Model: middleware.BilledModel(a.hold.pl.pricer, a.hold.model, o.Model), Usage: u}
		}
	}
	_ = a.resp.Body.Close()
	c.mu.Lock()
	a.resp = nil
	a.rec.Usage, a.rec.CostPico, a.rec.Err = u, pico, why
	a.aside = aside
	c.mu.Unlock()
}

// bill returns the bill of the answer c passed on (cache.Entry.Bill),
// whose usage is final and whose model answered: the answers set aside
// before it (a cascade's rejected answers, a final answer written again),
// each on the model it was billed at, then the answer itself, on its
// model — the last part's model is the one whose answer it is. Nil when
// none was set aside and the answer is of the call's model (its usage at
// that model is what the call cost), and for a nil c. A hit of the answer
// saved what they all cost.
func (c *responsesCall) bill(final middleware.Usage, answered string) []cache.Billed {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var bill []cache.Billed
	for _, a := range c.attempts {
		if a.aside != nil {
			bill = append(bill, *a.aside)
		}
	}
	if c.passed == "" || len(bill) == 0 && c.passed == c.req.Model {
		return nil
	}
	return append(bill, cache.Billed{Model: middleware.BilledModel(c.pl.pricer, c.passed, answered), Usage: final})
}

// A Responses call goes through its team's routing.regenerate_final as a
// chat call does: when the model that answered is not the regenerating
// one (regenerate_final.model, else routing.default) and its answer is a
// final answer — text, no call of a tool — the answer is held back (a
// stream until it ends), charged at its usage, and the call sent again to
// the regenerating model without its tools (tools, tool_choice,
// parallel_tool_calls and max_tool_calls taken out of its body), through
// the team's fallback chain; the client gets that answer (live when it is
// a stream). The run's record has the call once, at both answers' cost.

// regenOf returns the model that writes again the final answers of a call
// of req (as routed) under pol; "" when none does.
func regenOf(pol *policies.Policy, req *responsesRequest) string {
	if pol == nil || !pol.Routing.RegenerateFinal.Enabled || req.background() {
		return ""
	}
	m := cmp.Or(pol.Routing.RegenerateFinal.Model, pol.Routing.Default)
	if m == req.Model {
		return ""
	}
	return m
}

// regenBody is a Responses call's body for its regeneration: without its
// tools. The chain's sender takes it from the request's Native.
type regenBody []byte

// withoutTools returns body without the members that offer tools; false
// when it cannot be rewritten.
func withoutTools(body []byte) ([]byte, bool) {
	out := body
	for _, k := range []string{"tools", "tool_choice", "parallel_tool_calls", "max_tool_calls"} {
		b, err := sjson.DeleteBytes(out, k)
		if err != nil {
			return nil, false
		}
		out = b
	}
	return out, true
}

// regenerate sends the call again to its regenerating model when the
// answer of attempt pass is a final answer (see regenOf): the answer is
// set aside (charged) and the regeneration's answer returned, with the
// chain's error; pass itself, when no regeneration is due.
func (c *responsesCall) regenerate(ctx context.Context, pass *responsesAttempt) (*responsesAttempt, error) {
	if pass == nil || c.regen == "" || pass.model == c.regen {
		return pass, nil
	}
	c.bound.held(pass.resp)
	v, ok := viewOf(pass)
	if !ok || !instrument.IsFinalAnswer(&v.resp.Message) {
		return pass, nil
	}
	body, ok := withoutTools(c.body)
	if !ok {
		return pass, nil
	}
	c.setAside(ctx, pass, nil)
	c.s.logger.Info("tokenwise/gateway: a responses final answer written again", "team", c.team, "model", pass.model, "by", c.regen)
	c.decide(pass.model, c.regen, "regenerated the final answer of "+pass.model+" with "+c.regen+" (no tools)")
	resp, err := c.chain.Handle(ctx, &middleware.Request{Model: c.regen, Native: regenBody(body)})
	if err != nil || resp == nil {
		return nil, err
	}
	a, _ := resp.Native.(*responsesAttempt)
	return a, nil
}
