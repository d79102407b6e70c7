package openai

import (
	"cmp"
	"encoding/json"
	"strings"
	"unicode/utf8"
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
		n := cutPiece(s, restreamPiece)
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
			n := cutPiece(s, restreamPiece)
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
		n := cutPiece(s, restreamPiece)
		fn(s[:n], lp)
		lp = nil
		s = s[n:]
	}
}

// cutPiece returns the length of the next piece of s: at most size bytes,
// ending after the last space in that window when there is one, never in
// the middle of a UTF-8 sequence (a piece holds at least one character).
func cutPiece(s string, size int) int {
	if len(s) <= size {
		return len(s)
	}
	for i := size; i > size/2; i-- {
		if s[i-1] == ' ' || s[i-1] == '\n' {
			return i
		}
	}
	n := size
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if n == 0 { // a character longer than size
		_, n = utf8.DecodeRuneInString(s)
	}
	return n
}
