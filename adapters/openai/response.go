package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/middleware"
)

var (
	errNoChoices = errors.New("response has no choices")
	errNotObject = errors.New("not a JSON object")
)

// apiError is an OpenAI error object: {"message","type","param","code"}.
type apiError struct {
	Message, Type, Param, Code string
}

// decodeResponse decodes a non-streaming chat completion body: the first
// choice only, and the usage. A body that carries an error object returns
// it as *apiError. A body without choices is errNoChoices, with a
// response that holds only its id, model and usage when it has a usage.
func decodeResponse(body []byte) (*middleware.Response, *apiError, error) {
	r := getReader(body)
	defer putReader(r)
	// The response, its snapshot and its Wire in one allocation.
	d := &decodedResponse{}
	resp := &d.out
	resp.Message.Role = middleware.RoleAssistant
	ok, err := r.open('{')
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errNotObject
	}
	choices := 0
	var apiErr *apiError
	var tier string
	unfinished := false
	for r.more() {
		name, err := r.name()
		if err != nil {
			return nil, nil, err
		}
		switch name {
		case "id":
			resp.ID, err = r.str()
		case "model":
			resp.Model, err = r.str()
		case "choices":
			// The choice with index 0, else the first.
			found0, taken := false, false
			choices, err = r.choices(func() error {
				msg := middleware.Message{Role: middleware.RoleAssistant}
				var finish, refusal string
				index := int64(-1)
				err := r.details(func(name string) (bool, error) {
					var err error
					switch name {
					case "index":
						index, _, err = r.int()
					case "message":
						err = r.responseMessage(&msg, &refusal)
					case "finish_reason":
						finish, err = r.str()
					default:
						return false, nil
					}
					return true, err
				})
				if !middleware.FinishedNormally(finish) {
					unfinished = true // (a choice cut or filtered: the answer is not kept whole)
				}
				if err == nil && (index == 0 && !found0 || !taken) {
					resp.Message, resp.FinishReason, resp.Refusal, taken = msg, finish, refusal, true
					found0 = found0 || index == 0
				}
				return err
			})
		case "usage":
			resp.Usage, _, err = r.usage()
		case "service_tier":
			tier, err = r.tier()
		case "error":
			apiErr, err = r.apiError()
		default:
			err = r.skip()
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if !resp.Usage.IsZero() {
		resp.Usage.ServiceTier = tier // the tier the provider billed the tokens at
	}
	if err := r.close(); err != nil {
		return nil, nil, err
	}
	if err := r.end(); err != nil {
		return nil, nil, err
	}
	if apiErr != nil {
		return nil, apiErr, nil
	}
	if choices == 0 {
		if resp.Usage.IsZero() {
			return nil, nil, errNoChoices
		}
		// An answer without choices that counts what the provider
		// billed: the usage comes back with the error, to be charged.
		return &middleware.Response{ID: resp.ID, Model: resp.Model, Usage: resp.Usage}, nil, errNoChoices
	}
	d.snap = *resp
	d.snap.Message = resp.Message.Clone()
	d.wire = Wire{JSON: body, resp: &d.snap, unfinished: unfinished}
	resp.Native = &d.wire
	return resp, nil, nil
}

// decodedResponse is what decodeResponse allocates for a response, in one
// piece.
type decodedResponse struct {
	out, snap middleware.Response
	wire      Wire
}

// choices reads an array of choices, calling each for every one. It
// returns the number of choices.
func (r *reader) choices(each func() error) (int, error) {
	ok, err := r.open('[')
	if err != nil || !ok {
		return 0, err
	}
	n := 0
	for r.more() {
		if err = each(); err != nil {
			return n, err
		}
		n++
	}
	return n, r.close()
}

func (r *reader) responseMessage(m *middleware.Message, refusal *string) error {
	ok, err := r.open('{')
	if err != nil || !ok {
		return err
	}
	for r.more() {
		name, err := r.name()
		if err != nil {
			return err
		}
		switch name {
		case "content":
			if r.peek() == '[' {
				err = r.contentParts(m, refusal)
			} else {
				m.Content, err = r.str()
			}
		case "reasoning_content", "reasoning":
			var s string
			if s, err = r.str(); s != "" {
				m.Reasoning = s
			}
		case "refusal":
			*refusal, err = r.str()
		case "tool_calls":
			m.ToolCalls, err = r.toolCalls()
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	return r.close()
}

// contentParts reads an answer's content given as an array of parts, as
// some OpenAI-compatible servers send it (Mistral's reasoning models; the
// go-openai client reads it as MultiContent): the text of the "text" parts
// is the content, of the "thinking" parts (a string, or parts of their
// own) the reasoning, of the "refusal" parts the refusal; other parts
// (images, audio) are left out of the core answer.
func (r *reader) contentParts(m *middleware.Message, refusal *string) error {
	ok, err := r.open('[')
	if err != nil || !ok {
		return err
	}
	var text, thinking, refused strings.Builder
	for r.more() {
		var kind, t, thought, ref string
		err := r.details(func(name string) (bool, error) {
			var err error
			switch name {
			case "type":
				kind, err = r.str()
			case "text":
				t, err = r.str()
			case "refusal":
				ref, err = r.str()
			case "thinking":
				if r.peek() == '[' {
					var inner middleware.Message
					var innerRefusal string
					err = r.contentParts(&inner, &innerRefusal)
					thought = inner.Content
				} else {
					thought, err = r.str()
				}
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return err
		}
		switch kind {
		case "text", "output_text":
			text.WriteString(t)
		case "thinking":
			thinking.WriteString(thought)
		case "refusal":
			refused.WriteString(ref)
		}
	}
	if err := r.close(); err != nil {
		return err
	}
	m.Content = text.String()
	if thinking.Len() > 0 {
		m.Reasoning = thinking.String()
	}
	if refused.Len() > 0 {
		*refusal = refused.String()
	}
	return nil
}

// apiError reads an OpenAI error object (or a bare error string); nil
// when the member holds none: null (servers that send "error": null
// beside their choices), an empty string, an object with no message,
// type or code, or a value of another kind.
func (r *reader) apiError() (*apiError, error) {
	e := &apiError{}
	switch r.peek() {
	case '"':
		var err error
		if e.Message, err = r.str(); err != nil || e.Message == "" {
			return nil, err
		}
		return e, nil
	case '{':
	default:
		return nil, r.skip()
	}
	err := r.details(func(name string) (bool, error) {
		var err error
		switch name {
		case "message":
			if r.peek() == '[' { // some servers send a list of messages
				var msgs []string
				if msgs, err = r.stop(); err == nil && len(msgs) > 0 {
					e.Message = msgs[0]
					for _, m := range msgs[1:] {
						e.Message += ", " + m
					}
				}
				return true, err
			}
			e.Message, err = r.str()
		case "type":
			e.Type, err = r.str()
		case "param":
			e.Param, err = r.scalar()
		case "code":
			e.Code, err = r.scalar()
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil || e.Message == "" && e.Type == "" && e.Code == "" {
		return nil, err
	}
	return e, nil
}

// decodeError decodes an error response body; nil when it has no error
// object. A body that is an array (Gemini's OpenAI-compatible endpoint
// wraps its error object in one) is read as its first element.
func decodeError(body []byte) *apiError {
	if e := unwrapErrorArray(body); e != nil {
		body = e
	}
	r := getReader(body)
	defer putReader(r)
	if ok, err := r.open('{'); err != nil || !ok {
		return nil
	}
	for r.more() {
		name, err := r.name()
		if err != nil {
			return nil
		}
		if name == "error" {
			e, err := r.apiError()
			if err != nil {
				return nil
			}
			return e
		}
		if r.skip() != nil {
			return nil
		}
	}
	return nil
}

// chunkMeta is what a stream's chunks share: id, model and creation time.
type chunkMeta struct {
	id, model string
	created   int64
	tier      string // its service_tier, whether or not meta was wanted
	choices   int    // how many choices it carried
}

// decodeChunk decodes the data payload of one streamed event. With
// wantMeta it also returns the chunk's id, model and created time. A
// payload that carries an error object returns it as *apiError.
func decodeChunk(data []byte, wantMeta bool) (middleware.Chunk, chunkMeta, *apiError, error) {
	r := getReader(nil)
	defer putReader(r)
	return r.chunk(&Wire{}, data, wantMeta)
}

// chunk is decodeChunk with the reader and the Wire to fill supplied.
func (r *reader) chunk(w *Wire, data []byte, wantMeta bool) (middleware.Chunk, chunkMeta, *apiError, error) {
	var c middleware.Chunk
	var meta chunkMeta
	r.src, r.pos, r.stack, r.err = data, 0, r.stack[:0], nil
	*w = Wire{JSON: data}
	snap := &w.chunk
	ok, err := r.open('{')
	if err == nil && !ok {
		err = errNotObject
	}
	if err != nil {
		return c, meta, nil, err
	}
	choices := -1
	var apiErr *apiError
	var event apiError // vLLM's error event: {"object":"error","message",...}
	objErr := false
	var groq middleware.Usage // of x_groq.usage
	hasGroq := false
	var tier string // of service_tier
	taken := false  // a choice of index 0 filled c
	pc := r.plain
	if pc != nil {
		pc.ok, pc.choice, pc.tier, pc.fp, pc.usage = true, false, "", "", nil
	}
	for r.more() {
		start := r.next()
		name, err := r.name()
		if err != nil {
			return c, meta, nil, err
		}
		switch name {
		case "service_tier", "system_fingerprint":
			if pc == nil && name != "service_tier" {
				err = r.skip()
				break
			}
			// A string without escapes, as the merge would read it;
			// anything else goes to the merge.
			value := r.next()
			if err = r.skip(); err != nil {
				break
			}
			v := data[value:r.offset()]
			plain := len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0
			if name == "service_tier" && plain {
				tier = knownTier(bytesString(v[1 : len(v)-1]))
			}
			if pc == nil {
				break
			}
			switch {
			case string(v) == "null":
			case plain:
				if name == "service_tier" {
					pc.tier = bytesString(v[1 : len(v)-1])
				} else {
					pc.fp = bytesString(v[1 : len(v)-1])
				}
			default:
				pc.ok = false
			}
		case "id":
			if wantMeta {
				meta.id, err = r.str()
			} else {
				err = r.skip()
			}
		case "model":
			if wantMeta {
				meta.model, err = r.str()
			} else {
				err = r.skip()
			}
		case "created":
			if wantMeta {
				meta.created, err = r.created()
			} else {
				err = r.skip()
			}
		case "choices":
			choices = 0
			ok, err = r.open('[')
			for err == nil && ok && r.more() {
				choices++
				err = r.chunkChoice(&c, &taken)
			}
			if err == nil && ok {
				err = r.close()
			}
		case "usage":
			var u middleware.Usage
			var has bool
			value := r.next()
			if u, has, err = r.usage(); has {
				c.Usage = new(u)
			}
			if pc != nil && err == nil {
				if v := data[value:r.offset():r.offset()]; string(v) != "null" {
					pc.usage = v
				}
			}
			// The span to cut for callers that did not ask for usage.
			m := memberSpan(data, start, r.offset())
			snap.cutStart, snap.cutEnd = int32(m.start), int32(m.end)
		case "error":
			if apiErr, err = r.apiError(); err == nil && apiErr == nil {
				// No error ("error": null beside the choices): cut for
				// the caller, as go-openai takes a chunk that begins
				// with an "error" member for an error, whatever it holds.
				m := memberSpan(data, start, r.offset())
				snap.errStart, snap.errEnd = int32(m.start), int32(m.end)
			}
		case "object":
			if r.peek() == '"' {
				var o string
				o, err = r.str()
				objErr = o == "error"
			} else {
				err = r.skip()
			}
		case "message", "type":
			// An error event's (a chunk's are not read).
			if r.peek() != '"' {
				err = r.skip()
			} else if name == "message" {
				event.Message, err = r.str()
			} else {
				event.Type, err = r.str()
			}
		case "code":
			event.Code, err = r.scalar()
		case "x_groq":
			// Groq's streams without stream_options.include_usage report
			// the call's usage here, in the last chunk: the provider's
			// own count, taken when the chunk has no usage of its own. A
			// vendor's member: what is not a usage in it is skipped, never
			// an error.
			value := r.next()
			if err = r.skip(); err == nil {
				groq, hasGroq = groqUsage(data[value:r.offset()])
			}
		default:
			err = r.skip()
		}
		if err != nil {
			return c, meta, nil, err
		}
	}
	if err := r.close(); err != nil {
		return c, meta, nil, err
	}
	if err := r.end(); err != nil {
		return c, meta, nil, err
	}
	if apiErr == nil && objErr && choices < 0 {
		// vLLM's error event (and its ErrorResponse of older versions),
		// sent mid-stream with HTTP 200 before its [DONE]: the provider's
		// error, never an event of nothing to skip.
		if event.Message == "" {
			event.Message = "the stream sent an error event"
		}
		apiErr = &event
	}
	if apiErr != nil {
		return c, meta, apiErr, nil
	}
	if hasGroq && c.Usage == nil {
		c.Usage = new(groq)
	}
	if c.Usage != nil && tier != "" {
		c.Usage.ServiceTier = tier // the tier the provider billed the tokens at
	}
	meta.tier, meta.choices = tier, choices
	if choices < 0 && c.Usage == nil {
		return c, meta, nil, errNoChoices
	}
	if pc != nil {
		pc.choice = choices == 1 && taken
		pc.ok = pc.ok && choices <= 1
	}
	snap.usageOnly = choices <= 0 && c.Usage != nil
	snap.c = c
	w.isChunk = true
	c.Native = w
	return c, meta, nil, nil
}

// created reads a chunk's created time: a number, or a string of one
// (which openai-go and the other SDKs read); another value, or a string
// of another text, is no time (0), never an error: the chunk's content
// does not depend on it.
func (r *reader) created() (int64, error) {
	switch r.peek() {
	case '"':
		s, err := r.str()
		n, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if perr != nil || n < 0 {
			n = 0
		}
		return n, err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'n':
		n, _, err := r.int()
		return max(n, 0), err
	}
	return 0, r.skip()
}

// tier reads a service_tier member: a string, else nothing (a vendor's
// other value is not an error). The tier outlives the body (it is billed
// from run records): a known one is a constant, another a copy.
func (r *reader) tier() (string, error) {
	if r.peek() != '"' {
		return "", r.skip()
	}
	s, err := r.string()
	if err != nil {
		return "", err
	}
	return knownTier(s), nil
}

// knownTier returns the tier named s without keeping s's bytes: a
// constant for OpenAI's names, else a copy ("" for a name longer than any
// real one). An answer's "default" stays: it says the standard rates
// billed it, whatever the request asked for.
func knownTier(s string) string {
	switch s {
	case "default":
		return "default"
	case "auto":
		return "auto"
	case "flex":
		return "flex"
	case "priority":
		return "priority"
	case "scale":
		return "scale"
	}
	if len(s) > 64 {
		return ""
	}
	return strings.Clone(s)
}

// groqUsage reads the usage member of Groq's x_groq object (raw, any JSON
// value); false when there is none or it is not a valid usage.
func groqUsage(raw []byte) (middleware.Usage, bool) {
	r := getReader(raw)
	defer putReader(r)
	var u middleware.Usage
	var has bool
	err := r.details(func(name string) (bool, error) {
		if name != "usage" {
			return false, nil
		}
		var err error
		u, has, err = r.usage()
		return true, err
	})
	return u, has && err == nil
}

// lastNonSpace returns the index of the last non-whitespace byte before
// i, or -1.
func lastNonSpace(b []byte, i int) int {
	for i--; i >= 0; i-- {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return -1
}

// memberSpan returns the span of the object member of data from start
// to end with one adjacent comma: the one before it, or after it when it
// is first. Cut out, it leaves the object valid (see appendCut).
func memberSpan(data []byte, start, end int) span {
	if i := lastNonSpace(data, start); i >= 0 && data[i] == ',' {
		return span{i, end}
	}
	if k := skipSpace(data, end); k < len(data) && data[k] == ',' {
		return span{start, k + 1}
	}
	return span{start, end}
}

// appendCut appends data without the member spans a and b (see
// memberSpan; a span whose end is 0 is none), two members of one object.
func appendCut(dst, data []byte, a, b span) []byte {
	if a.end == 0 {
		a, b = b, a
	}
	if b.end == 0 {
		return append(append(dst, data[:a.start]...), data[a.end:]...)
	}
	if b.start < a.start {
		a, b = b, a
	}
	if b.start < a.end {
		// The first member and the one after it, which took the same
		// comma: with them goes the comma after the second, if any.
		a.end = b.end
		if k := skipSpace(data, a.end); k < len(data) && data[k] == ',' {
			a.end = k + 1
		}
		return append(append(dst, data[:a.start]...), data[a.end:]...)
	}
	dst = append(dst, data[:a.start]...)
	dst = append(dst, data[a.end:b.start]...)
	return append(dst, data[b.end:]...)
}

// skipSpace returns the index of the first non-whitespace byte from i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// chunkChoice reads one choice of a chunk; the first choice with index 0
// fills c, the others go to r.others when collectOthers is set (else they
// are skipped).
func (r *reader) chunkChoice(c *middleware.Chunk, taken *bool) error {
	var (
		content, reasoning, refusal, finish string
		calls                               []middleware.ToolCallDelta
		index                               int64
	)
	pc := r.plain
	ok, err := r.open('{')
	if err != nil || !ok {
		if pc != nil {
			pc.ok = false // a null choice: the merge makes an empty choice 0 of it
		}
		return err
	}
	reasonings := 0
	for r.more() {
		name, err := r.name()
		if err != nil {
			return err
		}
		switch name {
		case "index":
			index, _, err = r.int()
		case "finish_reason":
			null := r.peek() == 'n'
			finish, err = r.str()
			if pc != nil && !null && finish == "" {
				pc.ok = false // an empty finish reason the merge keeps
			}
		case "logprobs":
			if pc != nil && r.peek() != 'n' {
				pc.ok = false
			}
			err = r.skip()
		case "delta":
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
				case "reasoning_content", "reasoning":
					var s string
					if s, err = r.str(); s != "" {
						reasoning = s
					}
					reasonings++
				case "refusal":
					refusal, err = r.str()
				case "tool_calls":
					calls, err = r.toolCallDeltas()
				case "function_call": // the legacy functions API's call, which the merge reads
					if pc != nil && r.peek() != 'n' {
						pc.ok = false
					}
					err = r.skip()
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
	if pc != nil && (index != 0 || *taken || reasonings > 1 || len(calls) > 0) {
		pc.ok = false // what the merge reads beyond the chunk of choice 0
	}
	if err := r.close(); err != nil {
		return err
	}
	if index != 0 || *taken {
		if r.collectOthers {
			if r.others == nil {
				r.others = new(otherChoices)
			}
			r.others.add(index, middleware.Chunk{Content: content, Reasoning: reasoning, Refusal: refusal, FinishReason: finish, ToolCalls: calls})
		}
		return nil
	}
	*taken = true
	c.Content, c.Reasoning, c.Refusal, c.FinishReason, c.ToolCalls = content, reasoning, refusal, finish, calls
	return nil
}

func (r *reader) toolCallDeltas() ([]middleware.ToolCallDelta, error) {
	ok, err := r.open('[')
	if err != nil || !ok {
		return nil, err
	}
	var out []middleware.ToolCallDelta
	for r.more() {
		d := middleware.ToolCallDelta{Index: len(out)}
		if ok, err := r.open('{'); err != nil || !ok {
			if err == nil {
				err = errors.New("tool call delta is null")
			}
			return nil, err
		}
		for r.more() {
			name, err := r.name()
			if err != nil {
				return nil, err
			}
			switch name {
			case "index":
				var n int64
				n, _, err = r.int()
				d.Index = int(n)
			case "id":
				d.ID, err = r.str()
			case "function":
				err = r.pair("name", &d.Name, "arguments", &d.Arguments)
			case "custom": // a custom tool's call: its name and input
				err = r.pair("name", &d.Name, "input", &d.Arguments)
			default:
				err = r.skip()
			}
			if err != nil {
				return nil, err
			}
		}
		if err := r.close(); err != nil {
			return nil, err
		}
		if d.Index < 0 || d.Index >= middleware.MaxToolCalls {
			// The Accumulator would drop it: an error, never a shorter answer.
			return nil, errors.New("tool call index out of range")
		}
		out = append(out, d)
	}
	return out, r.close()
}

// decodeMeta reads the id, model and created time of a chunk or response.
func decodeMeta(data []byte) chunkMeta {
	var m chunkMeta
	r := getReader(data)
	defer putReader(r)
	if ok, err := r.open('{'); err != nil || !ok {
		return m
	}
	for r.more() {
		name, err := r.name()
		if err != nil {
			return m
		}
		switch name {
		case "id":
			m.id, err = r.str()
		case "model":
			m.model, err = r.str()
		case "created":
			m.created, _, err = r.int()
		default:
			err = r.skip()
		}
		if err != nil {
			return m
		}
	}
	return m
}

// sameResponse reports whether a (returned by the chain) still equals the
// snapshot s taken when the provider's JSON was decoded.
func sameResponse(a, s *middleware.Response) bool {
	return a.ID == s.ID && a.Model == s.Model && a.FinishReason == s.FinishReason && a.Usage == s.Usage &&
		a.Refusal == s.Refusal && a.Message.Equal(&s.Message)
}

func sameChunk(a *middleware.Chunk, s *middleware.Chunk) bool {
	return a.Content == s.Content && a.Reasoning == s.Reasoning && a.Refusal == s.Refusal && a.FinishReason == s.FinishReason &&
		slices.Equal(a.ToolCalls, s.ToolCalls) && samePtr(a.Usage, s.Usage)
}

// appendResponse encodes resp as a chat.completion object.
func appendResponse(dst []byte, resp *middleware.Response, meta chunkMeta) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, meta.id)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = appendInt(dst, meta.created)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, meta.model)
	if t := resp.Usage.ServiceTier; t != "" && !resp.Usage.IsZero() {
		dst = append(dst, `,"service_tier":`...)
		dst = appendString(dst, t)
	}
	dst = append(dst, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	m := &resp.Message
	if m.Content == "" && len(m.ToolCalls) > 0 {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, m.Text())
	}
	if m.Reasoning != "" {
		dst = append(dst, `,"reasoning_content":`...)
		dst = appendString(dst, m.Reasoning)
	}
	if len(m.ToolCalls) > 0 {
		dst = append(dst, `,"tool_calls":[`...)
		for i, c := range m.ToolCalls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, c.ID)
			dst = append(dst, `,"type":"function","function":{"name":`...)
			dst = appendString(dst, c.Name)
			dst = append(dst, `,"arguments":`...)
			dst = appendString(dst, c.Arguments)
			dst = append(dst, `}}`...)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"refusal":`...)
	dst = appendNullable(dst, resp.Refusal)
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	dst = appendString(dst, finishOr(resp))
	dst = append(dst, `}],"usage":`...)
	dst = appendUsage(dst, resp.Usage)
	return append(dst, '}')
}

func finishOr(resp *middleware.Response) string {
	if resp.FinishReason != "" {
		return resp.FinishReason
	}
	if len(resp.Message.ToolCalls) > 0 {
		return middleware.FinishToolCalls
	}
	return middleware.FinishStop
}

// appendChunkJSON encodes c as a chat.completion.chunk with one choice.
func appendChunkJSON(dst []byte, c *middleware.Chunk, meta chunkMeta, role bool) []byte {
	dst = appendChunkHead(dst, meta)
	dst = append(dst, `[{"index":0,"delta":{`...)
	if role {
		dst = append(dst, `"role":"assistant"`...)
	}
	if c.Content != "" {
		dst = appendKey(dst, "content")
		dst = appendString(dst, c.Content)
	}
	if c.Reasoning != "" {
		dst = appendKey(dst, "reasoning_content")
		dst = appendString(dst, c.Reasoning)
	}
	if c.Refusal != "" {
		dst = appendKey(dst, "refusal")
		dst = appendString(dst, c.Refusal)
	}
	if len(c.ToolCalls) > 0 {
		dst = appendKey(dst, "tool_calls")
		dst = append(dst, '[')
		for i, d := range c.ToolCalls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"index":`...)
			dst = appendInt(dst, int64(d.Index))
			if d.ID != "" {
				dst = append(dst, `,"id":`...)
				dst = appendString(dst, d.ID)
				dst = append(dst, `,"type":"function"`...)
			}
			dst = append(dst, `,"function":{`...)
			if d.Name != "" {
				dst = append(dst, `"name":`...)
				dst = appendString(dst, d.Name)
				dst = append(dst, ',')
			}
			dst = append(dst, `"arguments":`...)
			dst = appendString(dst, d.Arguments)
			dst = append(dst, `}}`...)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	if c.FinishReason != "" {
		dst = appendString(dst, c.FinishReason)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, `}]}`...)
}

// appendUsageChunkJSON encodes the include_usage chunk: no choices, usage.
func appendUsageChunkJSON(dst []byte, u middleware.Usage, meta chunkMeta) []byte {
	dst = appendChunkHead(dst, meta)
	dst = append(dst, `[],"usage":`...)
	dst = appendUsage(dst, u)
	return append(dst, '}')
}

func appendChunkHead(dst []byte, meta chunkMeta) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, meta.id)
	dst = append(dst, `,"object":"chat.completion.chunk","created":`...)
	dst = appendInt(dst, meta.created)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, meta.model)
	return append(dst, `,"choices":`...)
}

// appendErrorBody encodes an OpenAI error body.
func appendErrorBody(dst []byte, e *middleware.ProviderError, param string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	msg := e.Message
	if msg == "" {
		msg = e.Error()
	}
	dst = appendString(dst, msg)
	dst = append(dst, `,"type":`...)
	typ := e.Type
	if typ == "" { // every SDK reads a type
		typ = httperr.ErrorType(e.StatusCode)
	}
	dst = appendString(dst, typ)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, param)
	dst = append(dst, `,"code":`...)
	dst = appendNullable(dst, e.Code)
	return append(dst, "}}\n"...)
}

func appendNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
}

// retryAfterHeaders sets Retry-After (whole seconds, rounded up) and
// retry-after-ms for a wait.
func retryAfterHeaders(h http.Header, d time.Duration) {
	if d <= 0 {
		return
	}
	h.Set("Retry-After-Ms", strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10))
	h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
}

// maxChoiceIndex is the largest choice index otherChoices keeps apart
// (OpenAI's n is at most 128).
const maxChoiceIndex = 128

// otherChoices assembles the choices of a stream after its first (n > 1),
// which its core chunks do not carry: a partial response lists them
// (middleware.Response.OtherChoices), so that the estimate of a cut
// stream's output counts every choice.
type otherChoices struct {
	// byIndex[i-1] is choice i's (pointers: an Accumulator must not move);
	// odd takes the fragments of any other index (out of range, or a
	// second choice 0 in one chunk), counted as one more choice.
	byIndex []*middleware.Accumulator
	odd     *middleware.Accumulator
}

func (o *otherChoices) add(index int64, c middleware.Chunk) {
	var a **middleware.Accumulator
	if index >= 1 && index <= maxChoiceIndex {
		if int(index) > len(o.byIndex) {
			o.byIndex = append(o.byIndex, make([]*middleware.Accumulator, int(index)-len(o.byIndex))...)
		}
		a = &o.byIndex[index-1]
	} else {
		a = &o.odd
	}
	if *a == nil {
		*a = new(middleware.Accumulator)
	}
	(*a).Add(c)
}

// choices returns the choices assembled so far, by index (nil: none).
func (o *otherChoices) choices() []middleware.Choice {
	if o == nil {
		return nil
	}
	var out []middleware.Choice
	for _, a := range append(o.byIndex[:len(o.byIndex):len(o.byIndex)], o.odd) {
		if a == nil {
			continue
		}
		r := a.Response()
		out = append(out, middleware.Choice{Message: r.Message, Refusal: r.Refusal, FinishReason: r.FinishReason})
	}
	return out
}

// unwrapErrorArray returns the first element of body when body is a JSON
// array whose first element is an object with an "error" member, as
// Gemini's OpenAI-compatible endpoint sends its errors
// ([{"error":{"code":400,"message":...}}]); nil otherwise.
func unwrapErrorArray(body []byte) []byte {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil
	}
	var elems []json.RawMessage
	if json.Unmarshal(body, &elems) != nil || len(elems) == 0 {
		return nil
	}
	var first map[string]json.RawMessage
	if json.Unmarshal(elems[0], &first) != nil || first["error"] == nil {
		return nil
	}
	return bytes.TrimSpace(elems[0])
}
