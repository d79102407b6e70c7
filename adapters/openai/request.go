package openai

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/tokenwise/tokenwise/middleware"
)

// PartMIMEType marks a [middleware.Part] that carries a content part the
// core does not model (a "file" part, or any future part type): its Data is
// the part's wire JSON, sent on verbatim.
const PartMIMEType = "application/vnd.tokenwise.openai-part+json"

// field names a top-level request member the core models.
type field uint8

const (
	fieldOther field = iota
	fieldModel
	fieldMessages
	fieldTools
	fieldToolChoice
	fieldParallelToolCalls
	fieldTemperature
	fieldTopP
	fieldSeed
	fieldStop
	fieldMaxTokens
	fieldMaxCompletionTokens
	fieldResponseFormat
	fieldN
	fieldStream
	fieldStreamOptions
	numFields
)

var fieldNames = [numFields]string{
	fieldModel:               "model",
	fieldMessages:            "messages",
	fieldTools:               "tools",
	fieldToolChoice:          "tool_choice",
	fieldParallelToolCalls:   "parallel_tool_calls",
	fieldTemperature:         "temperature",
	fieldTopP:                "top_p",
	fieldSeed:                "seed",
	fieldStop:                "stop",
	fieldMaxTokens:           "max_tokens",
	fieldMaxCompletionTokens: "max_completion_tokens",
	fieldResponseFormat:      "response_format",
	fieldN:                   "n",
	fieldStream:              "stream",
	fieldStreamOptions:       "stream_options",
}

// member is one top-level member of the request object.
type member struct {
	field   field
	neutral bool // middleware.NeutralField: not part of the cache key
	span         // `"name":value`
	value   span // value
}

// requestSnapshot is what a request body decoded to, with the byte spans
// needed to patch it.
type requestSnapshot struct {
	core         middleware.Request // as decoded, Extra included; Stream and Native nil
	members      []member
	present      [numFields]bool
	msgSpans     []span // the wire JSON of each core message
	toolSpans    []span // the wire JSON of each core tool
	otherTools   []span // the wire JSON of each tool the core does not model (no function tool)
	stream       bool   // "stream": true
	includeUsage bool   // "stream_options": {"include_usage": true}
	serviceTier  string // "service_tier", as knownTier reads it; "" for auto and default
	// partition is what of the request, outside its body, decides its
	// answer (Wire.CachePartition); "" for a body decoded alone.
	partition string
	// maxTokens and maxCompletion are the two output caps as given (0:
	// absent, null or not positive); core.MaxTokens is the larger.
	maxTokens, maxCompletion int64

	// msgKept and toolKept are the messages and tools (in body order)
	// whose wire JSON is a memo entry's raw copy (see Wire.SharedValues).
	msgKept, toolKept []keptValue

	// toolSpanArr and toolKeptArr hold toolSpans and toolKept when the
	// request has few tools, in the snapshot's own allocation.
	toolSpanArr [8]span
	toolKeptArr [8]keptValue
}

// ErrUnreadableRequest: a chat completion request body the adapter cannot
// decode (not JSON, not an object, or a member of the wrong type). A
// [Transport] refuses such a request before any layer or provider sees it.
var ErrUnreadableRequest = errors.New("tokenwise/openai: unreadable chat completion request")

// RequestError is a request body that cannot be decoded. It matches
// [ErrUnreadableRequest] and [middleware.ErrBadRequest] with errors.Is.
type RequestError struct {
	Param string // the top-level member at fault, e.g. "temperature"; "" for the body as a whole
	Err   error  // what is wrong with it
}

func (e *RequestError) Error() string {
	const prefix = "tokenwise/openai: "
	if e.Param == "" {
		return prefix + "the request body is not a valid chat completion request: " + e.Err.Error()
	}
	var pe *pathError
	if errors.As(e.Err, &pe) && pe == e.Err {
		// "invalid value for 'messages[3].content': ..."
		full := pe.Error()
		i := strings.Index(full, ": ")
		return prefix + "invalid value for '" + e.Param + full[:i] + "'" + full[i:]
	}
	return prefix + "invalid value for '" + e.Param + "': " + e.Err.Error()
}

// Is matches ErrUnreadableRequest and middleware.ErrBadRequest.
func (e *RequestError) Is(target error) bool {
	return target == ErrUnreadableRequest || target == middleware.ErrBadRequest
}

func (e *RequestError) Unwrap() error { return e.Err }

// decodeRequest decodes a chat completion request body. The returned
// request's Native is a *Wire holding body.
func decodeRequest(body []byte) (*middleware.Request, error) {
	return decodeRequestMemo(body, nil)
}

// decodeRequestMemo is decodeRequest taking the messages memo already
// holds from it, and keeping the others there (memo nil: none).
func decodeRequestMemo(body []byte, memo *msgMemo) (*middleware.Request, error) {
	r := getReader(body)
	defer putReader(r)
	r.memo = memo
	// The snapshot, the Wire and the returned request in one allocation,
	// the members in the snapshot's own array when there are few.
	d := &decoded{}
	s := &d.snap
	req := &s.core
	ok, err := r.open('{')
	if err != nil {
		return nil, &RequestError{Err: err}
	}
	if !ok {
		return nil, &RequestError{Err: errors.New("request body is null")}
	}
	s.members = d.members[:0]
	var extra []extraMember
	// With store: true the provider keeps the completion with the
	// request's metadata, by which the caller lists, evaluates and distils
	// its stored completions: metadata then changes the result, and is
	// part of the cache key (middleware.NeutralMember).
	stored, metadata := false, -1
	for r.more() {
		start := r.next()
		name, err := r.name()
		if err != nil {
			return nil, &RequestError{Err: err}
		}
		f := lookupField(name)
		if f != fieldOther && s.present[f] {
			// Parsers disagree on a member given twice (the last value,
			// the first, or, in encoding/json, objects merged): the
			// provider could read another request than the one policed
			// ("max_tokens":100 then null: a budget reserved for 100
			// output tokens, an answer of any length).
			return nil, &RequestError{Param: name, Err: errors.New("the member is given twice; each may appear once")}
		}
		if f == fieldOther {
			if k := foldsTo(name, policedNames); k != "" {
				return nil, &RequestError{Param: name, Err: caseVariant(k)}
			}
		}
		vstart := r.next()
		switch f {
		case fieldModel:
			req.Model, err = r.str()
		case fieldMessages:
			err = r.messages(s)
		case fieldTools:
			if err = r.tools(s); err == nil && len(s.otherTools) > 0 {
				// The tools the core does not model, in Extra as the
				// settings it does not model are ("tools": those tools).
				v := []byte{'['}
				for i, sp := range s.otherTools {
					if i > 0 {
						v = append(v, ',')
					}
					v = append(v, r.src[sp.start:sp.end]...)
				}
				extra = append(extra, extraMember{name, append(v, ']')})
			}
		case fieldToolChoice:
			obj := r.peek() == '{'
			req.ToolChoice, err = r.toolChoice()
			if err == nil && obj && (req.ToolChoice == "" || reservedChoice(req.ToolChoice)) {
				// A choice the core cannot name (or a function named like
				// a mode, "auto") still changes the answer.
				extra = append(extra, extraMember{name, r.src[vstart:r.offset():r.offset()]})
			}
		case fieldTemperature:
			req.Temperature, err = r.floatIn(&d.temperature)
		case fieldTopP:
			req.TopP, err = r.floatIn(&d.topP)
		case fieldSeed:
			var ok bool
			if d.seed, ok, err = r.int(); ok {
				req.Seed = &d.seed
			}
		case fieldStop:
			req.Stop, err = r.stop()
		case fieldMaxTokens, fieldMaxCompletionTokens:
			// Both may be given: a server may honour either (OpenAI
			// max_completion_tokens, many compatible servers max_tokens),
			// so the chain sees the larger, and a cap it lowers is
			// written into both (patchRequest).
			var n int64
			if n, _, err = r.int(); n > 0 {
				req.MaxTokens = max(req.MaxTokens, int(n))
				if f == fieldMaxTokens {
					s.maxTokens = n
				} else {
					s.maxCompletion = n
				}
			}
		case fieldResponseFormat:
			req.ResponseFormat, err = r.raw()
		case fieldN:
			var n int64
			n, _, err = r.int()
			req.N = int(n)
		case fieldStream:
			s.stream, err = r.bool()
		case fieldStreamOptions:
			err = r.details(func(name string) (bool, error) {
				if name != "include_usage" {
					return false, nil
				}
				v, err := r.bool()
				s.includeUsage = v
				return true, err
			})
		default:
			switch {
			case !middleware.NeutralField(name):
				var v []byte
				if v, err = r.raw(); v != nil {
					extra = append(extra, extraMember{name, v})
				}
				if name == "store" {
					stored = string(v) == "true"
				}
			case name == "service_tier":
				// Neutral to the answer, not to the bill: the budget and
				// the Meter read it (Wire.RequestedServiceTier).
				if s.serviceTier, err = r.tier(); s.serviceTier == "auto" || s.serviceTier == "default" {
					s.serviceTier = "" // the standard rates (see middleware.RequestServiceTier)
				}
			default:
				err = r.skip()
			}
		}
		if err != nil {
			return nil, &RequestError{Param: name, Err: err}
		}
		end := r.offset()
		s.present[f] = true
		if name == "metadata" {
			metadata = len(s.members)
		}
		s.members = append(s.members, member{field: f, neutral: middleware.NeutralField(name), span: span{start, end}, value: span{vstart, end}})
	}
	if metadata >= 0 {
		s.members[metadata].neutral = middleware.NeutralMember("metadata", stored)
	}
	if err := r.close(); err != nil {
		return nil, &RequestError{Err: err}
	}
	if err := r.end(); err != nil {
		return nil, &RequestError{Err: err}
	}
	req.Extra = canonicalExtra(extra)
	d.out = *req
	d.wire = Wire{JSON: body, req: s}
	d.out.Native = &d.wire
	return &d.out, nil
}

// decoded is what decodeRequest allocates for a request, in one piece.
type decoded struct {
	snap    requestSnapshot
	members [16]member
	wire    Wire
	out     middleware.Request
	// What out's Temperature, TopP and Seed point to.
	temperature, topP float64
	seed              int64
}

// policedNames are the top-level members the chain reads (fieldNames,
// and service_tier, which the budget reads); messageNames those of a
// message.
var (
	policedNames = append(fieldNames[fieldOther+1:numFields:numFields], "service_tier")
	messageNames = []string{"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "function_call", "refusal"}
)

// foldsTo returns the name of names that name matches without regard to
// case, as encoding/json matches member names (Unicode's simple folding:
// "ſtream" is "stream" there), when name is not that name itself; "" when
// none. A member in another case is read as the member itself by servers
// that match names so (Go's encoding/json among them: the last of the two
// wins): the provider could read another request than the one policed
// ("stream", "MAX_TOKENS":100000 after the max_tokens the budget set).
func foldsTo(name string, names []string) string {
	plain := true
	for i := 0; i < len(name) && plain; i++ {
		c := name[i]
		plain = c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9'
	}
	if plain {
		return "" // lower-case ASCII: equal, or unrelated
	}
	for _, n := range names {
		if strings.EqualFold(name, n) {
			return n
		}
	}
	return ""
}

// The members of a content part, a tool call, a tool and its function
// the chain reads (see foldsTo).
var (
	partNames     = []string{"type", "text", "image_url", "input_audio"}
	toolCallNames = []string{"id", "function", "custom"}
	toolNames     = []string{"type", "function"}
	functionNames = []string{"name", "description", "parameters", "strict"}
)

// skipOther skips the value of a member the chain does not read, refusing
// it (caseVariant) when it is named like one of names, which it reads, in
// another case: as a message's or the request's members are refused so.
func (r *reader) skipOther(name string, names []string) error {
	if k := foldsTo(name, names); k != "" {
		return caseVariant(k)
	}
	return r.skip()
}

// caseVariant is the error of a member named like the member k in
// another case.
func caseVariant(k string) error {
	return errors.New("the member is " + strconv.Quote(k) + " in another case, which some servers read as " + strconv.Quote(k) + ": give it once, as " + strconv.Quote(k))
}

func lookupField(name string) field {
	switch name {
	case "model":
		return fieldModel
	case "messages":
		return fieldMessages
	case "tools":
		return fieldTools
	case "tool_choice":
		return fieldToolChoice
	case "parallel_tool_calls":
		return fieldParallelToolCalls
	case "temperature":
		return fieldTemperature
	case "top_p":
		return fieldTopP
	case "seed":
		return fieldSeed
	case "stop":
		return fieldStop
	case "max_tokens":
		return fieldMaxTokens
	case "max_completion_tokens":
		return fieldMaxCompletionTokens
	case "response_format":
		return fieldResponseFormat
	case "n":
		return fieldN
	case "stream":
		return fieldStream
	case "stream_options":
		return fieldStreamOptions
	}
	return fieldOther
}

func (r *reader) messages(s *requestSnapshot) error {
	ok, err := r.open('[')
	if err != nil || !ok {
		return err
	}
	// Gathered in reused scratch space as where each message is (a memo
	// entry, or a message decoded here), then copied once into a slice of
	// their exact count: an agent's conversation grows every turn, and
	// appending to a slice sized for the previous turn would allocate it
	// twice; gathering the messages themselves first would copy each twice.
	sc := msgScratchPool.Get().(*msgScratch)
	defer sc.release()
	srcs, fresh, spans := sc.srcs[:0], sc.fresh[:0], sc.spans[:0]
	// Keep what append grew.
	defer func() { sc.srcs, sc.fresh, sc.spans = srcs, fresh, spans }()
	var prev *memoEntry // the memo's entry of the previous message
	for r.more() {
		start := r.next()
		first := len(srcs) == 0
		if r.memo != nil {
			// The message that followed the previous one last time (the
			// first message of the last request, for the first), when
			// these are its bytes: no scan, no hash, one comparison.
			if e := r.memo.next(kindMessage, prev, first); e != nil && bytes.HasPrefix(r.src[start:], e.raw) {
				r.pos = start + len(e.raw)
				srcs = append(srcs, msgSource{e: e})
				spans = append(spans, span{start, r.pos})
				prev = e
				continue
			}
		}
		var h uint64
		hashed := -1      // the end of the span h is the hash of
		admitted := false // h's value may be kept (seen before: msgMemo.admit)
		if r.memo != nil && r.peek() == '{' {
			if end, ok := skipQuick(r.src, start); ok {
				var e *memoEntry
				if e, h = r.memo.get(kindMessage, r.src[start:end]); e == nil {
					if admitted = r.memo.admit(h); admitted {
						e = r.memo.decodeNew(kindMessage, r, h, start, end) // a new message, decoded once
					}
				}
				if e != nil {
					r.pos = end
					srcs = append(srcs, msgSource{e: e})
					spans = append(spans, span{start, end})
					r.memo.link(kindMessage, prev, e, first)
					prev = e
					continue
				}
				hashed = end
			}
		}
		m, err := r.message()
		if err != nil {
			return &pathError{path: "[" + strconv.Itoa(len(srcs)) + "]", err: err}
		}
		if r.memo != nil {
			if hashed != r.offset() {
				h = r.memo.hash(kindMessage, r.src[start:r.offset()])
				admitted = r.memo.admit(h)
			}
			var e *memoEntry
			if admitted {
				e = r.memo.putMessage(h, r.src[start:r.offset()])
			}
			r.memo.link(kindMessage, prev, e, first)
			prev = e
			if e != nil { // kept: the memo's message, as m decoded
				srcs = append(srcs, msgSource{e: e})
				spans = append(spans, span{start, r.offset()})
				continue
			}
		}
		fresh = append(fresh, m)
		srcs = append(srcs, msgSource{fresh: len(fresh)})
		spans = append(spans, span{start, r.offset()})
	}
	msgs := make([]middleware.Message, len(srcs))
	shared := 0
	for i, src := range srcs {
		if src.e != nil {
			msgs[i] = src.e.msg
			if len(src.e.raw) >= minSharedValue {
				shared++
			}
		} else {
			msgs[i] = fresh[src.fresh-1]
		}
	}
	s.core.Messages = msgs
	s.msgSpans = append(make([]span, 0, len(spans)), spans...)
	if shared > 0 {
		s.msgKept = make([]keptValue, 0, shared)
		for i, src := range srcs {
			s.msgKept = keepValue(s.msgKept, spans[i].start, src.e)
		}
	}
	return r.close()
}

// keptValue is a value of the body at start whose bytes are e.raw.
type keptValue struct {
	start int
	e     *memoEntry
}

// minSharedValue is the length under which a kept value is not offered
// to the response cache as shared (Wire.SharedValues): a reference to it
// would cost about what a copy does.
const minSharedValue = 64

// keepValue appends to kept the value at start of entry e (nil: not kept),
// when it is worth sharing.
func keepValue(kept []keptValue, start int, e *memoEntry) []keptValue {
	if e != nil && len(e.raw) >= minSharedValue {
		kept = append(kept, keptValue{start, e})
	}
	return kept
}

// msgScratch is where reader.messages gathers where a request's messages
// are, and their spans, before allocating them.
type msgScratch struct {
	srcs  []msgSource
	fresh []middleware.Message // the messages decoded without the memo
	spans []span
}

// msgSource is where a message of a request is: a memo entry's message, or
// (e nil) fresh[fresh-1].
type msgSource struct {
	e     *memoEntry
	fresh int
}

var msgScratchPool = sync.Pool{New: func() any { return new(msgScratch) }}

// release forgets the messages gathered (the entries and strings they
// point to are not kept alive by the pool) and returns the scratch space
// to the pool, unless it grew too large to keep.
func (sc *msgScratch) release() {
	if cap(sc.srcs) > 1<<12 || cap(sc.fresh) > 1<<12 {
		return
	}
	clear(sc.srcs)
	clear(sc.fresh)
	sc.srcs, sc.fresh, sc.spans = sc.srcs[:0], sc.fresh[:0], sc.spans[:0]
	msgScratchPool.Put(sc)
}

func (r *reader) message() (middleware.Message, error) {
	var m middleware.Message
	ok, err := r.open('{')
	if err != nil || !ok {
		if err == nil {
			err = errors.New("message is null")
		}
		return m, err
	}
	for r.more() {
		name, err := r.name()
		if err != nil {
			return m, err
		}
		switch name {
		case "role":
			var role string
			role, err = r.str()
			m.Role = middleware.Role(role)
		case "content":
			// A member given twice counts once, the last time (as
			// encoding/json and the providers' parsers read it): a text
			// after parts, or parts after a text, replaces it.
			switch r.peek() {
			case '[':
				m.Content = ""
				m.Parts, err = r.parts()
			default:
				m.Parts = nil
				m.Content, err = r.str()
			}
		case "name":
			m.Name, err = r.str()
		case "tool_calls":
			m.ToolCalls, err = r.toolCalls()
		case "tool_call_id":
			m.ToolCallID, err = r.str()
		case "reasoning_content":
			m.Reasoning, err = r.str()
		case "function_call":
			// The legacy functions API's call: the model reads it as a
			// tool call, so it is counted and kept as one.
			m.FunctionCall = nil
			if r.peek() == 'n' {
				err = r.literal("null")
			} else {
				var c middleware.ToolCall
				if err = r.pair("name", &c.Name, "arguments", &c.Arguments); err == nil {
					m.FunctionCall = &c
				}
			}
		case "refusal":
			m.Refusal, err = r.str()
		default:
			if k := foldsTo(name, messageNames); k != "" {
				err = caseVariant(k)
			} else {
				err = r.skip()
			}
		}
		if err != nil {
			return m, &pathError{path: "." + name, err: err}
		}
	}
	return m, r.close()
}

// pathError locates an error inside a member: "[3]" then ".content" make
// "messages[3].content".
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string {
	p, err := e.path, e.err
	for {
		var inner *pathError
		if !errors.As(err, &inner) || inner != err {
			break
		}
		p += inner.path
		err = inner.err
	}
	return p + ": " + err.Error()
}

func (e *pathError) Unwrap() error { return e.err }

func (r *reader) parts() ([]middleware.Part, error) {
	if _, err := r.open('['); err != nil {
		return nil, err
	}
	parts := []middleware.Part{}
	for r.more() {
		p, err := r.part()
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, r.close()
}

func (r *reader) part() (middleware.Part, error) {
	var p middleware.Part
	start := r.next()
	ok, err := r.open('{')
	if err != nil || !ok {
		if err == nil {
			err = errors.New("content part is null")
		}
		return p, err
	}
	var audioData, audioFormat string
	for r.more() {
		name, err := r.name()
		if err != nil {
			return p, err
		}
		switch name {
		case "type":
			p.Type, err = r.str()
		case "text":
			p.Text, err = r.str()
		case "image_url":
			err = r.pair("url", &p.URL, "detail", &p.Detail)
		case "input_audio":
			err = r.pair("data", &audioData, "format", &audioFormat)
		default:
			err = r.skipOther(name, partNames)
		}
		if err != nil {
			return p, err
		}
	}
	if err := r.close(); err != nil {
		return p, err
	}
	switch p.Type {
	case "text":
		// Only its text: a stray member of another part type ("image_url"
		// on a text part) is not the core's to carry (the wire bytes of an
		// unchanged message keep it).
		return middleware.Part{Type: p.Type, Text: p.Text}, nil
	case "image_url":
		return middleware.Part{Type: p.Type, URL: p.URL, Detail: p.Detail}, nil
	case "input_audio":
		if data, err := base64.StdEncoding.DecodeString(audioData); err == nil {
			return middleware.Part{Type: p.Type, MIMEType: "audio/" + audioFormat, Data: data}, nil
		}
	}
	// A part the core does not model travels as its wire JSON.
	return middleware.Part{Type: p.Type, MIMEType: PartMIMEType, Data: r.src[start:r.offset():r.offset()]}, nil
}

// pair reads an object (or null) of which only two string members matter.
func (r *reader) pair(k1 string, v1 *string, k2 string, v2 *string) error {
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
		case k1:
			*v1, err = r.str()
		case k2:
			*v2, err = r.str()
		default:
			if k := foldsTo(name, []string{k1, k2}); k != "" {
				err = caseVariant(k)
			} else {
				err = r.skip()
			}
		}
		if err != nil {
			return err
		}
	}
	return r.close()
}

func (r *reader) toolCalls() ([]middleware.ToolCall, error) {
	ok, err := r.open('[')
	if err != nil || !ok {
		return nil, err
	}
	var calls []middleware.ToolCall
	for r.more() {
		var c middleware.ToolCall
		if ok, err := r.open('{'); err != nil || !ok {
			if err == nil {
				err = errors.New("tool call is null")
			}
			return nil, err
		}
		for r.more() {
			name, err := r.name()
			if err != nil {
				return nil, err
			}
			switch name {
			case "id":
				c.ID, err = r.str()
			case "function":
				err = r.pair("name", &c.Name, "arguments", &c.Arguments)
			case "custom":
				// A custom tool's call (GPT-5's free-form tools): its name and
				// input are the core's name and arguments.
				err = r.pair("name", &c.Name, "input", &c.Arguments)
			default:
				err = r.skipOther(name, toolCallNames)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := r.close(); err != nil {
			return nil, err
		}
		calls = append(calls, c)
	}
	return calls, r.close()
}

func (r *reader) tools(s *requestSnapshot) error {
	ok, err := r.open('[')
	if err != nil || !ok {
		return err
	}
	var tools []middleware.Tool
	spans, kept := s.toolSpanArr[:0], s.toolKeptArr[:0]
	if r.memo != nil {
		if n := int(r.memo.toolsHint.Load()); n > 0 {
			tools = make([]middleware.Tool, 0, n)
			if n > len(s.toolSpanArr) {
				spans, kept = make([]span, 0, n), make([]keptValue, 0, n)
			}
		}
	}
	var prev *memoEntry // the memo's entry of the previous tool
	for i := 0; r.more(); i++ {
		start := r.next()
		var t middleware.Tool
		var function bool
		var h uint64
		hashed, found, admitted := -1, false, false
		if r.memo != nil {
			// Predicted as messages are (see messages).
			if e := r.memo.next(kindTool, prev, i == 0); e != nil && bytes.HasPrefix(r.src[start:], e.raw) {
				r.pos = start + len(e.raw)
				t, function, found = *e.tool, e.function, true
				prev = e
			}
		}
		if !found && r.memo != nil && r.peek() == '{' {
			if end, ok := skipQuick(r.src, start); ok {
				var e *memoEntry
				if e, h = r.memo.get(kindTool, r.src[start:end]); e == nil {
					if admitted = r.memo.admit(h); admitted {
						e = r.memo.decodeNew(kindTool, r, h, start, end) // a new tool, decoded once
					}
				}
				if e != nil {
					r.pos = end
					t, function, found = *e.tool, e.function, true
					r.memo.link(kindTool, prev, e, i == 0)
					prev = e
				}
				hashed = end
			}
		}
		if !found {
			var err error
			if t, function, err = r.tool(); err != nil {
				return err
			}
			if r.memo != nil {
				if hashed != r.offset() {
					h = r.memo.hash(kindTool, r.src[start:r.offset()])
					admitted = r.memo.admit(h)
				}
				var e *memoEntry
				if admitted {
					t, e = r.memo.putTool(h, r.src[start:r.offset()], t, function)
				}
				r.memo.link(kindTool, prev, e, i == 0)
				prev = e
			}
		}
		if r.memo != nil && prev != nil && r.offset()-start == len(prev.raw) {
			kept = keepValue(kept, start, prev)
		}
		if !function {
			// The core models function tools only; the others (OpenAI's
			// custom tools, a provider's built-in ones) are kept, as
			// written, for Extra: they change the answer, and their
			// definitions are input the model reads (tokens counts them).
			s.otherTools = append(s.otherTools, span{start, r.offset()})
			continue
		}
		tools = append(tools, t)
		spans = append(spans, span{start, r.offset()})
	}
	if r.memo != nil {
		r.memo.toolsHint.Store(int32(min(len(tools), 1<<10)))
	}
	if len(tools) == 0 {
		tools, spans = nil, nil // as without a hint
	}
	if len(kept) == 0 {
		kept = nil
	}
	s.core.Tools, s.toolSpans, s.toolKept = tools, spans, kept
	return r.close()
}

// tool reads one tool, and reports whether it is a function tool.
func (r *reader) tool() (middleware.Tool, bool, error) {
	var t middleware.Tool
	var typ string
	if ok, err := r.open('{'); err != nil || !ok {
		if err == nil {
			err = errors.New("tool is null")
		}
		return t, false, err
	}
	for r.more() {
		name, err := r.name()
		if err != nil {
			return t, false, err
		}
		switch name {
		case "type":
			typ, err = r.str()
		case "function":
			err = r.function(&t)
		default:
			err = r.skipOther(name, toolNames)
		}
		if err != nil {
			return t, false, err
		}
	}
	if err := r.close(); err != nil {
		return t, false, err
	}
	return t, typ == "function", nil
}

func (r *reader) function(t *middleware.Tool) error {
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
		case "name":
			t.Name, err = r.str()
		case "description":
			t.Description, err = r.str()
		case "parameters":
			t.Parameters, err = r.raw()
		case "strict":
			t.Strict, err = r.bool()
		default:
			err = r.skipOther(name, functionNames)
		}
		if err != nil {
			return err
		}
	}
	return r.close()
}

// reservedChoice reports whether a tool choice names a mode rather than a
// function; a function of that name needs the wire form to tell them apart.
func reservedChoice(c string) bool { return c == "auto" || c == "none" || c == "required" }

// toolChoice reads "auto"/"none"/"required" or {"type":"function",
// "function":{"name":...}}; other forms read as "" (they pass through
// untouched unless a middleware sets ToolChoice).
func (r *reader) toolChoice() (string, error) {
	if r.peek() != '{' {
		return r.str()
	}
	var name string
	err := r.details(func(n string) (bool, error) {
		if n != "function" {
			return false, nil
		}
		return true, r.details(func(n string) (bool, error) {
			if n != "name" {
				return false, nil
			}
			var err error
			name, err = r.str()
			return true, err
		})
	})
	return name, err
}

func (r *reader) stop() ([]string, error) {
	switch r.peek() {
	case '"':
		s, err := r.str()
		return []string{s}, err
	case 'n':
		return nil, r.skip()
	}
	if _, err := r.open('['); err != nil {
		return nil, err
	}
	var out []string
	for r.more() {
		s, err := r.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, r.close()
}
