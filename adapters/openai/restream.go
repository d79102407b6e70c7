package openai

import (
	"cmp"
	"encoding/json"
	"errors"
	"strings"

	"github.com/tokenwise/tokenwise/middleware"
)

// restreamPiece is the largest size in bytes of the content, reasoning,
// refusal and argument pieces of a restreamed answer without logprobs (a
// few tokens, as providers stream).
const restreamPiece = 16

// storedAnswer is what a stored OpenAI chat completion body is restreamed
// from.
type storedAnswer struct {
	ID                string          `json:"id"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       string          `json:"service_tier,omitempty"`
	SystemFingerprint string          `json:"system_fingerprint,omitempty"`
	Choices           []storedChoice  `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type storedChoice struct {
	Index   int `json:"index"`
	Message struct {
		Content          *string           `json:"content"`
		Refusal          *string           `json:"refusal"`
		ReasoningContent string            `json:"reasoning_content"`
		Reasoning        string            `json:"reasoning"`
		ToolCalls        []json.RawMessage `json:"tool_calls"`
	} `json:"message"`
	Logprobs *struct {
		Content []json.RawMessage `json:"content"`
		Refusal []json.RawMessage `json:"refusal"`
	} `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type storedCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// The restreamed chunks.
type (
	sseChunk struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		ServiceTier       string          `json:"service_tier,omitempty"`
		SystemFingerprint string          `json:"system_fingerprint,omitempty"`
		Choices           []sseChoice     `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
	}
	sseChoice struct {
		Index        int          `json:"index"`
		Delta        sseDelta     `json:"delta"`
		Logprobs     *sseLogprobs `json:"logprobs"`
		FinishReason *string      `json:"finish_reason"`
	}
	sseDelta struct {
		Role             string    `json:"role,omitempty"`
		Content          *string   `json:"content,omitempty"`
		ReasoningContent string    `json:"reasoning_content,omitempty"`
		Refusal          *string   `json:"refusal,omitempty"`
		ToolCalls        []sseCall `json:"tool_calls,omitempty"`
	}
	sseLogprobs struct {
		Content []json.RawMessage `json:"content,omitempty"`
		Refusal []json.RawMessage `json:"refusal,omitempty"`
	}
	sseCall struct {
		Index    int         `json:"index"`
		ID       string      `json:"id,omitempty"`
		Type     string      `json:"type,omitempty"`
		Function sseFunction `json:"function"`
	}
	sseFunction struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
)

// appendRestream appends to dst the server-sent events of the stored chat
// completion body, as OpenAI would have streamed it: every choice, its
// chunks interleaved by index (each chunk carries one choice); per choice
// the role, the reasoning, the refusal and the content in pieces (one token
// a chunk with its logprobs when the stored answer has logprobs whose
// tokens spell the text, else pieces of a few bytes and the logprobs on the
// first one), each tool call (ID, type and name, then its arguments in
// pieces) and the finish reason; every chunk with the stored id, created
// time, model, service tier and system fingerprint; then, when includeUsage,
// a chunk with the stored usage. The "data: [DONE]" line is not appended.
// What a stream cannot carry (annotations, audio) is not sent.
func appendRestream(dst, body []byte, includeUsage bool) ([]byte, error) {
	var a storedAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return dst, err
	}
	head := sseChunk{ID: a.ID, Object: "chat.completion.chunk", Created: a.Created, Model: a.Model,
		ServiceTier: a.ServiceTier, SystemFingerprint: a.SystemFingerprint}
	perChoice := make([][]sseChoice, len(a.Choices))
	for i := range a.Choices {
		ch, err := choiceChunks(&a.Choices[i])
		if err != nil {
			return dst, err
		}
		perChoice[i] = ch
	}
	var one [1]sseChoice
	for k := 0; ; k++ {
		sent := false
		for _, ch := range perChoice {
			if k >= len(ch) {
				continue
			}
			sent = true
			one[0] = ch[k]
			head.Choices = one[:]
			b, err := json.Marshal(&head)
			if err != nil {
				return dst, err
			}
			dst = appendEvent(dst, b)
		}
		if !sent {
			break
		}
	}
	if includeUsage && len(a.Usage) > 0 && string(a.Usage) != "null" {
		head.Choices = []sseChoice{}
		head.Usage = a.Usage
		b, err := json.Marshal(&head)
		if err != nil {
			return dst, err
		}
		dst = appendEvent(dst, b)
	}
	return dst, nil
}

// choiceChunks returns the chunks of one stored choice, in order.
func choiceChunks(c *storedChoice) ([]sseChoice, error) {
	var out []sseChoice
	add := func(d sseDelta, lp *sseLogprobs) {
		if len(out) == 0 {
			d.Role = "assistant"
		}
		out = append(out, sseChoice{Index: c.Index, Delta: d, Logprobs: lp})
	}
	for s := cmp.Or(c.Message.ReasoningContent, c.Message.Reasoning); s != ""; {
		n := middleware.NextPiece(s, restreamPiece)
		add(sseDelta{ReasoningContent: s[:n]}, nil)
		s = s[n:]
	}
	var contentLP, refusalLP []json.RawMessage
	if c.Logprobs != nil {
		contentLP, refusalLP = c.Logprobs.Content, c.Logprobs.Refusal
	}
	if c.Message.Refusal != nil && *c.Message.Refusal != "" {
		pieces(*c.Message.Refusal, refusalLP, func(s string, lp []json.RawMessage) {
			var l *sseLogprobs
			if lp != nil {
				l = &sseLogprobs{Refusal: lp}
			}
			add(sseDelta{Refusal: &s}, l)
		})
	}
	if c.Message.Content != nil && *c.Message.Content != "" {
		pieces(*c.Message.Content, contentLP, func(s string, lp []json.RawMessage) {
			var l *sseLogprobs
			if lp != nil {
				l = &sseLogprobs{Content: lp}
			}
			add(sseDelta{Content: &s}, l)
		})
	}
	for i, raw := range c.Message.ToolCalls {
		var tc storedCall
		if err := json.Unmarshal(raw, &tc); err != nil {
			return nil, err
		}
		add(sseDelta{ToolCalls: []sseCall{{Index: i, ID: tc.ID, Type: tc.Type, Function: sseFunction{Name: tc.Function.Name}}}}, nil)
		for s := tc.Function.Arguments; s != ""; {
			n := middleware.NextPiece(s, restreamPiece)
			add(sseDelta{ToolCalls: []sseCall{{Index: i, Function: sseFunction{Arguments: s[:n]}}}}, nil)
			s = s[n:]
		}
	}
	if len(out) == 0 {
		empty := ""
		add(sseDelta{Content: &empty}, nil)
	}
	finish := sseChoice{Index: c.Index, FinishReason: c.FinishReason}
	if finish.FinishReason == nil {
		stop := "stop"
		finish.FinishReason = &stop
	}
	return append(out, finish), nil
}

// pieces calls fn with the pieces of text to stream and the logprobs of
// each: one token a piece when the tokens of lp spell text, else pieces of
// a few bytes with every logprob on the first.
func pieces(text string, lp []json.RawMessage, fn func(s string, lp []json.RawMessage)) {
	if len(lp) > 0 {
		tokens := make([]string, len(lp))
		var sb strings.Builder
		ok := true
		for i, raw := range lp {
			var t struct {
				Token string `json:"token"`
			}
			if json.Unmarshal(raw, &t) != nil {
				ok = false
				break
			}
			tokens[i] = t.Token
			sb.WriteString(t.Token)
		}
		if ok && sb.String() == text {
			for i, t := range tokens {
				fn(t, lp[i:i+1])
			}
			return
		}
	}
	for s := text; s != ""; {
		n := middleware.NextPiece(s, restreamPiece)
		fn(s[:n], lp)
		lp = nil
		s = s[n:]
	}
}

// streamedBody is the Native of a response the provider streamed: its
// chunks' data payloads, which MarshalNative merges into the chat
// completion body the provider would have sent without streaming, so that
// a cache keeps every choice, logprobs, refusal, the id, model,
// system_fingerprint and usage of a streamed answer too.
type streamedBody struct {
	chunks [][]byte
}

var _ middleware.NativeMarshaler = (*streamedBody)(nil)

// MarshalNative implements middleware.NativeMarshaler: the merged body,
// or not ok when a chunk does not decode.
func (s *streamedBody) MarshalNative() (string, []byte, bool) {
	b, err := mergeChunks(s.chunks)
	if err != nil {
		return "", nil, false
	}
	return NativeFormat, b, true
}

// mergeChunks merges the data payloads of a chat completion stream into
// the body of the same answer unstreamed.
func mergeChunks(chunks [][]byte) ([]byte, error) {
	type call struct {
		ID       string      `json:"id"`
		Type     string      `json:"type"`
		Function sseFunction `json:"function"`
	}
	type message struct {
		Role             string  `json:"role"`
		Content          *string `json:"content"`
		ReasoningContent string  `json:"reasoning_content,omitempty"`
		Refusal          *string `json:"refusal"`
		ToolCalls        []call  `json:"tool_calls,omitempty"`
	}
	type choice struct {
		Index        int          `json:"index"`
		Message      message      `json:"message"`
		Logprobs     *sseLogprobs `json:"logprobs"`
		FinishReason *string      `json:"finish_reason"`
	}
	var out struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		ServiceTier       string          `json:"service_tier,omitempty"`
		SystemFingerprint string          `json:"system_fingerprint,omitempty"`
		Choices           []choice        `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
	}
	out.Object = "chat.completion"
	var text []*struct{ content, refusal strings.Builder }
	for _, data := range chunks {
		var c struct {
			sseChunk
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Content          *string `json:"content"`
					ReasoningContent string  `json:"reasoning_content"`
					Reasoning        string  `json:"reasoning"`
					Refusal          *string `json:"refusal"`
					ToolCalls        []struct {
						Index    int         `json:"index"`
						ID       string      `json:"id"`
						Type     string      `json:"type"`
						Function sseFunction `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				Logprobs     *sseLogprobs `json:"logprobs"`
				FinishReason *string      `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, err
		}
		out.ID, out.Created, out.Model = cmp.Or(out.ID, c.ID), cmp.Or(out.Created, c.Created), cmp.Or(out.Model, c.Model)
		out.ServiceTier, out.SystemFingerprint = cmp.Or(out.ServiceTier, c.ServiceTier), cmp.Or(out.SystemFingerprint, c.SystemFingerprint)
		if len(c.Usage) > 0 && string(c.Usage) != "null" {
			out.Usage = c.Usage
		}
		for _, d := range c.Choices {
			if d.Index < 0 || d.Index > 1<<10 {
				return nil, errors.New("tokenwise/openai: choice index out of range")
			}
			for len(out.Choices) <= d.Index {
				out.Choices = append(out.Choices, choice{Index: len(out.Choices), Message: message{Role: "assistant"}})
				text = append(text, &struct{ content, refusal strings.Builder }{})
			}
			ch, tx := &out.Choices[d.Index], text[d.Index]
			if d.Delta.Content != nil {
				tx.content.WriteString(*d.Delta.Content)
			}
			if d.Delta.Refusal != nil {
				tx.refusal.WriteString(*d.Delta.Refusal)
			}
			ch.Message.ReasoningContent += d.Delta.ReasoningContent + d.Delta.Reasoning
			for _, tc := range d.Delta.ToolCalls {
				if tc.Index < 0 || tc.Index > 1<<10 {
					return nil, errors.New("tokenwise/openai: tool call index out of range")
				}
				for len(ch.Message.ToolCalls) <= tc.Index {
					ch.Message.ToolCalls = append(ch.Message.ToolCalls, call{})
				}
				t := &ch.Message.ToolCalls[tc.Index]
				t.ID, t.Type = cmp.Or(t.ID, tc.ID), cmp.Or(t.Type, tc.Type)
				t.Function.Name += tc.Function.Name
				t.Function.Arguments += tc.Function.Arguments
			}
			if d.Logprobs != nil {
				if ch.Logprobs == nil {
					ch.Logprobs = &sseLogprobs{}
				}
				ch.Logprobs.Content = append(ch.Logprobs.Content, d.Logprobs.Content...)
				ch.Logprobs.Refusal = append(ch.Logprobs.Refusal, d.Logprobs.Refusal...)
			}
			if d.FinishReason != nil {
				ch.FinishReason = d.FinishReason
			}
		}
	}
	for i := range out.Choices {
		ch, tx := &out.Choices[i], text[i]
		if tx.content.Len() > 0 || len(ch.Message.ToolCalls) == 0 && tx.refusal.Len() == 0 {
			s := tx.content.String()
			ch.Message.Content = &s
		}
		if tx.refusal.Len() > 0 {
			s := tx.refusal.String()
			ch.Message.Refusal = &s
		}
		for j := range ch.Message.ToolCalls {
			if ch.Message.ToolCalls[j].Type == "" {
				ch.Message.ToolCalls[j].Type = "function"
			}
		}
	}
	return json.Marshal(&out)
}
