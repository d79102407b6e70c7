package gateway

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// A Responses call is routed by the team's routing rules as a chat call
// is: its input read as a conversation (instructions as the system
// message, input messages by role, function calls and their outputs as
// the assistant's tool calls and the tools' results, function tools as
// tools), its stage detected from it, and the model the rules pick (or
// routing.default) written into the request before it is reserved,
// admitted and sent; budget_below conditions read the team's ledger and
// the run's; a call whose counted input and max_output_tokens do not fit
// the model's context window goes to the first routing.larger_window
// model they fit. Its cascade and its final answer's regeneration, when
// the policy has them, are responses_cascade.go's.

// responsesConversation reads a Responses request as a chat request, for
// the router: what it cannot read (hosted tools, reasoning items, files)
// is left out.
func responsesConversation(req *responsesRequest) *middleware.Request {
	out := &middleware.Request{Model: req.Model}
	if req.Instructions != "" {
		out.Messages = append(out.Messages, middleware.Message{Role: middleware.RoleSystem, Content: req.Instructions})
	}
	var text string
	if json.Unmarshal(req.Input, &text) == nil {
		out.Messages = append(out.Messages, middleware.Message{Role: middleware.RoleUser, Content: text})
	} else {
		var items []struct {
			Type      string          `json:"type"`
			Role      string          `json:"role"`
			Content   json.RawMessage `json:"content"`
			CallID    string          `json:"call_id"`
			Name      string          `json:"name"`
			Arguments string          `json:"arguments"`
			Output    json.RawMessage `json:"output"`
		}
		_ = json.Unmarshal(req.Input, &items)
		for _, it := range items {
			switch it.Type {
			case "", "message":
				role := middleware.Role(it.Role)
				if it.Role == "developer" {
					role = middleware.RoleSystem
				}
				out.Messages = append(out.Messages, middleware.Message{Role: role, Content: responsesText(it.Content)})
			case "function_call":
				tc := middleware.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}
				if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == middleware.RoleAssistant && out.Messages[n-1].Content == "" {
					out.Messages[n-1].ToolCalls = append(out.Messages[n-1].ToolCalls, tc)
				} else {
					out.Messages = append(out.Messages, middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{tc}})
				}
			case "function_call_output":
				out.Messages = append(out.Messages, middleware.Message{Role: middleware.RoleTool, ToolCallID: it.CallID, Content: responsesText(it.Output)})
			}
		}
	}
	var tools []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	}
	_ = json.Unmarshal(req.Tools, &tools)
	for _, t := range tools {
		if t.Type == "function" || t.Type == "custom" {
			out.Tools = append(out.Tools, middleware.Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
		}
	}
	return out
}

// responsesText is the text of a Responses content: a string, or the
// text of its parts.
func responsesText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts)
	var text string
	for _, p := range parts {
		if p.Text != "" {
			if text != "" {
				text += "\n"
			}
			text += p.Text
		}
	}
	return text
}

// routeResponses routes a Responses call, req read from body, by the
// team's routing rules: the request with the model they pick (req.Model
// set to it), and true; false when the policy routes nothing or the pick
// is the request's model.
func (s *Server) routeResponses(ctx context.Context, team string, body []byte, req *responsesRequest) ([]byte, bool) {
	pl := s.passLimitsOf(team)
	model, rule := req.Model, ""
	if pl.rules != nil {
		q := route.NewQuery(ctx, responsesConversation(req))
		req.stage = q.Stage
		if d, ok := pl.rules.Route(ctx, q); ok && d.Model != "" {
			model, rule = d.Model, d.Rule
		}
	}
	if w := s.widerResponses(pl.pol, model, req); w != "" {
		model, rule = w, "larger_window"
	}
	req.routed = rule != ""
	var routed []byte
	if model != req.Model {
		var ok bool
		if routed, ok = withModel(body, model, maxOutput(pl.pol, model)); !ok {
			model = req.Model // (a body the gateway cannot rewrite goes as it came)
		}
	}
	req.asked, req.rule, req.moved = req.Model, rule, model != req.Model
	if rule != "" {
		s.observe(team, middleware.RouteDecided{From: req.Model, To: model, Rule: rule, Stage: req.stage})
	}
	if model == req.Model {
		return nil, false
	}
	if s.logger.Enabled(ctx, slog.LevelDebug) {
		s.logger.Debug("tokenwise/gateway: responses call routed", "team", team, "requested", req.Model, "model", model, "rule", rule)
	}
	req.Model = model
	return routed, true
}

// widerResponses returns, when pol lists routing.larger_window models and
// req's input (counted here) and max_output_tokens do not fit model's
// context window, the first of them whose window is larger and fits
// them, as the chain escalates a chat call; "" otherwise (an input the
// gateway cannot count is not escalated).
func (s *Server) widerResponses(pol *policies.Policy, model string, req *responsesRequest) string {
	if pol == nil || len(pol.Routing.LargerWindow) == 0 {
		return ""
	}
	spec, ok := pol.Model(model)
	if !ok || spec.ContextWindow <= 0 {
		return ""
	}
	need, counted := s.responsesInput(model, spec, req)
	if !counted {
		return ""
	}
	if req.MaxOutputTokens != nil && *req.MaxOutputTokens > 0 {
		need = middleware.SatAdd(need, *req.MaxOutputTokens)
	}
	if need <= spec.ContextWindow {
		return ""
	}
	return route.LargerWindow(pol.Routing.LargerWindow, func(m string) int64 {
		ws, _ := pol.Model(m)
		return ws.ContextWindow
	}, model, need)
}

// newPassRules compiles the routing rules of pl's policy for passed-through
// calls; nil when it routes nothing.
func (s *Server) newPassRules(pl *passLimits) *route.Rules {
	rt := pl.pol.Routing
	if rt.Default == "" && len(rt.Rules) == 0 && rt.Learned.IsZero() {
		return nil
	}
	est := tokens.New(tokens.WithModels(llmwrap.EstimatorModels(pl.pol)))
	opts := []route.RulesOption{route.WithRulesEstimator(route.EstimatorFunc(func(ctx context.Context, model string, req *middleware.Request) int64 {
		return est.Request(model, req)
	}))}
	if pl.budget != nil {
		// budget_below reads the team's ledger and the run's, as the
		// chain's does for chat calls.
		opts = append(opts, route.WithRulesBudget(llmwrap.BudgetReader(pl.budget)))
	}
	r, err := llmwrap.NewRules(pl.pol, opts...)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: the routing rules of a policy do not compile: responses calls are not routed", "policy", pl.pol.Name, "err", err)
		return nil
	}
	return r
}

// maxOutput returns model's maximum output in p's catalog (0: unknown).
func maxOutput(p *policies.Policy, model string) int64 {
	if p == nil {
		return 0
	}
	spec, _ := p.Model(model)
	return spec.MaxOutputTokens
}
