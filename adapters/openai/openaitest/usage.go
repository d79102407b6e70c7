package openaitest

import (
	"bytes"
	"encoding/json"
)

// Token counting constants of the documented rule (see the package doc).
const (
	tokensPerMessage = 4  // per request message
	tokensPriming    = 3  // per request, for the reply's priming
	tokensPerTool    = 8  // per declared tool
	tokensPerCall    = 1  // per tool call, in a request message or a reply
	tokensPerImage   = 85 // per non-text content part
)

// quarter returns ceil(n/4): the rule's tokens for n bytes.
func quarter(n int) int { return (n + 3) / 4 }

// PromptTokens returns the prompt tokens the server reports for req:
//
//	3
//	+ per message: 4 + ceil(B/4) + 1 per tool call + 85 per non-text part,
//	  B = bytes of the content text + name + every tool call's name and arguments
//	+ per tool: 8 + ceil(T/4),
//	  T = bytes of name + description + parameters (compact JSON)
func PromptTokens(req *ChatRequest) int {
	if req == nil {
		return 0
	}
	n := tokensPriming
	for _, m := range req.Messages {
		b := len(m.Content.String()) + len(m.Name)
		for _, c := range m.ToolCalls {
			b += len(c.Function.Name) + len(c.Function.Arguments)
		}
		n += tokensPerMessage + quarter(b) + tokensPerCall*len(m.ToolCalls)
		for _, p := range m.Content.Parts {
			if p.Type != "text" {
				n += tokensPerImage
			}
		}
	}
	for _, t := range req.Tools {
		b := len(t.Function.Name) + len(t.Function.Description)
		if len(t.Function.Parameters) > 0 {
			var buf bytes.Buffer
			if json.Compact(&buf, t.Function.Parameters) == nil {
				b += buf.Len()
			} else {
				b += len(t.Function.Parameters)
			}
		}
		n += tokensPerTool + quarter(b)
	}
	return n
}

// ReasoningTokens returns ceil(bytes of r.Reasoning / 4).
func ReasoningTokens(r Reply) int {
	return quarter(len(r.Reasoning))
}

// CompletionTokens returns the completion tokens the server reports for r:
//
//	ceil(bytes of Content / 4) + ReasoningTokens(r)
//	+ per tool call: 1 + ceil(bytes of name and arguments / 4)
func CompletionTokens(r Reply) int {
	n := quarter(len(r.Content)) + ReasoningTokens(r)
	for _, c := range r.ToolCalls {
		n += tokensPerCall + quarter(len(c.Function.Name)+len(c.Function.Arguments))
	}
	return n
}

// UsageFor returns the usage the server reports when it answers req with r:
// r.Usage when set (TotalTokens filled in when zero), otherwise
// PromptTokens(req), CompletionTokens(r) and ReasoningTokens(r), with no
// cached tokens — summed with r.Alternatives' completion and reasoning
// tokens, as OpenAI counts every choice of an answer of n > 1.
func UsageFor(req *ChatRequest, r Reply) Usage {
	if r.Usage != nil {
		u := *r.Usage
		if u.TotalTokens == 0 {
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
		}
		return u
	}
	u := Usage{
		PromptTokens:     PromptTokens(req),
		CompletionTokens: CompletionTokens(r),
		ReasoningTokens:  ReasoningTokens(r),
	}
	for _, alt := range r.Alternatives {
		u.CompletionTokens += CompletionTokens(alt)
		u.ReasoningTokens += ReasoningTokens(alt)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}
