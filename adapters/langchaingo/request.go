package langchaingo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/middleware"
)

// nativeRequest is the adapter's Request.Native: the caller's messages and
// options, and a snapshot of the core fields derived from them, which the
// provider compares with the request it receives to tell what the chain
// changed. It is immutable once built.
type nativeRequest struct {
	messages []llms.MessageContent
	options  []llms.CallOption // the caller's, nil ones removed
	stream   streamMode        // which streaming funcs the caller set

	// The core view as the adapter built it. Messages shares its backing
	// array with the original Request.Messages: Handlers treat requests as
	// read-only, so an unchanged request still points at it.
	core middleware.Request
	// msgSource[i] is the index of the llms message core message i was made
	// from, or -1 when it cannot stand for it alone (a split message); nil
	// when the messages map one to one.
	msgSource []int
	tools     []llms.Tool // the caller's tools and functions, as core.Tools lists them
	partition string      // the Model's modelsPartition
}

// source returns the index of the llms message core message i stands for.
func (n *nativeRequest) source(i int) int {
	if n.msgSource == nil {
		return i
	}
	return n.msgSource[i]
}

// Sentinels that tell "option not given" from a zero value.
const unsetInt = math.MinInt

func isUnsetFloat(f float64) bool { return math.IsNaN(f) }

// requestBox holds a call's core request, its Native and the values its
// pointer fields point to, so that converting a call takes one allocation.
type requestBox struct {
	req         middleware.Request
	nat         nativeRequest
	temperature float64
	topP        float64
	seed        int64
}

// buildRequest converts a GenerateContent call to a core request. The
// forwarder is non-nil when the caller streams.
//
// openai reports whether the model named is served by langchaingo's openai
// backend, whose requests leave out some of the settings given (see
// dropUnsent).
func buildRequest(defaultModel, partition string, openai func(model string) bool, messages []llms.MessageContent, options []llms.CallOption) (*middleware.Request, *forwarder, error) {
	if slices.ContainsFunc(options, func(o llms.CallOption) bool { return o == nil }) {
		options = slices.DeleteFunc(slices.Clone(options), func(o llms.CallOption) bool { return o == nil })
	}
	// Apply the options to CallOptions pre-filled with sentinels: a field
	// still holding its sentinel was not set, whatever its zero value means.
	co := llms.CallOptions{
		Temperature:    math.NaN(),
		TopP:           math.NaN(),
		Seed:           unsetInt,
		N:              unsetInt,
		CandidateCount: unsetInt,
		MaxTokens:      unsetInt,
	}
	for _, o := range options {
		o(&co)
	}
	box := &requestBox{}
	nat, req := &box.nat, &box.req
	nat.messages, nat.options, nat.partition = messages, options, partition
	req.Model, req.Native = co.Model, nat
	if req.Model == "" {
		req.Model = defaultModel
	}
	if !isUnsetFloat(co.Temperature) {
		box.temperature = co.Temperature
		req.Temperature = &box.temperature
	}
	if !isUnsetFloat(co.TopP) {
		box.topP = co.TopP
		req.TopP = &box.topP
	}
	if co.Seed != unsetInt {
		box.seed = int64(co.Seed)
		req.Seed = &box.seed
	}
	if co.MaxTokens != unsetInt && co.MaxTokens > 0 {
		req.MaxTokens = co.MaxTokens
	}
	switch {
	case co.N != unsetInt && co.N > 0:
		req.N = co.N
	case co.CandidateCount != unsetInt && co.CandidateCount > 0:
		req.N = co.CandidateCount
	}
	if len(co.StopWords) > 0 {
		req.Stop = co.StopWords
	}
	req.ToolChoice = toolChoiceName(co.ToolChoice, co.FunctionCallBehavior)
	req.ResponseFormat = responseFormat(co.JSONMode, co.ResponseMIMEType)
	req.Extra = extraOptions(&co, messages)

	var err error
	if req.Tools, nat.tools, err = coreTools(co.Tools, co.Functions); err != nil {
		return nil, nil, err
	}
	req.Messages, nat.msgSource = coreMessages(messages)
	if openai != nil && openai(req.Model) {
		dropUnsent(req)
	}
	nat.core = *req
	nat.core.Native = nil

	var fw *forwarder
	if nat.stream = modeOf(co.StreamingFunc != nil, co.StreamingReasoningFunc != nil); nat.stream != 0 {
		fw = &forwarder{fn: co.StreamingFunc, rfn: co.StreamingReasoningFunc, mode: nat.stream}
	}
	return req, fw, nil
}

// dropUnsent removes from req the settings langchaingo's openai backend
// (v0.1.14) does not send, so that the core request is the request sent
// (which a cache keys on, and deterministic_only judges): top_p (the
// backend never sends it), a seed of 0 (omitted as empty) and, for the
// models it takes for reasoning models (o1-*, o3, o3-*, gpt-5*), the
// temperature (omitted, for the provider's default). Calls go to the
// backend with the caller's options as they were.
func dropUnsent(req *middleware.Request) {
	req.TopP = nil
	if req.Seed != nil && *req.Seed == 0 {
		req.Seed = nil
	}
	if m := req.Model; strings.HasPrefix(m, "o1-") || m == "o3" || strings.HasPrefix(m, "o3-") || strings.HasPrefix(m, "gpt-5") {
		req.Temperature = nil
	}
}

// toolChoiceName maps langchaingo's tool choice to the core's: "", "auto",
// "none", "required" or a tool name.
func toolChoiceName(choice any, behavior llms.FunctionCallBehavior) string {
	switch c := choice.(type) {
	case nil:
		return string(behavior)
	case string:
		return c
	case llms.ToolChoice:
		if c.Function != nil {
			return c.Function.Name
		}
		return c.Type
	case *llms.ToolChoice:
		if c == nil {
			return string(behavior)
		}
		return toolChoiceName(*c, behavior)
	case llms.FunctionReference:
		return c.Name
	case *llms.FunctionReference:
		if c != nil {
			return c.Name
		}
		return string(behavior)
	case map[string]any:
		if f, ok := c["function"].(map[string]any); ok {
			if name, ok := f["name"].(string); ok {
				return name
			}
		}
		if t, ok := c["type"].(string); ok {
			return t
		}
	}
	// Something the core cannot name: keep it distinct (a cache must not
	// confuse it with another choice) by its JSON text.
	if b, err := json.Marshal(choice); err == nil {
		return string(b)
	}
	return fmt.Sprint(choice)
}

// jsonObjectFormat is the core ResponseFormat of langchaingo's JSON mode.
var jsonObjectFormat = []byte(`{"type":"json_object"}`)

func responseFormat(jsonMode bool, mime string) []byte {
	if jsonMode || strings.EqualFold(mime, "application/json") {
		return jsonObjectFormat
	}
	return nil
}

// coreTools converts langchaingo tools and (deprecated) functions. It also
// returns the llms tools in the same order, for the provider to reuse.
func coreTools(tools []llms.Tool, functions []llms.FunctionDefinition) ([]middleware.Tool, []llms.Tool, error) {
	if len(tools) == 0 && len(functions) == 0 {
		return nil, nil, nil
	}
	out := make([]middleware.Tool, 0, len(tools)+len(functions))
	src := make([]llms.Tool, 0, len(tools)+len(functions))
	add := func(t llms.Tool) error {
		ct := middleware.Tool{Name: t.Type}
		if t.Function != nil {
			ct = middleware.Tool{Name: t.Function.Name, Description: t.Function.Description, Strict: t.Function.Strict}
			if t.Function.Parameters != nil {
				b, err := json.Marshal(t.Function.Parameters)
				if err != nil {
					return fmt.Errorf("tokenwise/langchaingo: tool %q: parameters: %w", t.Function.Name, err)
				}
				if !bytes.Equal(b, []byte("null")) {
					ct.Parameters = b
				}
			}
		}
		out = append(out, ct)
		src = append(src, t)
		return nil
	}
	for _, f := range functions {
		f := f
		if err := add(llms.Tool{Type: "function", Function: &f}); err != nil {
			return nil, nil, err
		}
	}
	for _, t := range tools {
		if err := add(t); err != nil {
			return nil, nil, err
		}
	}
	return out, src, nil
}

// coreMessages converts langchaingo messages. A message carrying several
// tool call responses becomes one core tool message per response. The
// second result maps each core message to the llms message it stands for
// (-1: part of a split message); nil means one to one.
func coreMessages(msgs []llms.MessageContent) ([]middleware.Message, []int) {
	out := make([]middleware.Message, 0, len(msgs))
	// One backing array for every message's tool calls.
	calls := 0
	for _, mc := range msgs {
		for _, p := range mc.Parts {
			if _, ok := p.(llms.ToolCall); ok {
				calls++
			}
		}
	}
	var pool []middleware.ToolCall
	if calls > 0 {
		pool = make([]middleware.ToolCall, 0, calls)
	}
	var src []int
	for i, mc := range msgs {
		n := len(out)
		out = appendCoreMessage(out, mc, &pool)
		if len(out)-n == 1 && src == nil {
			continue
		}
		if src == nil {
			src = make([]int, n, len(msgs)+len(out)-n)
			for j := range src {
				src[j] = j
			}
		}
		for range len(out) - n {
			if len(out)-n == 1 {
				src = append(src, i)
			} else {
				src = append(src, -1)
			}
		}
	}
	return out[:len(out):len(out)], src
}

func coreRole(r llms.ChatMessageType) middleware.Role {
	switch r {
	case llms.ChatMessageTypeSystem:
		return middleware.RoleSystem
	case llms.ChatMessageTypeAI:
		return middleware.RoleAssistant
	case llms.ChatMessageTypeTool:
		return middleware.RoleTool
	case llms.ChatMessageTypeFunction:
		return roleFunction
	case llms.ChatMessageTypeHuman, llms.ChatMessageTypeGeneric:
		return middleware.RoleUser
	}
	return middleware.Role(r)
}

// roleFunction is the role of a legacy function result, as the OpenAI
// transport reads it too: langchaingo's openai backend sends it as such
// (role "function", its name, no call id), another request than a tool
// result's, so the two must not be one core message (a cache key).
const roleFunction middleware.Role = "function"

// appendCoreMessage appends the core form of mc to out. Its tool calls are
// carved from *pool (capacity-limited, so appending to them reallocates).
func appendCoreMessage(out []middleware.Message, mc llms.MessageContent, pool *[]middleware.ToolCall) []middleware.Message {
	m := middleware.Message{Role: coreRole(mc.Role)}
	toolRole := middleware.RoleTool
	if mc.Role == llms.ChatMessageTypeFunction {
		toolRole = roleFunction
	}
	// The common cases: one text part stays a plain Content message; one
	// tool call response is a tool message.
	if len(mc.Parts) == 1 {
		switch p := mc.Parts[0].(type) {
		case llms.TextContent:
			m.Content = p.Text
			return append(out, m)
		case llms.ToolCallResponse:
			m.Role, m.ToolCallID, m.Name, m.Content = toolRole, p.ToolCallID, p.Name, p.Content
			return append(out, m)
		}
	}
	start := len(*pool)
	var responses []llms.ToolCallResponse
	for _, p := range mc.Parts {
		switch p := p.(type) {
		case llms.TextContent:
			m.Parts = append(m.Parts, middleware.Part{Type: "text", Text: p.Text})
		case llms.ImageURLContent:
			m.Parts = append(m.Parts, middleware.Part{Type: "image_url", URL: p.URL, Detail: p.Detail})
		case llms.BinaryContent:
			typ := "file"
			if strings.HasPrefix(p.MIMEType, "image/") {
				typ = "image_url"
			}
			m.Parts = append(m.Parts, middleware.Part{Type: typ, MIMEType: p.MIMEType, Data: p.Data})
		case llms.ToolCall:
			tc := middleware.ToolCall{ID: p.ID}
			if p.FunctionCall != nil {
				tc.Name, tc.Arguments = p.FunctionCall.Name, p.FunctionCall.Arguments
			}
			*pool = append(*pool, tc)
		case llms.ToolCallResponse:
			responses = append(responses, p)
		default:
			// A part type this adapter does not know: keep it visible to
			// the chain (and to cache keys) by its printed form.
			m.Parts = append(m.Parts, middleware.Part{Type: fmt.Sprintf("%T", p), Text: fmt.Sprint(p)})
		}
	}
	if n := len(*pool); n > start {
		m.ToolCalls = (*pool)[start:n:n]
	}
	// A single text part left in Parts reads better as Content.
	if len(m.Parts) == 1 && m.Parts[0].Type == "text" {
		m.Content, m.Parts = m.Parts[0].Text, nil
	}
	switch len(responses) {
	case 0:
		return append(out, m)
	case 1:
		r := responses[0]
		m.Role, m.ToolCallID, m.Name = toolRole, r.ToolCallID, r.Name
		if m.Content == "" && len(m.Parts) == 0 {
			m.Content = r.Content
		} else {
			m.Parts = append(textParts(m), middleware.Part{Type: "text", Text: r.Content})
			m.Content = ""
		}
		return append(out, m)
	}
	if m.Content != "" || len(m.Parts) > 0 || len(m.ToolCalls) > 0 {
		out = append(out, m)
	}
	for _, r := range responses {
		out = append(out, middleware.Message{Role: toolRole, ToolCallID: r.ToolCallID, Name: r.Name, Content: r.Content})
	}
	return out
}

// textParts returns m's content as parts.
func textParts(m middleware.Message) []middleware.Part {
	if m.Content != "" {
		return []middleware.Part{{Type: "text", Text: m.Content}}
	}
	return m.Parts
}

// llmsMessage converts a core message back to langchaingo's form.
func llmsMessage(m *middleware.Message) llms.MessageContent {
	mc := llms.MessageContent{}
	switch m.Role {
	case middleware.RoleSystem:
		mc.Role = llms.ChatMessageTypeSystem
	case middleware.RoleAssistant:
		mc.Role = llms.ChatMessageTypeAI
	case middleware.RoleTool, roleFunction:
		mc.Role = llms.ChatMessageTypeTool
		if m.ToolCallID == "" || m.Role == roleFunction {
			// A legacy function result (role "function") has no call id.
			mc.Role = llms.ChatMessageTypeFunction
		}
		mc.Parts = []llms.ContentPart{llms.ToolCallResponse{ToolCallID: m.ToolCallID, Name: m.Name, Content: m.Text()}}
		return mc
	case middleware.RoleUser:
		mc.Role = llms.ChatMessageTypeHuman
	default:
		mc.Role = llms.ChatMessageType(m.Role)
	}
	if m.Content != "" || (len(m.Parts) == 0 && len(m.ToolCalls) == 0) {
		mc.Parts = append(mc.Parts, llms.TextContent{Text: m.Content})
	}
	for _, p := range m.Parts {
		switch {
		case p.Type == "text":
			mc.Parts = append(mc.Parts, llms.TextContent{Text: p.Text})
		case p.Data != nil:
			mc.Parts = append(mc.Parts, llms.BinaryContent{MIMEType: p.MIMEType, Data: p.Data})
		case p.URL != "":
			mc.Parts = append(mc.Parts, llms.ImageURLContent{URL: p.URL, Detail: p.Detail})
		default:
			mc.Parts = append(mc.Parts, llms.TextContent{Text: p.Text})
		}
	}
	for _, tc := range m.ToolCalls {
		mc.Parts = append(mc.Parts, llms.ToolCall{ID: tc.ID, Type: "function",
			FunctionCall: &llms.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	return mc
}

// llmsTool converts a core tool back to langchaingo's form. Parameters are
// decoded to a map, the form every langchaingo backend accepts.
func llmsTool(t middleware.Tool) (llms.Tool, error) {
	fd := &llms.FunctionDefinition{Name: t.Name, Description: t.Description, Strict: t.Strict}
	if len(t.Parameters) > 0 {
		var params map[string]any
		if err := json.Unmarshal(t.Parameters, &params); err != nil {
			return llms.Tool{}, fmt.Errorf("tokenwise/langchaingo: tool %q: parameters: %w", t.Name, err)
		}
		fd.Parameters = params
	}
	return llms.Tool{Type: "function", Function: fd}, nil
}

// llmsToolChoice converts a core tool choice back to langchaingo's form.
func llmsToolChoice(name string) any {
	switch name {
	case "":
		return nil
	case "auto", "none", "required":
		return name
	}
	if strings.HasPrefix(name, "{") {
		var v map[string]any
		if json.Unmarshal([]byte(name), &v) == nil {
			return v
		}
	}
	return llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: name}}
}

func sameBacking[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func floatPtrEqual(a, b *float64) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

func intPtrEqual(a, b *int64) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

// providerCall is what the provider hands the inner model.
type providerCall struct {
	messages []llms.MessageContent
	options  []llms.CallOption
}

// providerCallFor rebuilds the inner call for req: the caller's original
// messages and options where the chain left them alone, plus overrides for
// what it changed. The model is always set to the routed name (withModel is
// llms.WithModel(req.Model)).
func providerCallFor(req *middleware.Request, nat *nativeRequest, withModel llms.CallOption) (providerCall, error) {
	if nat == nil {
		return coreCall(req)
	}
	snap := &nat.core
	pc := providerCall{messages: nat.messages}
	if !sameBacking(req.Messages, snap.Messages) {
		pc.messages = rebuildMessages(req.Messages, nat)
	}
	// Overrides go after the caller's options: later options win.
	opts := make([]llms.CallOption, len(nat.options), len(nat.options)+3)
	copy(opts, nat.options)
	opts = append(opts, withModel)
	if req.MaxTokens != snap.MaxTokens {
		opts = append(opts, llms.WithMaxTokens(req.MaxTokens))
	}
	if !floatPtrEqual(req.Temperature, snap.Temperature) {
		opts = append(opts, llms.WithTemperature(deref(req.Temperature)))
	}
	if !floatPtrEqual(req.TopP, snap.TopP) {
		opts = append(opts, llms.WithTopP(deref(req.TopP)))
	}
	if !intPtrEqual(req.Seed, snap.Seed) {
		var s int
		if req.Seed != nil {
			s = int(*req.Seed)
		}
		opts = append(opts, llms.WithSeed(s))
	}
	if req.N != snap.N {
		n := req.N
		opts = append(opts, func(o *llms.CallOptions) { o.N, o.CandidateCount = n, n })
	}
	if !slices.Equal(req.Stop, snap.Stop) {
		opts = append(opts, llms.WithStopWords(req.Stop))
	}
	if !middleware.EqualTools(req.Tools, snap.Tools) {
		tools, err := rebuildTools(req.Tools, nat)
		if err != nil {
			return providerCall{}, err
		}
		opts = append(opts, func(o *llms.CallOptions) { o.Tools, o.Functions = tools, nil })
	}
	if req.ToolChoice != snap.ToolChoice {
		choice := llmsToolChoice(req.ToolChoice)
		opts = append(opts, func(o *llms.CallOptions) { o.ToolChoice, o.FunctionCallBehavior = choice, "" })
	}
	if !bytes.Equal(req.ResponseFormat, snap.ResponseFormat) {
		jsonMode := bytes.Equal(req.ResponseFormat, jsonObjectFormat)
		opts = append(opts, func(o *llms.CallOptions) { o.JSONMode = jsonMode })
	}
	pc.options = opts
	return pc, nil
}

// coreCall builds an inner call from a core request alone (one that did not
// come from this adapter).
func coreCall(req *middleware.Request) (providerCall, error) {
	pc := providerCall{messages: make([]llms.MessageContent, len(req.Messages))}
	for i := range req.Messages {
		pc.messages[i] = llmsMessage(&req.Messages[i])
	}
	opts := []llms.CallOption{llms.WithModel(req.Model)}
	if req.MaxTokens > 0 {
		opts = append(opts, llms.WithMaxTokens(req.MaxTokens))
	}
	if req.Temperature != nil {
		opts = append(opts, llms.WithTemperature(*req.Temperature))
	}
	if req.TopP != nil {
		opts = append(opts, llms.WithTopP(*req.TopP))
	}
	if req.Seed != nil {
		opts = append(opts, llms.WithSeed(int(*req.Seed)))
	}
	if req.N > 0 {
		opts = append(opts, llms.WithN(req.N))
	}
	if len(req.Stop) > 0 {
		opts = append(opts, llms.WithStopWords(req.Stop))
	}
	if len(req.Tools) > 0 {
		tools, err := rebuildTools(req.Tools, nil)
		if err != nil {
			return providerCall{}, err
		}
		opts = append(opts, llms.WithTools(tools))
	}
	if c := llmsToolChoice(req.ToolChoice); c != nil {
		opts = append(opts, llms.WithToolChoice(c))
	}
	if bytes.Equal(req.ResponseFormat, jsonObjectFormat) {
		opts = append(opts, llms.WithJSONMode())
	}
	pc.options = opts
	return pc, nil
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// rebuildMessages converts the chain's messages back, reusing the caller's
// original llms message wherever a core message is unchanged (so parts the
// core does not model survive a compaction or an inserted message).
func rebuildMessages(msgs []middleware.Message, nat *nativeRequest) []llms.MessageContent {
	out := make([]llms.MessageContent, 0, len(msgs))
	orig := nat.core.Messages
	j := 0 // originals before j are used up
	for i := range msgs {
		found := -1
		for k := j; k < len(orig); k++ {
			if nat.source(k) >= 0 && msgs[i].Equal(&orig[k]) {
				found = k
				break
			}
		}
		if found >= 0 {
			out = append(out, nat.messages[nat.source(found)])
			j = found + 1
			continue
		}
		out = append(out, llmsMessage(&msgs[i]))
	}
	return out
}

// rebuildTools converts the chain's tools back, reusing the caller's
// original definitions where a tool is unchanged.
func rebuildTools(tools []middleware.Tool, nat *nativeRequest) ([]llms.Tool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]llms.Tool, 0, len(tools))
next:
	for i := range tools {
		if nat != nil {
			for k := range nat.core.Tools {
				if tools[i].Equal(&nat.core.Tools[k]) {
					out = append(out, nat.tools[k])
					continue next
				}
			}
		}
		t, err := llmsTool(tools[i])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
