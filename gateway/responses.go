package gateway

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/internal/ssesniff"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// The Responses API (POST /v1/responses), which OpenAI's newest SDKs and
// its Agents SDK call instead of chat completions, is passed through to
// the upstream unchanged, but never unpoliced: a team with a budget has
// the call's worst case reserved in its ledger before it is sent (refused
// with an OpenAI-shaped 429 when it does not fit) and settled at the
// usage the answer reports — the JSON answer's, or a stream's final
// response.completed, response.incomplete or response.failed event's —
// priced by the team's catalog at the service tier the answer names.
//
// The worst case: the input's tokens (its text counted by the model's
// encoding, each item and tool definition framed conservatively, a
// Structured Outputs schema (text.format, billed as input) as its JSON
// text, an image at its detail's worst case) — or the model's whole context window
// when the input cannot be counted here: a previous_response_id or
// conversation (whose earlier turns the provider keeps), an input file,
// or a built-in tool (web or file search, code interpreter, computer,
// MCP, whose results the provider adds to the input) — plus
// max_output_tokens (else the model's maximum output), plus the fees of
// its hosted tools (the model's tool_calls in the catalog or the policy):
// max_tool_calls calls of each declared web or file search (one when it
// sets none) and a code interpreter container the call makes. Settled at
// the answer's usage and the fees of the calls its output holds: every
// web_search_call (whatever its action), file_search_call, and each
// container of its code_interpreter_calls when the request made it
// ("auto"). A stored prompt's tools, which the request does not show, are
// reserved as the dearest they may be (promptTools) and settled by the
// tools the answer lists. A call whose hosted tools run more calls or model turns than
// reserved may settle above its reservation: bound them with
// max_tool_calls.

// maxResponsesEvent bounds a stream event the gateway keeps to read its
// usage (the final event carries the whole response, its output
// included).
var maxResponsesEvent = 64 << 20 // (a variable for the tests)

// streams reports whether req asks for a stream.
func (req *responsesRequest) streams() bool {
	return bytes.Equal(bytes.TrimSpace(req.Stream), []byte("true"))
}

// isResponses reports whether a pass-through request creates a response.
func isResponses(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/v1/responses"
}

// responsesRequest is what the gateway reads of a Responses API request.
type responsesRequest struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	Instructions       string          `json:"instructions"`
	Tools              json.RawMessage `json:"tools"`
	MaxOutputTokens    *int64          `json:"max_output_tokens"`
	MaxToolCalls       *int64          `json:"max_tool_calls"`
	PreviousResponseID string          `json:"previous_response_id"`
	Conversation       json.RawMessage `json:"conversation"`
	ServiceTier        string          `json:"service_tier"`
	// Text is the answer's format: a json_schema format's schema is
	// billed as input, as the tools' definitions are (responsesInput).
	Text json.RawMessage `json:"text"`
	// What the cache reads (responses_cache.go), kept raw: a value of a
	// wrong type is the upstream's to refuse, not a reason to read the
	// request as one the gateway cannot police.
	Stream      json.RawMessage `json:"stream"`
	Background  json.RawMessage `json:"background"`
	Temperature json.RawMessage `json:"temperature"`
	Prompt      json.RawMessage `json:"prompt"`

	tools toolsRead // Tools, read once (functionTools)
	// routed: the team's routing rules (or routing.default) picked Model.
	routed bool
	// asked is the model the client asked for, before routing ("": not
	// routed); rule why the router picked Model, and moved whether that
	// is another model (see routeResponses).
	asked, rule string
	moved       bool
	stage       middleware.Stage // the call's stage, as the router saw it
}

// toolsRead is what functionTools found in a request's tools.
type toolsRead struct {
	done bool
	n    int  // the number of tools
	ok   bool // all function (or custom) tools, read
	// The hosted tools with fees (hostedFees): web search (its generally
	// available version, its preview), file search, and code interpreter
	// in a container the call creates (its memory in GB; 0: none).
	webSearch, webSearchPreview, fileSearch bool
	containerGB                             int64
	// imageGen: the image_generation tool, whose images the provider
	// bills apart from the answer's usage (tool_calls.image_generation,
	// per image: the catalog has no price, a policy may declare one).
	imageGen bool
	// prompt: the request names a stored prompt, whose tools (hosted
	// ones among them, with their fees) the request does not show: the
	// answer's tools say which ran (settleObject).
	prompt bool
}

// functionTools returns the number of req's tools and whether they are
// all function or custom tools — false for a built-in tool (web or file
// search, code interpreter, computer, MCP…, whose results and effects the
// provider adds) or tools that cannot be read. Their types are read
// exactly, as the provider reads them (maps: a struct would take "Type"
// for "type"); the tools are read once per request.
func (req *responsesRequest) functionTools() (int, bool) {
	if t := &req.tools; !t.done {
		t.read(req.Tools)
		t.prompt = present(req.Prompt)
	}
	return req.tools.n, req.tools.ok
}

// read reads tools, a request's (or a response's) tools, into t.
func (t *toolsRead) read(tools json.RawMessage) {
	t.done, t.ok = true, true
	if !present(tools) {
		return
	}
	var list []map[string]any
	if json.Unmarshal(tools, &list) != nil {
		t.ok = false
	}
	for _, x := range list {
		if x["type"] != "function" && x["type"] != "custom" {
			t.ok = false
		}
		typ, _ := x["type"].(string)
		switch {
		case strings.HasPrefix(typ, "web_search_preview"):
			t.webSearchPreview = true
		case strings.HasPrefix(typ, "web_search"):
			t.webSearch = true
		case typ == "file_search":
			t.fileSearch = true
		case typ == "image_generation":
			t.imageGen = true
		case typ == "code_interpreter":
			// A container of the call's own ("auto"), billed per
			// container by its memory; a container named by id
			// was billed when it was made.
			if c, ok := x["container"].(map[string]any); ok {
				t.containerGB = max(t.containerGB, containerGB(c["memory_limit"]))
			}
		}
	}
	t.n = len(list)
}

// promptTools is what a call's tools may be when a stored prompt holds
// tools the request does not show: each hosted tool with a fee, a web
// search at the dearer of its versions, a container of the call's own
// of the default size.
var promptTools = toolsRead{done: true, webSearch: true, webSearchPreview: true, fileSearch: true, containerGB: 1}

// feeTools returns the tools the fees of a call whose request declared
// t and whose answer lists tools (raw: a response's tools member) are
// charged by: t, unless the request names a stored prompt, whose tools
// the answer's list shows (promptTools when it has none).
func feeTools(t *toolsRead, raw json.RawMessage) *toolsRead {
	if t == nil || !t.prompt {
		return t
	}
	if !present(raw) {
		return &promptTools
	}
	var rt toolsRead
	rt.read(raw)
	return &rt
}

// hosted reports whether the tools include one with fees (web or file
// search, a container of the call's own).
func (t *toolsRead) hosted() bool {
	return t != nil && (t.webSearch || t.webSearchPreview || t.fileSearch || t.containerGB > 0 || t.imageGen || t.prompt)
}

// containerGB returns the memory of a code interpreter container by its
// memory_limit (OpenAI's sizes: 1g, the default, 4g, 16g, 64g); an
// unknown size is read as the largest.
func containerGB(limit any) int64 {
	switch limit {
	case nil, "1g":
		return 1
	case "4g":
		return 4
	case "16g":
		return 16
	}
	return 64
}

// hostedFees returns the fees of webSearches web search calls,
// fileSearches file search calls and containers code interpreter
// containers of a call whose request declared the tools t, at spec's
// tool_calls: a web search at the dearer of the versions the request
// declares; a container at its memory's multiple, and only when the call
// makes it.
func hostedFees(spec policies.ModelSpec, t *toolsRead, webSearches, fileSearches, containers, images int64) policies.PicoUSD {
	fee := func(tool string) policies.PicoUSD {
		return policies.PicoUSD(middleware.SatMul(int64(spec.ToolCalls[tool]), 1_000_000))
	}
	var web policies.PicoUSD
	if t.webSearch {
		web = fee("web_search")
	}
	if t.webSearchPreview {
		web = max(web, fee("web_search_preview"))
	}
	c := policies.PicoUSD(middleware.SatMul(int64(web), webSearches))
	c = c.Add(policies.PicoUSD(middleware.SatMul(int64(fee("file_search")), fileSearches)))
	if t.containerGB > 0 {
		c = c.Add(policies.PicoUSD(middleware.SatMul(middleware.SatMul(int64(fee("code_interpreter")), t.containerGB), containers)))
	}
	if images > 0 {
		c = c.Add(policies.PicoUSD(middleware.SatMul(int64(fee("image_generation")), images)))
	}
	return c
}

// reservedFees is hostedFees of a request before its answer: each hosted
// tool it declares run max_tool_calls times (once when it sets none), a
// container made once.
func reservedFees(spec policies.ModelSpec, req *responsesRequest) policies.PicoUSD {
	t := &req.tools
	if t.prompt {
		// A stored prompt's tools are not seen before the answer: each
		// hosted tool, as the dearest it may be.
		t = &promptTools
	}
	n := int64(1)
	if req.MaxToolCalls != nil && *req.MaxToolCalls > 1 {
		n = *req.MaxToolCalls
	}
	var web, file, images int64
	if t.webSearch || t.webSearchPreview {
		web = n
	}
	if t.fileSearch {
		file = n
	}
	if t.imageGen {
		images = n
	}
	return hostedFees(spec, t, web, file, 1, images)
}

// feeItem is what the fees read of an output item.
type feeItem struct {
	Type        string `json:"type"`
	ContainerID string `json:"container_id,omitempty"`
}

// maxStreamItems bounds the items a stream keeps for its fees.
const maxStreamItems = 1 << 14

// outputFees is hostedFees of an answer's output: its web search calls,
// file search calls and the containers its code interpreter calls ran in.
func outputFees(spec policies.ModelSpec, t *toolsRead, output json.RawMessage) policies.PicoUSD {
	if len(spec.ToolCalls) == 0 || !present(output) {
		return 0
	}
	var raw []json.RawMessage
	if json.Unmarshal(output, &raw) != nil {
		return 0
	}
	var web, file, images int64
	containers := map[string]bool{}
	for _, r := range raw {
		var it feeItem // (an item that is not one is not a call)
		_ = json.Unmarshal(r, &it)
		switch it.Type {
		case "web_search_call":
			web++
		case "file_search_call":
			file++
		case "code_interpreter_call":
			containers[it.ContainerID] = true
		case "image_generation_call":
			images++
		}
	}
	return hostedFees(spec, t, web, file, int64(len(containers)), images)
}

// responsesTier reads a request's service tier as the budget does:
// "auto" and "default" are the standard rates.
func responsesTier(t string) string {
	switch t {
	case "auto", "default":
		return ""
	}
	return t
}

// responsesInput estimates the input tokens of req on model, or reports
// that they cannot be counted here (the provider adds to them).
func (s *Server) responsesInput(model string, spec policies.ModelSpec, req *responsesRequest) (int64, bool) {
	if req.PreviousResponseID != "" || present(req.Conversation) || present(req.Prompt) {
		// Input the provider adds: an earlier response's, a
		// conversation's, a stored prompt's template.
		return 0, false
	}
	n := int64(16) + s.est.Text(model, req.Instructions)
	// Tool definitions count as their JSON text; a hosted tool makes the
	// input unknowable.
	nt, ok := req.functionTools()
	if !ok {
		return 0, false
	}
	if nt > 0 {
		n += int64(8*nt) + s.est.Text(model, string(req.Tools))
	}
	if present(req.Text) {
		// Structured Outputs' schema (text.format), which the provider
		// gives the model and bills as input: its JSON text, as the
		// tools' definitions are counted.
		n += 8 + s.est.Text(model, string(req.Text))
	}
	var text string
	if json.Unmarshal(req.Input, &text) == nil {
		return n + 8 + s.est.Text(model, text), true
	}
	var items []any
	if json.Unmarshal(req.Input, &items) != nil {
		return 0, false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			n += s.est.Text(model, v)
		case []any:
			for _, e := range v {
				if !walk(e) {
					return false
				}
			}
		case map[string]any:
			n += 8 // each item and part framed conservatively
			switch v["type"] {
			case "input_image":
				detail, _ := v["detail"].(string)
				n += spec.Image.WorstCase(detail)
				return true
			case "input_file", "input_audio", "item_reference":
				return false // contents the provider reads or keeps
			}
			for k, e := range v {
				n += s.est.Text(model, k)
				if !walk(e) {
					return false
				}
			}
		}
		return true
	}
	if !walk(items) {
		return 0, false
	}
	return n, true
}

// reserveResponses holds a Responses call's worst case in the ledgers of
// its team's budget (ctx names the team and the run) and admits it
// against the rate limits of its model, or refuses the call with an
// OpenAI-shaped error; run, when the call names one (X-Run-Id), gets the
// call in its record (its report). The hold reports the call (see
// Server.report) once it is answered; nil and no error for a request the
// gateway cannot read, when the team has no budget and no rate limits.
func (s *Server) reserveResponses(ctx context.Context, team string, req *responsesRequest, run *middleware.Run) (*responsesHold, *apiError) {
	h, err := s.holdResponses(ctx, s.passLimitsOf(team), team, req, run)
	if err != nil {
		return nil, s.apiErrorOf(err)
	}
	return h, nil
}

// holdResponses is reserveResponses with the refusal as an error: an
// *apiError, or the budget's or the rate limits' own (which the fallback
// chain reads: a rate limit's on_limit: fallback moves on), under pl, the
// team's policy the call runs under.
func (s *Server) holdResponses(ctx context.Context, pl *passLimits, team string, req *responsesRequest, run *middleware.Run) (*responsesHold, error) {
	if pl.err != nil {
		return nil, pl.err
	}
	if req == nil {
		if pl.budget == nil && pl.limiter == nil {
			return nil, nil // nothing to hold: the upstream answers it
		}
		return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request",
			Message: "tokenwise/gateway: a responses request the team's budget and rate limits cannot account for: it needs a JSON body with a model"}
	}
	spec, known := pl.pol.Model(req.Model)
	req.functionTools() // (read before the input: their fees are reserved whatever the input)
	var in int64
	var counted bool
	if pl.budget != nil || pl.limiter != nil || run != nil || pl.hedged != nil {
		// Counted for the budget, the rate limits, and the charge of an
		// attempt that loses a hedge: a team with none of them is not
		// made to wait for the count of a long input.
		in, counted = s.responsesInput(req.Model, spec, req)
	}
	// The tier the call asks for; one that names none (or auto, or
	// default) is processed and billed at the project's default tier
	// (budget.default_service_tier), as the chat calls' budget prices it:
	// its reservation, and the input an attempt cut before its answer is
	// charged, are priced at it.
	tier := responsesTier(req.ServiceTier)
	if d := pl.pol.Budget.DefaultServiceTier; tier == "" && d != "default" {
		tier = d
	}
	h := &responsesHold{passHold: passHold{s: s, team: team, pl: pl, model: req.Model}, tier: tier, run: run, reports: true, start: time.Now(), tools: &req.tools,
		requested: req.asked, rule: req.rule, moved: req.moved}
	if counted {
		h.in = in // (the budget's worst case below, when the input is not counted)
		if known && spec.HasPrice() {
			// Its price, which an attempt charged its input costs in its
			// run's record also without a budget.
			h.inPico = int64(spec.Cost(policies.TokenCounts{Input: in, ServiceTier: tier}))
		}
	}
	if b := pl.budget; b != nil {
		runLim, teamLim := b.Limits()
		if (runLim.USDMicros > 0 || teamLim.USDMicros > 0) && (!known || !spec.HasPrice()) {
			return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "model_not_priced", NoRetry: true,
				Message: "tokenwise/gateway: a USD budget applies and model " + strconv.Quote(req.Model) + " has no price in the catalog or the team's policy"}
		}
		if (runLim.USDMicros > 0 || teamLim.USDMicros > 0) && req.tools.imageGen && spec.ToolCalls["image_generation"] == 0 {
			// Its images are billed apart from the answer's tokens, at
			// a price the catalog does not know: they would escape the
			// budget.
			return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "tool_not_priced", NoRetry: true,
				Message: "tokenwise/gateway: a USD budget applies and the image_generation tool has no price for model " + strconv.Quote(req.Model) +
					": declare its fee per image in the team's policy (models: {" + req.Model + ": {tool_calls: {image_generation: 0.04}}})"}
		}
		in, out := in, spec.MaxOutputTokens
		if req.MaxOutputTokens != nil && *req.MaxOutputTokens > 0 && (out == 0 || *req.MaxOutputTokens < out) {
			out = *req.MaxOutputTokens
		}
		switch {
		case !counted && spec.ContextWindow > 0:
			in = max(spec.ContextWindow-out, 0)
		case !counted:
			return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "budget_unaccountable", NoRetry: true,
				Message: "tokenwise/gateway: the team's budget cannot bound this responses call: its input is kept or read by the provider " +
					"(previous_response_id, conversation, a stored prompt, a file or a hosted tool) and model " + strconv.Quote(req.Model) + " has no context_window in the catalog or the policy"}
		}
		if out == 0 {
			out = budget.DefaultMaxOutput
			if spec.ContextWindow > 0 {
				out = max(spec.ContextWindow-in, 0)
			}
		}
		// At the dearest model the answer may be billed as: the one
		// asked for or a dated snapshot of it at a price of its own,
		// which the provider may name in its answer (an Azure deployment
		// of gpt-4o-2024-05-13 answers calls for gpt-4o as it).
		cost := spec.Cost(policies.TokenCounts{Input: in, Output: out, ServiceTier: tier}).Add(reservedFees(spec, req))
		for _, m := range pl.answerModels(req.Model) {
			ms, _ := pl.pol.Model(m)
			cost = max(cost, ms.Cost(policies.TokenCounts{Input: in, Output: out, ServiceTier: tier}).Add(reservedFees(ms, req)))
		}
		h.need = budget.Amount{Tokens: in + out, USDMicros: ceilMicro(int64(cost))}
		h.in, h.inPico = in, int64(spec.Cost(policies.TokenCounts{Input: in, ServiceTier: tier}))
		if err := h.reserve(ctx, b); err != nil {
			return nil, err
		}
	}
	if l := pl.limiter; l != nil {
		// Against a tokens-per-minute limit: the input counted here (what
		// the provider adds to it is not) and max_output_tokens, else the
		// policy's reserve_output; settled at the answer's usage.
		need := l.ReserveOutput()
		if req.MaxOutputTokens != nil && *req.MaxOutputTokens > 0 {
			need = *req.MaxOutputTokens
		}
		input := int64(-1) // not counted: a failed request is charged its whole admission
		if counted {
			need += in
			input = in
		}
		if err := h.admit(ctx, l, input, need); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// passContext returns the context of a passed-through priced call (a
// Responses or embeddings call): its team's and, when X-Run-Id names a
// run, that run's — the same run as its chat calls, shared by the
// replicas with Redis — so that its spend is held in the run's budget as
// well as the team's; without X-Run-Id, a run of its own. A call past the run's deadline is refused as a chat
// call would be; so is one past the run's call limit when counted (a
// Responses call counts as a model call of the run, an embeddings call
// does not).
func (s *Server) passContext(r *http.Request, team, callID string, counted bool) (context.Context, *apiError) {
	runID := r.Header.Get(RunIDHeader)
	if runID == "" {
		// A run of its own, named as the call, as a chat call without
		// X-Run-Id: the per-run budget bounds the call alone.
		ctx, _ := middleware.StartTeamRun(r.Context(), team, callID)
		return ctx, nil
	}
	if !validRunID(runID) {
		return nil, errInvalidRunID
	}
	run := s.runs.get(r.Context(), runKey(team, runID), runID)
	ctx := middleware.WithTeamRun(r.Context(), team, run)
	maxCalls, timeout := llmwrap.RunLimits(s.pol.Policy(team))
	if counted && maxCalls > 0 {
		seq, err := run.NextSeqContext(ctx)
		if err != nil {
			return nil, classify(err, s.secrets...)
		}
		if seq > maxCalls {
			return nil, classify(&guard.LimitError{Run: runID, Limit: maxCalls, Call: seq}, s.secrets...)
		}
	}
	if timeout > 0 && !time.Now().Before(run.Started().Add(timeout)) {
		return nil, classify(&middleware.DeadlineError{Cause: guard.ErrRunDeadline, Limit: timeout}, s.secrets...)
	}
	return ctx, nil
}

// responsesHold is a Responses call's reservation in its budget and its
// admission by the rate limits.
type responsesHold struct {
	passHold
	tier    string          // the tier the request asked for
	run     *middleware.Run // the run the call names (X-Run-Id), nil: none
	rule    string          // why routing picked its model: "" for none
	moved   bool            // routing moved the call to another model (CallFacts.Routed)
	feePico int64           // the fees of the hosted tools its answer called (settleObject)
	// reports: the hold reports the call (its run's record, the metrics);
	// false on the hold of a model a fallback chain tries, until its
	// answer is the one passed on (responses_fallback.go).
	reports bool
	tools   *toolsRead // the request's tools (their fees)
	start   time.Time  // when its model was tried
	recOnce sync.Once
	sent    bool // the request reached the upstream
	// sends counts the requests that reached the upstream, each retry's
	// (fallback.retry, under the hold): the rate limits count them all.
	sends atomic.Int32
	// Set on the hold of the model that answered a call that fell back
	// (responses_fallback.go): the call's model, its attempts before this
	// one, and its start.
	requested string
	prior     []middleware.Attempt
	begun     time.Time
	// in is the input the call was reserved for (its tokens: counted, or
	// the worst case the model's window leaves) and inPico their price
	// (0: not priced), which a hedge's attempt that lost is charged.
	in     int64
	inPico int64
	// background: the call was answered in the background, its hold kept
	// until the response is done (responses_background.go).
	background atomic.Bool
}

// record reports the call once (Server.report): what it used and cost
// (the call's cost under the team's catalog, or what its budget charged
// when its usage is unknown: estimated), or why it failed.
func (h *responsesHold) record(u middleware.Usage, costPico int64, estimated bool, err error) {
	if !h.reports {
		return
	}
	h.recOnce.Do(func() {
		begun := h.start
		if !h.begun.IsZero() {
			begun = h.begun
		}
		atts := append(slices.Clip(h.prior), middleware.Attempt{Model: h.model, Latency: time.Since(h.start), Err: err, Usage: u, CostPico: costPico,
			Estimated: estimated})
		// The call costs what each attempt was charged (an attempt that
		// lost a hedge: its input).
		total, usage := costPico, u
		for _, a := range h.prior {
			total, usage = middleware.SatAdd(total, a.CostPico), usage.Add(a.Usage)
		}
		f := middleware.CallFacts{Team: h.team, RequestedModel: cmp.Or(h.requested, h.model), Model: h.model, Rule: h.rule,
			Routed: h.moved, CostPico: total, Attempts: atts}
		if err == nil {
			f.RoutingSavedPico = middleware.RoutingSaved(h.pl.pricer, &f, u, h.feePico)
		}
		h.s.report(h.team, h.run, middleware.CallRecord{CallFacts: f, Usage: usage, Latency: time.Since(begun), Start: begun, Err: err})
	})
}

// done settles the rate limits' admission once (passHold.done), with
// the requests made upstream counted as the retries under the hold sent
// them: a call that took three requests to answer is three requests of
// the model's requests per minute.
func (h *responsesHold) done(ctx context.Context, used int64, requests int) {
	h.passHold.done(ctx, used, max(requests, int(h.sends.Load())))
}

// release frees what a call that got no answer holds.
func (h *responsesHold) release(ctx context.Context) {
	if h.background.Load() {
		return // answered in the background: held until it is done
	}
	h.settle(ctx, budget.Amount{})
	h.done(ctx, 0, 0)
	h.record(middleware.Usage{}, 0, false, errNoAnswer)
}

// releaseLost frees what a call that got no answer holds (release); when
// lost is the error that ended it after it was sent, one the provider
// bills (middleware.UnansweredBilled: a timeout, the client gone), the call is
// charged its input instead, in its budget and its run's record (an
// estimate), as the fallback chain charges such an attempt (failed) and
// the chain's Meter and budget a chat attempt.
func (h *responsesHold) releaseLost(ctx context.Context, lost error) {
	if lost == nil || h.background.Load() {
		h.release(ctx)
		return
	}
	u, pico := h.chargeInput(context.WithoutCancel(ctx))
	h.record(u, pico, !u.IsZero(), fmt.Errorf("%w: %w", errNoAnswer, lost))
}

// errNoAnswer is the failure of a Responses call that got no answer from
// the upstream, in its run's record.
var errNoAnswer = errors.New("tokenwise/gateway: the responses call got no answer from the upstream")

// chargeReserved settles a call whose usage is unknown (the provider
// billed it) at what was reserved, keeps the rate limits' estimate, and
// records it in its run at that cost, failed with err (nil: answered).
func (h *responsesHold) chargeReserved(ctx context.Context, err error) {
	h.settle(ctx, h.need)
	h.done(ctx, -1, 1)
	h.record(middleware.Usage{}, middleware.SatMul(h.need.USDMicros, 1_000_000), true, err)
}

// clientEnded reports whether a stream of the call of ctx, cut by err
// before its final event, was ended by its client (gone, or aborted): a
// cancellation of the call's context, not a timeout of the team's or the
// run's, nor the upstream's cut (that one ends its read with its own
// error before the call's context is cancelled).
func clientEnded(ctx context.Context, err error) bool {
	if errors.Is(err, middleware.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if middleware.IsCancellation(err) {
		return true
	}
	return errors.Is(err, middleware.ErrStreamCut) && ctx.Err() != nil && middleware.IsCancellation(context.Cause(ctx))
}

// chargeStreamed settles a stream its client ended before its final
// event at its input and out, the output tokens it streamed (counted from
// its deltas): an estimate of what the provider bills, as the chain's
// budget bills a chat stream cut before its usage (its reasoning, which
// a stream does not show, is not counted, as a chat stream's is not). It
// records the call in its run, failed with err.
func (h *responsesHold) chargeStreamed(ctx context.Context, out int64, err error) {
	ctx = context.WithoutCancel(ctx)
	pico := h.inPico
	if spec, ok := h.pl.pol.Model(h.model); ok && spec.HasPrice() {
		pico = int64(spec.Cost(policies.TokenCounts{Input: h.in, Output: out, ServiceTier: h.tier}))
	}
	n := middleware.SatAdd(h.in, out)
	h.settle(ctx, budget.Settleable(budget.Exact(n, pico)))
	h.done(ctx, n, 1)
	h.record(middleware.Usage{InputTokens: h.in, OutputTokens: out}, pico, true, err)
}

// chargeInput settles an attempt that lost a hedge after it was sent at
// its input — as the chain's fallback bills the attempt that lost, since
// a provider bills a prompt it received — and returns that usage and its
// price, for the run's record.
func (h *responsesHold) chargeInput(ctx context.Context) (middleware.Usage, int64) {
	h.settle(ctx, budget.Settleable(budget.Exact(h.in, h.inPico)))
	h.done(ctx, h.in, 1)
	return middleware.Usage{InputTokens: h.in}, h.inPico
}

// responsesUsage is the usage of a Responses answer.
type responsesUsage struct {
	// (Counts written as floats, as some servers write numbers, are
	// read as the integers they are: count.)
	InputTokens        count `json:"input_tokens"`
	OutputTokens       count `json:"output_tokens"`
	TotalTokens        count `json:"total_tokens"`
	InputTokensDetails struct {
		CachedTokens     count `json:"cached_tokens"`
		CacheWriteTokens count `json:"cache_write_tokens"` // billed at the model's cache_write_per_1m
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens count `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	// The chat API's names, which some compatible servers and proxies
	// write in a Responses answer: read when the Responses names count
	// nothing.
	PromptTokens        count `json:"prompt_tokens"`
	CompletionTokens    count `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens count `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// responseObject is what the gateway reads of a response object.
type responseObject struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Model       string          `json:"model"`
	ServiceTier string          `json:"service_tier"`
	Usage       *responsesUsage `json:"usage"`
	Output      json.RawMessage `json:"output"` // read for its hosted tools' calls (outputFees)
	// Tools are the tools the response ran with: a stored prompt's
	// included (feeTools).
	Tools json.RawMessage `json:"tools"`
	// Background is the response's background member (nil: none).
	Background *bool `json:"background"`
	// streamed is, for the response of a stream's response.failed
	// event, the output tokens its deltas streamed: the least the
	// provider bills, whatever its usage says (0: not known).
	streamed int64
}

// settleObject settles h at the usage of the response object o; at what
// was reserved when it has none that can be read (the provider billed
// the call). It returns the usage and the cost it charged.
func (h *responsesHold) settleObject(ctx context.Context, o *responseObject) (middleware.Usage, int64) {
	u, ok := o.Usage.usage()
	if !ok {
		h.s.logger.Warn("tokenwise/gateway: a responses answer without readable usage: charged its reservation", "team", h.team)
		h.chargeReserved(ctx, nil)
		return middleware.Usage{}, middleware.SatMul(h.need.USDMicros, 1_000_000)
	}
	// A stream that failed after its deltas streamed more output than
	// its usage counts (a running count that lags) is billed that
	// output, as a cut chat stream is (an estimate).
	estimated := false
	if o.streamed > u.OutputTokens {
		u.OutputTokens, estimated = o.streamed, true
	}
	// The tier the answer names, else (none, or "auto": the project's,
	// echoed) the one the call was reserved at: the request's, else the
	// project's default tier.
	tier := o.ServiceTier
	if tier == "" || tier == "auto" {
		tier = h.tier
	}
	u.ServiceTier = tier
	tc := policies.TokenCounts{Input: u.InputTokens, Output: u.OutputTokens, CachedInput: u.CachedInputTokens,
		CacheWrite: u.CacheWriteTokens, Reasoning: u.ReasoningTokens, ServiceTier: tier}
	// Billed at the model that answered, by the chat calls' rule
	// (middleware.BilledModel: a dated name the catalog does not know is
	// billed at the requested model's price, and so is any answer to a
	// model the policy itself prices).
	// (At the prices of the policy it was reserved under.)
	spec, ok := h.pl.pol.Model(middleware.BilledModel(h.pl.pricer, h.model, o.Model))
	var pico int64
	if ok && spec.HasPrice() {
		fees := outputFees(spec, feeTools(h.tools, o.Tools), o.Output)
		h.feePico = int64(fees)
		pico = int64(spec.Cost(tc).Add(fees))
	}
	// The exact cost: the ledger sums it exactly and rounds up once.
	h.settle(ctx, budget.Settleable(budget.Exact(middleware.SatAdd(tc.Input, tc.Output), pico)))
	h.done(ctx, middleware.SatAdd(tc.Input, tc.Output), 1)
	h.record(u, pico, estimated, nil)
	return u, pico
}

// usage returns the usage of an answer as the gateway bills it: its
// output at least total − input (reasoning a server leaves out of
// output_tokens); false when there is none, when it counts nothing (zeros,
// or none of the counts: a server that does not count, as the chat
// calls' Meter reads a usage of zeros) or a count is negative or beyond
// middleware.MaxCount.
func (u *responsesUsage) usage() (middleware.Usage, bool) {
	if u != nil && u.InputTokens == 0 && u.OutputTokens == 0 && (u.PromptTokens != 0 || u.CompletionTokens != 0) {
		// A usage of the chat API's names: the same counts.
		c := *u
		c.InputTokens, c.OutputTokens = u.PromptTokens, u.CompletionTokens
		c.InputTokensDetails.CachedTokens = cmp.Or(u.InputTokensDetails.CachedTokens, u.PromptTokensDetails.CachedTokens)
		c.OutputTokensDetails.ReasoningTokens = cmp.Or(u.OutputTokensDetails.ReasoningTokens, u.CompletionTokensDetails.ReasoningTokens)
		c.PromptTokens, c.CompletionTokens = 0, 0
		return c.usage()
	}
	if u == nil || u.InputTokens < 0 || u.OutputTokens < 0 || u.TotalTokens < 0 ||
		u.InputTokensDetails.CachedTokens < 0 || u.InputTokensDetails.CacheWriteTokens < 0 || u.OutputTokensDetails.ReasoningTokens < 0 ||
		u.InputTokens == 0 && u.OutputTokens == 0 && u.TotalTokens == 0 {
		return middleware.Usage{}, false
	}
	if max(u.InputTokens, u.OutputTokens, u.TotalTokens, u.InputTokensDetails.CachedTokens, u.InputTokensDetails.CacheWriteTokens,
		u.OutputTokensDetails.ReasoningTokens) > middleware.MaxCount {
		// No provider's count (middleware.Usage.Implausible): billed as a
		// usage that has none, not a whole budget spent on one call.
		return middleware.Usage{}, false
	}
	in, out, total := int64(u.InputTokens), int64(u.OutputTokens), int64(u.TotalTokens)
	return middleware.Usage{InputTokens: in, OutputTokens: max(out, total-in),
		CachedInputTokens: int64(u.InputTokensDetails.CachedTokens), CacheWriteTokens: int64(u.InputTokensDetails.CacheWriteTokens),
		ReasoningTokens: int64(u.OutputTokensDetails.ReasoningTokens)}, true
}

// charge settles h from the upstream's answer and gives the answer back
// unchanged: a JSON answer is read whole; a stream is read as the caller
// reads it and settled when it ends (at what was reserved when it ends
// without its final event). An answer that is not a success releases the
// reservation.
func (h *responsesHold) charge(resp *http.Response) error {
	ctx := resp.Request.Context()
	if h.unsuccessful(ctx, resp) {
		h.record(middleware.Usage{}, 0, false, errors.New("tokenwise/gateway: the upstream answered the responses call with HTTP "+strconv.Itoa(resp.StatusCode)))
		return nil
	}
	if isEventStream(resp) {
		unsized(resp)
		rs := &responsesStream{src: resp.Body, feeItems: h.tools.hosted(),
			count: func(s string) int64 { return h.s.est.Text(h.model, s) },
			final: func(o *responseObject) { h.settleObject(ctx, o) }}
		rs.cut = func(err error) {
			if clientEnded(ctx, err) {
				// The client went away mid-stream (an SDK's abort): the
				// provider stops and bills what it produced, as a chat
				// stream its client aborts is billed its partial answer.
				h.s.logger.Warn("tokenwise/gateway: a responses stream its client ended before its final event: charged its input and the output it streamed", "team", h.team, "err", err)
				h.chargeStreamed(ctx, rs.streamed, err)
				return
			}
			h.s.logger.Warn("tokenwise/gateway: a responses stream ended without its final event: charged its reservation", "team", h.team, "err", err)
			h.chargeReserved(ctx, err)
		}
		resp.Body = rs
		return nil
	}
	body, whole, err := readAnswer(resp, maxResponsesEvent)
	if !whole || err != nil {
		// Too long to read (passed on whole, unread) or not read to its
		// end: charged what was reserved.
		h.chargeReserved(ctx, err)
		return err
	}
	var o responseObject
	if json.Unmarshal(body, &o) != nil {
		o = responseObject{}
	}
	if pendingResponse(&o) {
		// A background response: held until it is seen done
		// (responses_background.go); the rate limits keep their estimate.
		h.background.Store(true)
		if h.s.background.keep(h.team, o.ID, h) {
			h.done(ctx, -1, 1)
			return nil
		}
		h.background.Store(false) // the gateway is closing: charged now
	}
	h.settleObject(ctx, &o)
	return nil
}

// readAnswer reads resp's body, of at most max bytes, for the gateway to
// charge its call, and gives resp the body to pass on: what was read, or,
// when the answer is longer (whole false, nothing returned), what was read
// followed by the rest unread — never cut at the bound. A body an earlier
// hook read whole, not read since, is not read again: its bytes are
// returned, and it is left to pass on.
func readAnswer(resp *http.Response, max int) (body []byte, whole bool, err error) {
	if a, ok := resp.Body.(*answerBody); ok && a.Len() == len(a.data) {
		if len(a.data) > max {
			return nil, false, nil
		}
		return a.data, true, nil
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err == nil && len(body) > max {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return nil, false, nil
	}
	_ = resp.Body.Close()
	resp.Body = &answerBody{Reader: bytes.NewReader(body), data: body}
	return body, true, err
}

// answerBody is an answer readAnswer read whole, given back to be passed
// on: a later readAnswer of the call takes data instead of reading the
// body again.
type answerBody struct {
	*bytes.Reader
	data []byte
}

func (*answerBody) Close() error { return nil }

// isEventStream reports whether resp is a stream of events.
func isEventStream(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
}

// labelStream labels resp, a 2xx answer to a Responses call, an event
// stream when it is one under another Content-Type (a proxy's
// application/json, which openai-go and the other SDKs read as a stream
// all the same, as the chat adapters read a chat stream so labelled):
// the gateway then reads it as the stream it is — settled at its final
// event, ended with the stream_cut event when cut —, never as a JSON
// answer that does not decode. It peeks at the body's first bytes
// (ssesniff), reading nothing.
func labelStream(resp *http.Response) {
	if resp.StatusCode < 200 || resp.StatusCode >= 300 || isEventStream(resp) || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	br := bufio.NewReader(resp.Body)
	sse := ssesniff.Sniff(br)
	resp.Body = struct {
		io.Reader
		io.Closer
	}{br, resp.Body}
	if sse {
		resp.Header.Set("Content-Type", "text/event-stream")
	}
}

// labelledStreams returns the answer's hook modify after labelStream.
func labelledStreams(modify func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		labelStream(resp)
		return modify(resp)
	}
}

// unsized drops a stream's length: the gateway may end it with an event
// of its own.
func unsized(resp *http.Response) {
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
}

// shapeErrors is the answer's hook of a policed call that holds nothing:
// an error answer is shaped as an OpenAI error (shapeError); a redirect
// is one too, a 502: the gateway does not send its callers to where its
// upstream points (its Location is dropped).
func (s *Server) shapeErrors(resp *http.Response) error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		shapeError(resp, s.secrets) // (says the upstream's status)
		resp.Header.Del("Location")
		resp.StatusCode, resp.Status = http.StatusBadGateway, "502 Bad Gateway"
		return nil
	}
	if resp.StatusCode >= 400 {
		shapeError(resp, s.secrets)
	}
	return nil
}

// reportCut is the answer's hook of a Responses call that holds nothing
// (no budget, rate limit or run to settle): a stream cut before its final
// event still ends with the cut event, and an error answer is shaped as
// an OpenAI error (shapeError).
func (s *Server) reportCut(resp *http.Response) error {
	_ = s.shapeErrors(resp)
	if resp.StatusCode == http.StatusOK && isEventStream(resp) {
		unsized(resp)
		resp.Body = &responsesStream{src: resp.Body, final: func(*responseObject) {}, cut: func(error) {}}
	}
	return nil
}

// responsesStream passes a Responses stream through and reads its final
// event's usage on the way: final gets the final event's response, once;
// cut is called instead when the stream ends without one (with why: the
// error that ended it, middleware.ErrStreamCut when it just ended), and
// the client then reads, after what the upstream sent, an error event of
// its own (stream_cut, or the timeout that ended it) that the official SDKs
// raise as an error — a cut stream is never read as a complete one.
type responsesStream struct {
	src   io.ReadCloser
	final func(*responseObject)
	cut   func(why error)
	why   error // what ended a cut stream: the source's error (nil: none)
	// count, when set, counts the tokens of a delta's text; streamed is
	// the sum over the stream's deltas so far (the output a stream its
	// client ends is charged).
	count    func(string) int64
	streamed int64
	// completed, when set, gets the response of a response.completed
	// final event (the cache keeps it).
	completed func(answer []byte)
	// finalRaw, when set, gets the response of any final event that has
	// one (the cascade checks it).
	finalRaw func(response []byte)
	// owner, when set, gets the id of each response the stream's events
	// carry (once for a run of events of the same id), before the
	// client reads the event: the owner record's, read in this one pass
	// (recordOwner).
	owner     func(id string)
	lastOwner string
	feeItems  bool      // keep the items done (the request has hosted tools with fees)
	items     []feeItem // the stream's items done, for a final event without output
	line      []byte    // the current line, up to maxResponsesEvent
	long      bool      // the current line is longer: not kept
	open      bool      // a line of an event not yet ended by a blank line was read
	partial   bool      // the stream has a line begun and not ended
	cr        bool      // the last line ended with a CR: an LF next is the same line end
	// lines counts the data lines of the current event (negative: its
	// first was read whole); joined is its data of several lines, joined
	// with line breaks, read at the event's end.
	lines  int
	joined []byte
	done   bool   // settled
	tail   []byte // what is left to read of the cut event
	// seq is the sequence number of the event the gateway adds: one
	// more than the last event's (0: none had one).
	seq   int64
	ended bool // src has ended: tail, then io.EOF
}

// cutMessage is the message of the error event the gateway adds to a
// Responses stream that ended without its final event.
const cutMessage = "tokenwise/gateway: the upstream's responses stream ended before its final event"

func (r *responsesStream) Read(p []byte) (int, error) {
	if r.ended {
		if len(r.tail) == 0 {
			return 0, io.EOF
		}
		n := copy(p, r.tail)
		r.tail = r.tail[n:]
		return n, nil
	}
	n, err := r.src.Read(p)
	r.scan(p[:n])
	if err != nil {
		r.ended = true
		if err != io.EOF {
			r.why = err
		}
		if r.finish() {
			// Whatever the upstream's error, the client reads a complete
			// stream that says it was cut.
			r.tail = r.cutTail()
			return n, nil
		}
	}
	return n, err
}

// cutTail is what ends a cut stream: a line and an event the upstream
// left open are ended first, then the cut event. After a CR, an LF first:
// with it the CR is a CRLF, one line end, whether the client's reader
// takes a CR alone as one or waits for what follows it.
func (r *responsesStream) cutTail() []byte {
	var b []byte
	if r.cr {
		b = append(b, '\n')
	}
	if r.partial {
		b = append(b, '\n')
	}
	if r.open || r.partial {
		b = append(b, '\n')
	}
	if errors.Is(r.why, middleware.ErrTimeout) {
		// A timeout of the team's or the run's ended it: the event says
		// which, as a chat stream's does.
		return appendErrorEvent(b, r.seq, "timeout", r.why.Error())
	}
	return appendErrorEvent(b, r.seq, "stream_cut", cutMessage)
}

// appendErrorEvent appends a Responses stream's error event of sequence
// number seq, code and message: the error's code and message at the top,
// as the Responses API streams them, and in an OpenAI error object. The
// sequence number is one the Responses API's events all have: a client
// that checks events against their schema (the Vercel AI SDK) takes an
// error event without one for a malformed event, not the error it says.
func appendErrorEvent(b []byte, seq int64, code, msg string) []byte {
	m, _ := json.Marshal(msg)
	b = append(b, "event: error\ndata: {\"type\":\"error\",\"sequence_number\":"...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ",\"code\":\""...)
	b = append(b, code...)
	b = append(b, "\",\"message\":"...)
	b = append(b, m...)
	b = append(b, ",\"param\":null,\"error\":{\"type\":\"server_error\",\"code\":\""...)
	b = append(b, code...)
	b = append(b, "\",\"message\":"...)
	b = append(b, m...)
	return append(b, ",\"param\":null}}\n\n"...)
}

// scan reads the data lines of b, continuing the current one. Lines end
// as the SSE spec ends them: at a CRLF, an LF or a CR.
func (r *responsesStream) scan(b []byte) {
	if len(b) > 0 {
		if r.cr && b[0] == '\n' {
			b = b[1:] // the LF of a CRLF split between reads
		}
		r.cr = false
	}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		piece := b
		if i >= 0 {
			piece = b[:i]
		}
		if !r.long {
			if len(r.line)+len(piece) > maxResponsesEvent {
				r.long, r.line = true, r.line[:0]
			} else {
				r.line = append(r.line, piece...)
			}
		}
		if i < 0 {
			r.partial = true
			return
		}
		end := i + 1
		if b[i] == '\r' {
			switch {
			case end == len(b):
				r.cr = true // an LF may follow in the next read
			case b[end] == '\n':
				end++
			}
		}
		r.partial = false
		if !r.long {
			r.open = len(r.line) > 0
			r.event(r.line)
		} else {
			r.open = true
		}
		r.line, r.long = r.line[:0], false
		b = b[end:]
	}
}

// event reads one complete line: the final event settles the call.
func (r *responsesStream) event(line []byte) {
	if r.done {
		return
	}
	if len(line) == 0 {
		// The end of an event: one whose data came in several lines
		// (which the SSE spec joins with line breaks, as the SDKs do) is
		// read whole.
		if r.lines > 1 {
			r.data(r.joined)
		}
		r.lines, r.joined = 0, r.joined[:0]
		return
	}
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return
	}
	data = bytes.TrimPrefix(data, []byte(" "))
	switch r.lines++; {
	case r.lines == 1:
		// Most often the whole event: read at once, kept only when it
		// is not whole JSON (the first of several lines).
		if !r.data(data) {
			r.joined = append(r.joined[:0], data...)
		} else {
			r.lines = -1 << 30 // (any further line cannot make it JSON)
		}
	case r.lines > 1:
		if len(r.joined)+1+len(data) > maxResponsesEvent {
			r.lines, r.joined = -1<<30, r.joined[:0]
			return
		}
		r.joined = append(append(r.joined, '\n'), data...)
	}
}

// data reads the data of one event, and reports whether it is JSON: the
// final event settles the call.
func (r *responsesStream) data(data []byte) bool {
	var ev struct {
		Type     string          `json:"type"`
		Response json.RawMessage `json:"response"`
		Item     json.RawMessage `json:"item"`
		Delta    json.RawMessage `json:"delta"`
		Seq      *int64          `json:"sequence_number"`
	}
	if json.Unmarshal(bytes.TrimSpace(data), &ev) != nil {
		return false
	}
	if ev.Seq != nil && *ev.Seq >= r.seq && *ev.Seq < math.MaxInt64 {
		r.seq = *ev.Seq + 1
	}
	final := ev.Type == "response.completed" || ev.Type == "response.incomplete" || ev.Type == "response.failed"
	if r.owner != nil && !final && present(ev.Response) {
		// (A final event's id is read with its response, below.)
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(ev.Response, &o) == nil {
			r.ownedBy(o.ID)
		}
	}
	if r.count != nil && strings.HasSuffix(ev.Type, ".delta") && ev.Type != "response.audio.delta" {
		// Text the model produced (an output text's, a refusal's, a
		// tool call's arguments, a reasoning summary's); not audio's
		// base64.
		var d string
		if json.Unmarshal(ev.Delta, &d) == nil {
			r.streamed = middleware.SatAdd(r.streamed, r.count(d))
		}
	}
	switch ev.Type {
	case "response.output_item.done":
		var it feeItem
		if r.feeItems && len(r.items) < maxStreamItems && json.Unmarshal(ev.Item, &it) == nil {
			r.items = append(r.items, it)
		}
	case "response.completed", "response.incomplete", "response.failed":
		var o responseObject
		if present(ev.Response) && json.Unmarshal(ev.Response, &o) != nil {
			// The final event all the same, of a response the gateway
			// cannot read (a member of another type): the stream is
			// complete, never ended as cut, and the call is charged as
			// one without readable usage, as a JSON answer that does not
			// decode is.
			o = responseObject{}
		}
		r.ownedBy(o.ID)
		if !present(o.Output) && len(r.items) > 0 {
			// A final event that leaves out the output its events
			// carried: the items done are the output (their fees).
			o.Output, _ = json.Marshal(r.items)
		}
		if ev.Type == "response.failed" {
			// A response that failed mid-answer: its usage may lag
			// behind what its deltas streamed (settleObject).
			o.streamed = r.streamed
		}
		r.done = true
		r.final(&o)
		if r.finalRaw != nil && present(ev.Response) {
			r.finalRaw(ev.Response)
		}
		if r.completed != nil && ev.Type == "response.completed" && present(ev.Response) {
			r.completed(ev.Response)
		}
	}
	return true
}

// ownedBy passes the response id of an event to owner.
func (r *responsesStream) ownedBy(id string) {
	if r.owner == nil || id == "" || id == r.lastOwner {
		return
	}
	r.lastOwner = id
	r.owner(id)
}

// finish settles a stream that ended without its final event at what
// was reserved (the provider may have billed what it streamed), and
// reports whether it did: the stream was cut.
func (r *responsesStream) finish() bool {
	if r.done {
		return false
	}
	r.done = true
	r.cut(cmp.Or(r.why, middleware.ErrStreamCut))
	return true
}

func (r *responsesStream) Close() error {
	err := r.src.Close()
	r.finish()
	return err
}
