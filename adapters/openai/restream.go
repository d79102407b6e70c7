package openai

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unsafe"

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
		FunctionCall     *struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function_call"` // the legacy functions API's call
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
	Custom *struct { // a custom tool's call
		Name  string `json:"name"`
		Input string `json:"input"`
	} `json:"custom"`
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
		Role             string       `json:"role,omitempty"`
		Content          *string      `json:"content,omitempty"`
		ReasoningContent string       `json:"reasoning_content,omitempty"`
		Refusal          *string      `json:"refusal,omitempty"`
		ToolCalls        []sseCall    `json:"tool_calls,omitempty"`
		FunctionCall     *sseFunction `json:"function_call,omitempty"`
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
		extra    []byte      // the call's other members (see mergedCall), on its first delta
		custom   bool        // Function is a custom tool's name and input
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
		name, args, custom := tc.Function.Name, tc.Function.Arguments, tc.Custom != nil
		if custom {
			name, args = tc.Custom.Name, tc.Custom.Input
		}
		add(sseDelta{ToolCalls: []sseCall{{Index: i, ID: tc.ID, Type: tc.Type, Function: sseFunction{Name: name},
			extra: callExtra(raw), custom: custom}}}, nil)
		for s := args; s != ""; {
			n := middleware.NextPiece(s, restreamPiece)
			add(sseDelta{ToolCalls: []sseCall{{Index: i, Function: sseFunction{Arguments: s[:n]}, custom: custom}}}, nil)
			s = s[n:]
		}
	}
	if fc := c.Message.FunctionCall; fc != nil {
		add(sseDelta{FunctionCall: &sseFunction{Name: fc.Name}}, nil)
		for s := fc.Arguments; s != ""; {
			n := middleware.NextPiece(s, restreamPiece)
			add(sseDelta{FunctionCall: &sseFunction{Arguments: s[:n]}}, nil)
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

// MarshalJSON writes the call as its fields say, with its other members.
func (c sseCall) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 64+len(c.ID)+len(c.Function.Name)+len(c.Function.Arguments)+len(c.extra)), `{"index":`...)
	b = appendInt(b, int64(c.Index))
	if c.ID != "" {
		b = appendString(append(b, `,"id":`...), c.ID)
	}
	if c.Type != "" {
		b = appendString(append(b, `,"type":`...), c.Type)
	}
	// A custom tool's call streams its input as OpenAI streams it.
	b = appendCallFunction(b, c.custom, false, c.Function.Name, c.Function.Arguments)
	if len(c.extra) > 0 {
		b = append(append(b, ','), c.extra...)
	}
	return append(b, '}'), nil
}

// appendCallFunction appends a tool call's function member — or a custom
// tool call's custom member — with its name (when it has one, or always)
// and its arguments (a custom call's input).
func appendCallFunction(dst []byte, custom, alwaysName bool, name, args string) []byte {
	member, argsName := `,"function":{`, `"arguments":`
	if custom {
		member, argsName = `,"custom":{`, `"input":`
	}
	dst = append(dst, member...)
	if name != "" || alwaysName {
		dst = append(appendString(append(dst, `"name":`...), name), ',')
	}
	return append(appendString(append(dst, argsName...), args), '}')
}

// appendMember appends a member, name and raw value, to members separated
// by commas (a tool call's other members, see mergedCall).
func appendMember(dst []byte, name string, raw []byte) []byte {
	if len(dst) > 0 {
		dst = append(dst, ',')
	}
	return append(append(appendString(dst, name), ':'), raw...)
}

// callExtra returns the members of a stored tool call other than those
// a delta names (index, id, type, function), as written, separated by
// commas; nil when it has none or cannot be read.
func callExtra(raw []byte) []byte {
	r := getReader(raw)
	defer putReader(r)
	ok, err := r.open('{')
	if err != nil || !ok {
		return nil
	}
	var extra []byte
	for r.more() {
		name, err := r.name()
		if err != nil {
			return nil
		}
		start := r.next()
		if err := r.skip(); err != nil {
			return nil
		}
		switch name {
		case "index", "id", "type", "function", "custom":
			continue
		}
		extra = appendMember(extra, name, r.src[start:r.offset()])
	}
	return extra
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
//
// The provider merges as it reads (merged, mergeErr, size); chunks is the
// other way to give it, the payloads themselves.
type streamedBody struct {
	chunks   [][]byte
	merged   *merger
	mergeErr error
	size     int // the payloads' bytes
}

var (
	_ middleware.NativeMarshaler = (*streamedBody)(nil)
	_ middleware.NativeFinisher  = (*streamedBody)(nil)
)

// AllFinished implements middleware.NativeFinisher: whether every choice
// the stream carried finished normally (stop, tool calls), not only the
// first; false when its chunks do not merge, or when tool calls came
// without their index (merger.unindexed).
func (s *streamedBody) AllFinished() bool {
	m := s.merged
	if m == nil {
		var err error
		if m, _, err = mergerOf(s.chunks); err != nil {
			return false
		}
	} else if s.mergeErr != nil {
		return false
	}
	if m.unindexed {
		return false
	}
	for i := range m.choices {
		if c := &m.choices[i]; !c.hasFinish || !middleware.FinishedNormally(c.finish) {
			return false
		}
	}
	return true
}

// MarshalNative implements middleware.NativeMarshaler: the merged body,
// or not ok when a chunk does not decode.
func (s *streamedBody) MarshalNative() (string, []byte, bool) {
	if s.merged != nil {
		if s.mergeErr != nil {
			return "", nil, false
		}
		return NativeFormat, s.merged.appendBody(make([]byte, 0, s.size/4+256)), true
	}
	b, err := mergeChunks(s.chunks)
	if err != nil {
		return "", nil, false
	}
	return NativeFormat, b, true
}

// plainChunk is what reader.chunk, when the reader has one, finds out for
// a stream's merge: whether the chunk is plain (at most one choice, of
// index 0, without logprobs, tool calls or anything else the merge reads
// that middleware.Chunk does not carry), in which case the merge takes the
// decoded chunk (merger.plain) rather than reading the payload again, and
// the members of a plain chunk that Chunk lacks.
type plainChunk struct {
	ok       bool   // the chunk is plain
	choice   bool   // it has a choice (of index 0)
	tier, fp string // its service_tier and system_fingerprint
	usage    []byte // its usage member's value; nil for null or none
}

// plain merges a plain chunk (see plainChunk) as chunk would its payload:
// c is the decoded chunk, meta what the decoder read of its id, model and
// created time (nothing once the stream's are known, which the merger
// then has too).
func (m *merger) plain(c *middleware.Chunk, meta chunkMeta, p *plainChunk) {
	m.id, m.created, m.model = cmp.Or(m.id, meta.id), cmp.Or(m.created, meta.created), cmp.Or(m.model, meta.model)
	m.serviceTier, m.fingerprint = cmp.Or(m.serviceTier, p.tier), cmp.Or(m.fingerprint, p.fp)
	if p.usage != nil {
		m.usage = p.usage
	}
	if !p.choice {
		return
	}
	if len(m.choices) == 0 {
		m.choices = append(m.choices, mergedChoice{})
	}
	ch := &m.choices[0]
	ch.content = append(ch.content, c.Content...)
	ch.refusal = append(ch.refusal, c.Refusal...)
	ch.reasoning = append(ch.reasoning, c.Reasoning...)
	if c.FinishReason != "" {
		ch.finish, ch.hasFinish = c.FinishReason, true
	}
}

// mergeChunks merges the data payloads of a chat completion stream into
// the body of the same answer unstreamed. It reads the payloads with the
// package's own reader (no reflection, strings not copied until they are
// written out): a cache pays it once per stored streamed answer.
func mergeChunks(chunks [][]byte) ([]byte, error) {
	m, size, err := mergerOf(chunks)
	if err != nil {
		return nil, err
	}
	return m.appendBody(make([]byte, 0, size/4+256)), nil
}

// mergerOf merges chunks (their data payloads), and returns their bytes.
func mergerOf(chunks [][]byte) (*merger, int, error) {
	m := new(merger)
	r := getReader(nil)
	defer putReader(r)
	size := 0
	for _, data := range chunks {
		r.src, r.pos, r.stack, r.err = data, 0, r.stack[:0], nil
		if err := m.chunk(r); err != nil {
			return nil, 0, err
		}
		size += len(data)
	}
	return m, size, nil
}

// merger accumulates the chunks of a stream for mergeChunks.
type merger struct {
	id, model, serviceTier, fingerprint string
	created                             int64
	usage                               []byte
	choices                             []mergedChoice
	// unindexed: a choice streamed tool calls after the first of a list
	// without their index (Mistral, Gemini's compatibility layer), which
	// the transport passed on as they came (go-openai hands them on with
	// a nil Index, as without tokenwise) and a hit would restream indexed:
	// such an answer is not kept (AllFinished).
	unindexed bool
}

type mergedChoice struct {
	content, refusal, reasoning []byte
	// The legacy function call (the functions API): its name and
	// arguments; hasFunction when a delta had one.
	fnName, fnArgs       []byte
	hasFunction          bool
	calls                []mergedCall // in arrival order
	slot                 []int32      // by wire index, the position in calls + 1 of its latest call
	logprobs             bool
	lpContent, lpRefusal [][]byte
	finish               string
	hasFinish            bool
}

type mergedCall struct {
	index      int
	id, typ    string
	name, args []byte // a custom tool's call: its name and input
	custom     bool   // the call's name and arguments came as a custom tool's
	// extra are the call's other members (Gemini's extra_content, whose
	// thought signature the client must send back), as the provider
	// wrote them: members separated by commas, without braces.
	extra []byte
}

// maxMergedIndex bounds the choice and tool call indexes a merge accepts.
const maxMergedIndex = 1 << 10

var (
	errChoiceIndex = errors.New("tokenwise/openai: choice index out of range")
	errCallIndex   = errors.New("tokenwise/openai: tool call index out of range")
)

// chunk reads one payload: the first id, created time, model, service tier
// and system fingerprint seen win, the last usage wins, deltas append.
func (m *merger) chunk(r *reader) error {
	ok, err := r.open('{')
	if err == nil && !ok {
		err = errNotObject
	}
	if err != nil {
		return err
	}
	var id, model, tier, fp string
	var created int64
	for r.more() {
		name, err := r.name()
		if err != nil {
			return err
		}
		switch name {
		case "id":
			id, err = r.str()
		case "model":
			model, err = r.str()
		case "created":
			created, _, err = r.int()
		case "service_tier":
			tier, err = r.str()
		case "system_fingerprint":
			fp, err = r.str()
		case "usage":
			var u []byte
			if u, err = r.raw(); len(u) > 0 {
				m.usage = u
			}
		case "choices":
			var ok bool
			ok, err = r.open('[')
			for err == nil && ok && r.more() {
				err = m.choice(r)
			}
			if err == nil && ok {
				err = r.close()
			}
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	if err := r.close(); err != nil {
		return err
	}
	if err := r.end(); err != nil {
		return err
	}
	m.id, m.created, m.model = cmp.Or(m.id, id), cmp.Or(m.created, created), cmp.Or(m.model, model)
	m.serviceTier, m.fingerprint = cmp.Or(m.serviceTier, tier), cmp.Or(m.fingerprint, fp)
	return nil
}

// choice reads one choice of a chunk into the merged choice of its index.
func (m *merger) choice(r *reader) error {
	var (
		index                                   int64
		content, refusal, reasoning, reasoning2 string
		fnName, fnArgs                          string
		hasFunction                             bool
		calls                                   []mergedCallDelta
		logprobs                                bool
		lpContent, lpRefusal                    [][]byte
		finish                                  string
		hasFinish                               bool
		callsUnindexed                          bool
	)
	ok, err := r.open('{')
	if err != nil {
		return err
	}
	for ok && r.more() {
		name, err := r.name()
		if err != nil {
			return err
		}
		switch name {
		case "index":
			index, _, err = r.int()
		case "finish_reason":
			if r.peek() == 'n' {
				err = r.literal("null")
			} else {
				finish, err = r.str()
				hasFinish = err == nil
			}
		case "logprobs":
			var ok bool
			if ok, err = r.open('{'); err != nil || !ok {
				break
			}
			logprobs = true
			for err == nil && r.more() {
				if name, err = r.name(); err != nil {
					break
				}
				switch name {
				case "content":
					lpContent, err = r.rawElements(lpContent[:0])
				case "refusal":
					lpRefusal, err = r.rawElements(lpRefusal[:0])
				default:
					err = r.skip()
				}
			}
			if err == nil {
				err = r.close()
			}
		case "delta":
			var ok bool
			if ok, err = r.open('{'); err != nil || !ok {
				break
			}
			for err == nil && r.more() {
				if name, err = r.name(); err != nil {
					break
				}
				switch name {
				case "content":
					content, err = r.str()
				case "refusal":
					refusal, err = r.str()
				case "reasoning_content":
					reasoning, err = r.str()
				case "reasoning":
					reasoning2, err = r.str()
				case "tool_calls":
					var unindexed bool
					calls, unindexed, err = r.mergeCallDeltas(calls[:0])
					callsUnindexed = callsUnindexed || unindexed
				case "function_call":
					hasFunction = hasFunction || r.peek() != 'n'
					err = r.pair("name", &fnName, "arguments", &fnArgs)
				default:
					err = r.skip()
				}
			}
			if err == nil {
				err = r.close()
			}
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	if ok { // a null choice merges as an empty one at index 0
		if err := r.close(); err != nil {
			return err
		}
	}
	if index < 0 || index > maxMergedIndex {
		return errChoiceIndex
	}
	if callsUnindexed {
		m.unindexed = true
	}
	for len(m.choices) <= int(index) {
		m.choices = append(m.choices, mergedChoice{})
	}
	ch := &m.choices[index]
	ch.content = append(ch.content, content...)
	ch.refusal = append(ch.refusal, refusal...)
	ch.reasoning = append(append(ch.reasoning, reasoning...), reasoning2...)
	if hasFunction {
		ch.hasFunction = true
		ch.fnName = append(ch.fnName, fnName...)
		ch.fnArgs = append(ch.fnArgs, fnArgs...)
	}
	for _, d := range calls {
		// As middleware.Accumulator merges them: a delta continues the
		// latest call of its index, but a new ID at a used index is a new
		// call (Gemini sends each call whole at index 0, or with none).
		if d.index >= len(ch.slot) {
			ch.slot = append(ch.slot, make([]int32, d.index+1-len(ch.slot))...)
		}
		var c *mergedCall
		if s := ch.slot[d.index]; s > 0 {
			c = &ch.calls[s-1]
			if d.id != "" && c.id != "" && d.id != c.id {
				c = nil
			}
		}
		if c == nil {
			if len(ch.calls) >= middleware.MaxToolCalls {
				return errCallIndex
			}
			ch.calls = append(ch.calls, mergedCall{index: d.index})
			ch.slot[d.index] = int32(len(ch.calls))
			c = &ch.calls[len(ch.calls)-1]
		}
		c.id, c.typ = cmp.Or(c.id, d.id), cmp.Or(c.typ, d.typ)
		c.custom = c.custom || d.custom
		c.name = append(c.name, d.name...)
		c.args = append(c.args, d.args...)
		if len(d.extra) > 0 {
			if len(c.extra) > 0 {
				c.extra = append(c.extra, ',')
			}
			c.extra = append(c.extra, d.extra...)
		}
	}
	if logprobs {
		ch.logprobs = true
		ch.lpContent = append(ch.lpContent, lpContent...)
		ch.lpRefusal = append(ch.lpRefusal, lpRefusal...)
	}
	if hasFinish {
		ch.finish, ch.hasFinish = finish, true
	}
	return nil
}

type mergedCallDelta struct {
	index               int
	id, typ, name, args string
	custom              bool   // name and args are a custom tool's name and input
	extra               []byte // its other members (see mergedCall)
}

// mergeCallDeltas reads a delta's tool_calls (null: none). A delta
// without an index has its place in the array (as the decoder reads it);
// unindexed reports a delta after the first without one.
func (r *reader) mergeCallDeltas(dst []mergedCallDelta) (_ []mergedCallDelta, unindexed bool, err error) {
	ok, err := r.open('[')
	if err != nil || !ok {
		return dst, false, err
	}
	for pos := 0; r.more(); pos++ {
		d := mergedCallDelta{index: pos}
		indexed := false
		ok, err := r.open('{')
		if err != nil {
			return dst, false, err
		}
		for ok && r.more() {
			name, err := r.name()
			if err != nil {
				return dst, false, err
			}
			switch name {
			case "index":
				var n int64
				n, indexed, err = r.int()
				if n < 0 || n > maxMergedIndex {
					return dst, false, errCallIndex
				}
				d.index = int(n)
			case "id":
				d.id, err = r.str()
			case "type":
				d.typ, err = r.str()
			case "function":
				err = r.pair("name", &d.name, "arguments", &d.args)
			case "custom":
				d.custom = true
				err = r.pair("name", &d.name, "input", &d.args)
			default:
				start := r.next()
				if err = r.skip(); err == nil {
					d.extra = appendMember(d.extra, name, r.src[start:r.offset()])
				}
			}
			if err != nil {
				return dst, false, err
			}
		}
		if ok {
			if err := r.close(); err != nil {
				return dst, false, err
			}
		}
		if !indexed && pos > 0 {
			unindexed = true
		}
		dst = append(dst, d)
	}
	return dst, unindexed, r.close()
}

// rawElements reads an array (null: none) and appends its elements' bytes.
func (r *reader) rawElements(dst [][]byte) ([][]byte, error) {
	ok, err := r.open('[')
	if err != nil || !ok {
		return dst, err
	}
	for r.more() {
		start := r.next()
		if err := r.skip(); err != nil {
			return dst, err
		}
		dst = append(dst, r.src[start:r.pos:r.pos])
	}
	return dst, r.close()
}

// appendBody appends the merged chat completion body.
func (m *merger) appendBody(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, m.id)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = appendInt(dst, m.created)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, m.model)
	if m.serviceTier != "" {
		dst = append(dst, `,"service_tier":`...)
		dst = appendString(dst, m.serviceTier)
	}
	if m.fingerprint != "" {
		dst = append(dst, `,"system_fingerprint":`...)
		dst = appendString(dst, m.fingerprint)
	}
	dst = append(dst, `,"choices":`...)
	if len(m.choices) == 0 {
		dst = append(dst, "null"...)
	}
	for i := range m.choices {
		ch := &m.choices[i]
		// By index; calls sharing an index in arrival order (as
		// middleware.Accumulator orders them).
		calls := ch.calls
		byIndex := func(a, b mergedCall) int { return a.index - b.index }
		if !slices.IsSortedFunc(calls, byIndex) {
			calls = slices.Clone(calls)
			slices.SortStableFunc(calls, byIndex)
		}
		if i == 0 {
			dst = append(dst, '[')
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = appendInt(dst, int64(i))
		dst = append(dst, `,"message":{"role":"assistant","content":`...)
		if len(ch.content) > 0 || len(calls) == 0 && len(ch.refusal) == 0 && !ch.hasFunction {
			dst = appendString(dst, bytesString(ch.content))
		} else {
			dst = append(dst, "null"...)
		}
		if len(ch.reasoning) > 0 {
			dst = append(dst, `,"reasoning_content":`...)
			dst = appendString(dst, bytesString(ch.reasoning))
		}
		dst = append(dst, `,"refusal":`...)
		if len(ch.refusal) > 0 {
			dst = appendString(dst, bytesString(ch.refusal))
		} else {
			dst = append(dst, "null"...)
		}
		for j := range calls {
			c := &calls[j]
			if j == 0 {
				dst = append(dst, `,"tool_calls":[`...)
			} else {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, c.id)
			dst = append(dst, `,"type":`...)
			typ := "function"
			if c.custom {
				typ = "custom"
			}
			dst = appendString(dst, cmp.Or(c.typ, typ))
			dst = appendCallFunction(dst, c.custom, c.custom, bytesString(c.name), bytesString(c.args))
			if len(c.extra) > 0 {
				dst = append(append(dst, ','), c.extra...)
			}
			dst = append(dst, '}')
			if j == len(calls)-1 {
				dst = append(dst, ']')
			}
		}
		if ch.hasFunction {
			dst = append(dst, `,"function_call":{"name":`...)
			dst = appendString(dst, bytesString(ch.fnName))
			dst = append(dst, `,"arguments":`...)
			dst = appendString(dst, bytesString(ch.fnArgs))
			dst = append(dst, '}')
		}
		dst = append(dst, `},"logprobs":`...)
		if ch.logprobs {
			dst = append(dst, '{')
			dst = appendRaws(dst, "content", ch.lpContent)
			dst = appendRaws(dst, "refusal", ch.lpRefusal)
			dst = append(dst, '}')
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, `,"finish_reason":`...)
		if ch.hasFinish {
			dst = appendString(dst, ch.finish)
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, '}')
		if i == len(m.choices)-1 {
			dst = append(dst, ']')
		}
	}
	if len(m.usage) > 0 {
		dst = append(dst, `,"usage":`...)
		dst = append(dst, m.usage...)
	}
	return append(dst, '}')
}

// appendRaws appends "key":[raw,...] unless raws is empty.
func appendRaws(dst []byte, key string, raws [][]byte) []byte {
	if len(raws) == 0 {
		return dst
	}
	dst = appendKey(dst, key)
	dst = append(dst, '[')
	for i, b := range raws {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, b...)
	}
	return append(dst, ']')
}

// bytesString returns b's bytes as a string without copying them; b must
// not change while the string is used.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
