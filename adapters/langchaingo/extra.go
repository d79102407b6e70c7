package langchaingo

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/tmc/langchaingo/llms"
)

// extraOptions renders the options that may change the answer but that the
// core does not model as canonical JSON (sorted keys) for Request.Extra,
// which caches key on: top_k, penalties, min/max length, CandidateCount
// (which backends read instead of N, or not at all), the response MIME
// type (application/json too: the openai backend ignores it, where
// JSONMode is its json_object), a tool choice naming a function like a
// mode ("auto"), a tool choice other than a string as it is sent, the
// legacy function call behavior (sent as function_call beside
// tool_choice), tool types other than "function", the types of the
// messages' tool calls when one is not "function", and the backend
// switches langchaingo's backends read from Metadata (thinking_config,
// googleai's CachedContentName, anthropic:beta_headers,
// openai:use_legacy_max_tokens). Zero values are langchaingo's
// "not set" and are left out. The rest of Metadata is neutral: it is what
// langchaingo's openai backend sends as the OpenAI "metadata" field (see
// middleware.NeutralFields). The streaming funcs are delivery, not
// content. nil when there is none.
func extraOptions(co *llms.CallOptions, msgs []llms.MessageContent) []byte {
	var b []byte
	add := func(key string) {
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, key)
		b = append(b, ':')
	}
	num := func(key string, f float64) {
		if f != 0 && f == f {
			add(key)
			b = strconv.AppendFloat(b, f, 'g', -1, 64)
		}
	}
	integer := func(key string, n int) {
		if n != 0 && n != unsetInt {
			add(key)
			b = strconv.AppendInt(b, int64(n), 10)
		}
	}
	raw := func(key string, v any) {
		if j, err := json.Marshal(v); err == nil {
			add(key)
			b = append(b, j...)
		}
	}
	// Keys in sorted order.
	if v, ok := co.Metadata["anthropic:beta_headers"]; ok && v != nil {
		raw("anthropic_beta", v)
	}
	if v, ok := co.Metadata["CachedContentName"].(string); ok && v != "" {
		raw("cached_content", v)
	}
	// CandidateCount is not N: langchaingo's openai backend sends N only
	// (n), googleai CandidateCount only; the core's N is either.
	integer("candidate_count", co.CandidateCount)
	num("frequency_penalty", co.FrequencyPenalty)
	if co.FunctionCallBehavior != "" {
		// The openai backend sends it as function_call, beside tool_choice
		// and whatever the tools: function_call "none" is not tool_choice
		// "none" (the core's ToolChoice, when no tool choice is given).
		raw("function_call_behavior", string(co.FunctionCallBehavior))
	}
	if g := genericMessages(msgs); g != nil {
		raw("generic_messages", g)
	}
	if g := groupedResults(msgs); g != nil {
		raw("grouped_tool_results", g)
	}
	integer("max_length", co.MaxLength)
	integer("min_length", co.MinLength)
	if v, ok := co.Metadata["openai:use_legacy_max_tokens"].(bool); ok && v {
		// The openai backend sends max_tokens instead of
		// max_completion_tokens (which reasoning models read otherwise).
		raw("openai_legacy_max_tokens", v)
	}
	num("presence_penalty", co.PresencePenalty)
	num("repetition_penalty", co.RepetitionPenalty)
	// The MIME type as given, application/json too: the openai backend
	// ignores it (only JSONMode is its json_object), googleai reads it.
	if m := co.ResponseMIMEType; m != "" {
		add("response_mime_type")
		j, _ := json.Marshal(m) // a string always marshals
		b = append(b, j...)
	}
	if tc, ok := co.Metadata["thinking_config"].(*llms.ThinkingConfig); ok && tc != nil {
		if j, err := json.Marshal(tc); err == nil { // a struct: fields in a fixed order
			add("thinking")
			b = append(b, j...)
		}
	}
	if types := callTypes(msgs); types != nil {
		raw("tool_call_types", types)
	}
	if name, ok := functionChoice(co.ToolChoice); ok && (name == "auto" || name == "none" || name == "required") {
		raw("tool_choice_function", name)
	}
	if _, plain := co.ToolChoice.(string); co.ToolChoice != nil && !plain {
		// The choice as the openai backend sends it: an object naming a
		// function is not the bare name the core keeps ("f"), nor is
		// {"type": "none"} the mode "none".
		raw("tool_choice_sent", co.ToolChoice)
	}
	if r := resultsOfOtherRoles(msgs); r != nil {
		raw("tool_results_in", r)
	}
	if types := toolTypes(co.Tools); types != nil {
		raw("tool_types", types)
	}
	integer("top_k", co.TopK)
	if b != nil {
		b = append(b, '}')
	}
	return b
}

// functionChoice returns the function a langchaingo tool choice forces, if
// it forces one.
func functionChoice(choice any) (string, bool) {
	switch c := choice.(type) {
	case llms.ToolChoice:
		if c.Function != nil {
			return c.Function.Name, true
		}
	case *llms.ToolChoice:
		if c != nil && c.Function != nil {
			return c.Function.Name, true
		}
	case llms.FunctionReference:
		return c.Name, true
	case *llms.FunctionReference:
		if c != nil {
			return c.Name, true
		}
	case map[string]any:
		if f, ok := c["function"].(map[string]any); ok {
			name, ok := f["name"].(string)
			return name, ok
		}
	}
	return "", false
}

// callTypes returns the type of every tool call of msgs, in order, when
// one is not "function" (the core's tool calls have no type: the openai
// backend sends each call's Type as it is, "" included), else nil.
func callTypes(msgs []llms.MessageContent) []string {
	other := false
	n := 0
	for _, mc := range msgs {
		for _, p := range mc.Parts {
			if tc, ok := p.(llms.ToolCall); ok {
				n++
				other = other || tc.Type != "function"
			}
		}
	}
	if !other {
		return nil
	}
	types := make([]string, 0, n)
	for _, mc := range msgs {
		for _, p := range mc.Parts {
			if tc, ok := p.(llms.ToolCall); ok {
				types = append(types, tc.Type)
			}
		}
	}
	return types
}

// genericMessages returns the indices of the generic messages of msgs,
// else nil. The core takes a generic message for the user's, as a human
// one, but langchaingo's backends do not: the openai backend merges the
// system prompt into the first human message for the models it takes as
// without system messages (o1, o3), never into a generic one, and the
// anthropic backend refuses a generic message.
func genericMessages(msgs []llms.MessageContent) []int {
	var g []int
	for i, mc := range msgs {
		if mc.Role == llms.ChatMessageTypeGeneric {
			g = append(g, i)
		}
	}
	return g
}

// resultsOfOtherRoles returns the index and role of every message of msgs
// that carries a tool call response but is neither a tool nor a function
// message, else nil. The core makes a tool message of such a response
// whatever the role of its message, but the backends do not: the openai
// backend sends the message as its role says, without the response (an
// empty assistant or user message), the anthropic backend refuses it.
func resultsOfOtherRoles(msgs []llms.MessageContent) [][2]any {
	var r [][2]any
	for i, mc := range msgs {
		if mc.Role == llms.ChatMessageTypeTool || mc.Role == llms.ChatMessageTypeFunction {
			continue
		}
		if slices.ContainsFunc(mc.Parts, func(p llms.ContentPart) bool { _, ok := p.(llms.ToolCallResponse); return ok }) {
			r = append(r, [2]any{i, string(mc.Role)})
		}
	}
	return r
}

// groupedResults returns, for every message of msgs that carries more
// than one tool call response, its index and the number of them, else
// nil. The core splits such a message into one tool message per response
// (see coreMessages), the form of separate messages; but the caller's
// message goes to the backend as it is, which sends it otherwise (the
// openai backend refuses it: a tool message takes exactly one part), so
// that the grouping is part of the request, and of its cache key.
func groupedResults(msgs []llms.MessageContent) [][2]int {
	var g [][2]int
	for i, mc := range msgs {
		n := 0
		for _, p := range mc.Parts {
			if _, ok := p.(llms.ToolCallResponse); ok {
				n++
			}
		}
		if n > 1 {
			g = append(g, [2]int{i, n})
		}
	}
	return g
}

// toolTypes returns the type of every tool when one is not a function tool
// (the core models function tools only), else nil.
func toolTypes(tools []llms.Tool) []string {
	if !slices.ContainsFunc(tools, func(t llms.Tool) bool { return t.Type != "function" && t.Type != "" }) {
		return nil
	}
	types := make([]string, len(tools))
	for i, t := range tools {
		types[i] = t.Type
	}
	return types
}
