package openai

import (
	"bytes"
	"encoding/base64"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/tokenwise/tokenwise/middleware"
)

// encodeOptions are the provider's encoding choices.
type encodeOptions struct {
	legacyMaxTokens bool // inject max_tokens instead of max_completion_tokens
	// noStreamUsage sends a stream's stream_options as the caller wrote
	// them, without asking for usage: for a server that refuses the
	// member (see Provider.Handle).
	noStreamUsage bool
}

// encodeRequest returns the wire JSON to send upstream for req. When req
// came from decodeRequest, unchanged fields (and every field the core does
// not model) are copied from the original body, and an unchanged
// non-streaming request is the original body itself.
func encodeRequest(req *middleware.Request, o encodeOptions) []byte {
	return encodeRequestBody(req, o).bytes()
}

// encodeRequestBody is encodeRequest without joining the pieces: a
// request from decodeRequest whose fields a layer changed (a router's
// model, a budget's max_tokens) is the original body with the changed
// members spliced in, as slices of the original and the new values, so
// that sending it copies the body once, into the connection.
func encodeRequestBody(req *middleware.Request, o encodeOptions) wireBody {
	if w, ok := req.Native.(*Wire); ok && w.req != nil {
		return patchRequest(w, req, o)
	}
	return wholeBody(appendRequest(nil, req, o))
}

// wireBody is a request body in pieces, sent one after the other.
type wireBody struct {
	whole []byte   // the body in one piece, when parts is nil
	parts [][]byte // else its pieces
	n     int      // the total length
}

// wholeBody returns the body b in one piece (with no slice of pieces to
// allocate).
func wholeBody(b []byte) wireBody { return wireBody{whole: b, n: len(b)} }

// bytes returns the body in one slice: the only piece itself, or a copy.
func (b wireBody) bytes() []byte {
	switch {
	case b.parts == nil:
		return b.whole
	case len(b.parts) == 1:
		return b.parts[0]
	}
	out := make([]byte, 0, b.n)
	for _, p := range b.parts {
		out = append(out, p...)
	}
	return out
}

// joinBelow is the length under which a body in pieces is sent joined,
// as one slice: net/http writes the headers and a body it knows to be in
// memory (a *bytes.Reader) in one write when they fit its buffer, but
// flushes the headers of any other body first, one more write system call
// (and TCP segment) per request for the price of a copy this small.
const joinBelow = 3 << 10

// headerRoom is what a request's headers are assumed to take of a
// connection's write buffer.
const headerRoom = 4 << 10

// joinLimit is the length under which a body in pieces is sent joined
// through base: joinBelow, or, when base is an *http.Transport with a
// larger write buffer (the default base transport's is 64 KiB), what its
// buffer holds besides the headers. Sent in pieces, such a body would
// take a write for the headers, then net/http would copy it to the
// connection through a buffer of up to 32 KiB it allocates per request;
// joined, headers and body go out in one write, for one copy.
func joinLimit(base http.RoundTripper) int {
	if t, ok := base.(*http.Transport); ok && t.WriteBufferSize-headerRoom > joinBelow {
		return t.WriteBufferSize - headerRoom
	}
	return joinBelow
}

// reader returns a reader of the body, joined when shorter than join.
func (b wireBody) reader(join int) io.Reader { return b.readerIn(join, nil) }

// readerIn is reader reading a body it joins or that is one piece with
// br, reset (a new bytes.Reader when br is nil).
func (b wireBody) readerIn(join int, br *bytes.Reader) io.Reader {
	if len(b.parts) <= 1 || b.n < join {
		if br == nil {
			return bytes.NewReader(b.bytes())
		}
		br.Reset(b.bytes())
		return br
	}
	return &piecesReader{parts: b.parts}
}

// piecesReader reads pieces one after the other (io.MultiReader without
// a reader per piece). It never modifies the pieces: GetBody reads them
// again.
type piecesReader struct {
	parts [][]byte
	i     int // the piece being read
	off   int // in it
}

func (r *piecesReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.i < len(r.parts) {
		c := copy(p[n:], r.parts[r.i][r.off:])
		n += c
		if r.off += c; r.off == len(r.parts[r.i]) {
			r.i, r.off = r.i+1, 0
		}
	}
	if n == 0 && r.i >= len(r.parts) {
		return 0, io.EOF
	}
	return n, nil
}

// WriteTo writes the remaining pieces to w. net/http does not use it to
// send a request body: HTTP/1.1 copies the body through an
// io.LimitReader of its Content-Length (net.TCPConn.ReadFrom then copies
// it with a buffer of min(32 KiB, the length) allocated per request, as
// it does for the raw client's own body past the first 4 KiB), HTTP/2
// reads it into buffers of its own; only readers such as io.Copy see it.
func (r *piecesReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.i < len(r.parts) {
		n, err := w.Write(r.parts[r.i][r.off:])
		total += int64(n)
		r.off += n
		if err != nil {
			return total, err
		}
		r.i, r.off = r.i+1, 0
	}
	return total, nil
}

// patch holds the new value of a top-level member: nil removes it.
type patch struct {
	set   [numFields]bool
	value [numFields][]byte
}

func (p *patch) put(f field, v []byte) { p.set[f], p.value[f] = true, v }

// injectsMaxCompletion reports whether req, encoded with o, carries a
// max_completion_tokens its caller did not write: the output cap a layer
// set on a request that had none (a budget's).
func injectsMaxCompletion(req *middleware.Request, o encodeOptions) bool {
	if o.legacyMaxTokens || req.MaxTokens <= 0 {
		return false
	}
	if w, ok := req.Native.(*Wire); ok && w.req != nil {
		s := w.req
		return !s.present[fieldMaxTokens] && !s.present[fieldMaxCompletionTokens] && req.MaxTokens != s.core.MaxTokens
	}
	return true
}

func patchRequest(w *Wire, req *middleware.Request, o encodeOptions) wireBody {
	s := w.req
	orig := &s.core
	var p patch
	changed := false
	mark := func(f field, v []byte) { p.put(f, v); changed = true }

	if req.Model != orig.Model {
		mark(fieldModel, appendString(nil, req.Model))
	}
	if !middleware.EqualMessages(req.Messages, orig.Messages) {
		mark(fieldMessages, appendMessagesReusing(nil, req.Messages, orig.Messages, s.msgSpans, w.JSON))
	}
	toolsChanged := !middleware.EqualTools(req.Tools, orig.Tools)
	if toolsChanged {
		if len(req.Tools) == 0 {
			mark(fieldTools, nil)
			// OpenAI refuses these without tools.
			if s.present[fieldParallelToolCalls] {
				mark(fieldParallelToolCalls, nil)
			}
			if req.ToolChoice == orig.ToolChoice && s.present[fieldToolChoice] {
				mark(fieldToolChoice, nil)
			}
		} else {
			mark(fieldTools, appendToolsReusing(nil, req.Tools, orig.Tools, s.toolSpans, w.JSON))
		}
	}
	if req.ToolChoice != orig.ToolChoice {
		mark(fieldToolChoice, appendToolChoice(nil, req.ToolChoice))
	}
	if !sameFloat(req.Temperature, orig.Temperature) {
		mark(fieldTemperature, appendFloat(nil, req.Temperature))
	}
	if !sameFloat(req.TopP, orig.TopP) {
		mark(fieldTopP, appendFloat(nil, req.TopP))
	}
	if !samePtr(req.Seed, orig.Seed) {
		var v []byte
		if req.Seed != nil {
			v = appendInt(nil, *req.Seed)
		}
		mark(fieldSeed, v)
	}
	if !slices.Equal(req.Stop, orig.Stop) {
		mark(fieldStop, appendStop(nil, req.Stop))
	}
	if req.MaxTokens != orig.MaxTokens {
		var v []byte
		if req.MaxTokens > 0 {
			v = appendInt(nil, int64(req.MaxTokens))
		}
		switch {
		case s.present[fieldMaxTokens] || s.present[fieldMaxCompletionTokens]:
			for _, c := range [2]struct {
				f     field
				given int64
			}{{fieldMaxTokens, s.maxTokens}, {fieldMaxCompletionTokens, s.maxCompletion}} {
				// The field that held the cap the chain saw (the larger,
				// when both are given) gets the new one; the other keeps
				// its smaller cap unless the new one is lower still.
				if s.present[c.f] && (req.MaxTokens <= 0 || c.given <= 0 || c.given >= int64(orig.MaxTokens) || c.given > int64(req.MaxTokens)) {
					mark(c.f, v)
				}
			}
		case o.legacyMaxTokens:
			mark(fieldMaxTokens, v)
		default:
			mark(fieldMaxCompletionTokens, v)
		}
	}
	if !bytes.Equal(req.ResponseFormat, orig.ResponseFormat) {
		mark(fieldResponseFormat, slices.Clip(req.ResponseFormat))
	}
	if req.N != orig.N {
		var v []byte
		if req.N > 0 {
			v = appendInt(nil, int64(req.N))
		}
		mark(fieldN, v)
	}
	if req.Stream != nil {
		// Always ask for usage, so that budgets see it.
		if !s.stream {
			mark(fieldStream, []byte("true"))
		}
		if !s.includeUsage && !o.noStreamUsage {
			mark(fieldStreamOptions, streamOptionsWithUsage(w.JSON, s))
		}
	} else if s.stream {
		mark(fieldStream, []byte("false"))
		if s.present[fieldStreamOptions] {
			mark(fieldStreamOptions, nil)
		}
	}
	if !changed {
		return wholeBody(w.JSON)
	}
	return splicePatch(w.JSON, s, &p)
}

var (
	openBrace  = []byte{'{'}
	closeBrace = []byte{'}'}
	comma      = []byte{','}
)

// splicePatch returns the original object with p applied, in pieces:
// members keep their order and bytes unless patched, runs of unchanged
// members are one slice of src (separators and whitespace between them
// included); new members are appended.
func splicePatch(src []byte, s *requestSnapshot, p *patch) wireBody {
	b := wireBody{parts: make([][]byte, 0, 8)}
	add := func(piece []byte) {
		b.parts = append(b.parts, piece)
		b.n += len(piece)
	}
	add(openBrace)
	emitted := false
	runStart, runEnd := -1, -1
	flush := func() {
		if runStart < 0 {
			return
		}
		if emitted {
			add(comma)
		}
		add(src[runStart:runEnd])
		emitted, runStart = true, -1
	}
	for _, m := range s.members {
		if m.field != fieldOther && p.set[m.field] {
			flush()
			v := p.value[m.field]
			if v == nil {
				continue
			}
			if emitted {
				add(comma)
			}
			add(src[m.start:m.value.start]) // the original name and colon
			add(v)
			emitted = true
			continue
		}
		if runStart < 0 {
			runStart = m.start
		}
		runEnd = m.end
	}
	flush()
	for f := fieldModel; f < numFields; f++ {
		if p.set[f] && p.value[f] != nil && !s.present[f] {
			if emitted {
				add(comma)
			}
			add(memberNames[f])
			add(p.value[f])
			emitted = true
		}
	}
	add(closeBrace)
	return b
}

// memberNames are the names of the fields as a member starts: "name":.
var memberNames = func() (names [numFields][]byte) {
	for f, n := range fieldNames {
		name := []byte(`"` + n + `":`)
		names[f] = name[:len(name):len(name)] // shared: never appended to
	}
	return names
}()

// streamOptionsWithUsage returns the request's stream_options object with
// include_usage set to true, keeping its other members.
func streamOptionsWithUsage(src []byte, s *requestSnapshot) []byte {
	const on = `"include_usage":true`
	for _, m := range s.members {
		if m.field != fieldStreamOptions {
			continue
		}
		v := src[m.value.start:m.value.end]
		if len(v) == 0 || v[0] != '{' {
			break
		}
		// Rebuild the object without include_usage, then add it.
		out := []byte{'{'}
		r := getReader(v)
		defer putReader(r)
		if ok, err := r.open('{'); err != nil || !ok {
			break
		}
		for r.more() {
			start := r.next()
			name, err := r.name()
			if err != nil {
				return []byte("{" + on + "}")
			}
			isUsage := name == "include_usage"
			if err := r.skip(); err != nil {
				return []byte("{" + on + "}")
			}
			if !isUsage {
				if len(out) > 1 {
					out = append(out, ',')
				}
				out = append(out, v[start:r.offset()]...)
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, on...)
		return append(out, '}')
	}
	return []byte("{" + on + "}")
}

// appendRequest encodes req from scratch.
func appendRequest(dst []byte, req *middleware.Request, o encodeOptions) []byte {
	dst = append(dst, '{')
	dst = appendKey(dst, "model")
	dst = appendString(dst, req.Model)
	dst = appendKey(dst, "messages")
	dst = appendMessagesReusing(dst, req.Messages, nil, nil, nil)
	if len(req.Tools) > 0 {
		dst = appendKey(dst, "tools")
		dst = appendToolsReusing(dst, req.Tools, nil, nil, nil)
	}
	if v := appendToolChoice(nil, req.ToolChoice); v != nil {
		dst = appendKey(dst, "tool_choice")
		dst = append(dst, v...)
	}
	if v := appendFloat(nil, req.Temperature); v != nil {
		dst = appendKey(dst, "temperature")
		dst = append(dst, v...)
	}
	if v := appendFloat(nil, req.TopP); v != nil {
		dst = appendKey(dst, "top_p")
		dst = append(dst, v...)
	}
	if req.Seed != nil {
		dst = appendKey(dst, "seed")
		dst = appendInt(dst, *req.Seed)
	}
	if len(req.Stop) > 0 {
		dst = appendKey(dst, "stop")
		dst = appendStop(dst, req.Stop)
	}
	if req.MaxTokens > 0 {
		if o.legacyMaxTokens {
			dst = appendKey(dst, "max_tokens")
		} else {
			dst = appendKey(dst, "max_completion_tokens")
		}
		dst = appendInt(dst, int64(req.MaxTokens))
	}
	if len(req.ResponseFormat) > 0 {
		dst = appendKey(dst, "response_format")
		dst = append(dst, req.ResponseFormat...)
	}
	if req.N > 0 {
		dst = appendKey(dst, "n")
		dst = appendInt(dst, int64(req.N))
	}
	if req.Stream != nil {
		dst = appendKey(dst, "stream")
		dst = append(dst, "true"...)
		if !o.noStreamUsage {
			dst = appendKey(dst, "stream_options")
			dst = append(dst, `{"include_usage":true}`...)
		}
	}
	return append(dst, '}')
}

// appendMessagesReusing encodes msgs as a JSON array; a message equal to
// one of orig (searched in order) is copied from its original bytes.
func appendMessagesReusing(dst []byte, msgs, orig []middleware.Message, spans []span, src []byte) []byte {
	dst = append(dst, '[')
	cursor := 0
	for i := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		m := &msgs[i]
		found := false
		for j := cursor; j < len(orig); j++ {
			if m.Equal(&orig[j]) {
				dst = append(dst, src[spans[j].start:spans[j].end]...)
				cursor, found = j+1, true
				break
			}
		}
		if !found {
			dst = appendMessage(dst, m)
		}
	}
	return append(dst, ']')
}

func appendMessage(dst []byte, m *middleware.Message) []byte {
	dst = append(dst, `{"role":`...)
	dst = appendString(dst, string(m.Role))
	dst = appendKey(dst, "content")
	switch {
	case m.Parts != nil:
		dst = append(dst, '[')
		for i := range m.Parts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendPart(dst, &m.Parts[i])
		}
		dst = append(dst, ']')
	case m.Content == "" && (len(m.ToolCalls) > 0 || m.FunctionCall != nil || m.Refusal != "") && m.Role == middleware.RoleAssistant:
		dst = append(dst, "null"...)
	default:
		dst = appendString(dst, m.Content)
	}
	if m.Name != "" {
		dst = appendKey(dst, "name")
		dst = appendString(dst, m.Name)
	}
	if len(m.ToolCalls) > 0 {
		dst = appendKey(dst, "tool_calls")
		dst = append(dst, '[')
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
	if m.FunctionCall != nil {
		dst = appendKey(dst, "function_call")
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, m.FunctionCall.Name)
		dst = append(dst, `,"arguments":`...)
		dst = appendString(dst, m.FunctionCall.Arguments)
		dst = append(dst, '}')
	}
	if m.Refusal != "" {
		dst = appendKey(dst, "refusal")
		dst = appendString(dst, m.Refusal)
	}
	if m.ToolCallID != "" {
		dst = appendKey(dst, "tool_call_id")
		dst = appendString(dst, m.ToolCallID)
	}
	// Reasoning is not sent back: providers that return reasoning_content
	// (DeepSeek) reject it in input messages.
	return append(dst, '}')
}

func appendPart(dst []byte, p *middleware.Part) []byte {
	// Duplicate names are allowed: the part was valid JSON to the reader
	// that kept it, and is sent on as it came.
	if p.MIMEType == PartMIMEType && jsontext.Value(p.Data).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
		return append(dst, p.Data...)
	}
	switch {
	case p.Type == "text":
		dst = append(dst, `{"type":"text","text":`...)
		dst = appendString(dst, p.Text)
		return append(dst, '}')
	case p.Type == "input_audio" || (p.URL == "" && strings.HasPrefix(p.MIMEType, "audio/")):
		dst = append(dst, `{"type":"input_audio","input_audio":{"data":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, p.Data)
		dst = append(dst, `","format":`...)
		dst = appendString(dst, strings.TrimPrefix(p.MIMEType, "audio/"))
		return append(dst, `}}`...)
	case p.Type == "image_url" || p.URL != "" || strings.HasPrefix(p.MIMEType, "image/"):
		dst = append(dst, `{"type":"image_url","image_url":{`...)
		switch {
		case p.URL != "":
			dst = append(dst, `"url":`...)
			dst = appendString(dst, p.URL)
		case p.Data != nil || p.MIMEType != "":
			dst = append(dst, `"url":`...)
			dst = appendDataURL(dst, p.MIMEType, p.Data)
		default:
			// A part that came without an image is sent on without one
			// (the provider's 400 says so), never with an invented URL.
		}
		if p.Detail != "" {
			if dst[len(dst)-1] != '{' {
				dst = append(dst, ',')
			}
			dst = append(dst, `"detail":`...)
			dst = appendString(dst, p.Detail)
		}
		return append(dst, `}}`...)
	case p.Data != nil:
		dst = append(dst, `{"type":"file","file":{"file_data":`...)
		dst = appendDataURL(dst, p.MIMEType, p.Data)
		return append(dst, `}}`...)
	}
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, p.Type)
	if p.Text != "" {
		dst = append(dst, `,"text":`...)
		dst = appendString(dst, p.Text)
	}
	return append(dst, '}')
}

func appendDataURL(dst []byte, mime string, data []byte) []byte {
	q := appendString(nil, mime)
	dst = append(dst, `"data:`...)
	dst = append(dst, q[1:len(q)-1]...)
	dst = append(dst, ";base64,"...)
	dst = base64.StdEncoding.AppendEncode(dst, data)
	return append(dst, '"')
}

func appendToolsReusing(dst []byte, tools, orig []middleware.Tool, spans []span, src []byte) []byte {
	dst = append(dst, '[')
	cursor := 0
	for i := range tools {
		if i > 0 {
			dst = append(dst, ',')
		}
		t := &tools[i]
		found := false
		for j := cursor; j < len(orig); j++ {
			if t.Equal(&orig[j]) {
				dst = append(dst, src[spans[j].start:spans[j].end]...)
				cursor, found = j+1, true
				break
			}
		}
		if found {
			continue
		}
		dst = append(dst, `{"type":"function","function":{"name":`...)
		dst = appendString(dst, t.Name)
		if t.Description != "" {
			dst = append(dst, `,"description":`...)
			dst = appendString(dst, t.Description)
		}
		if len(t.Parameters) > 0 {
			dst = append(dst, `,"parameters":`...)
			dst = append(dst, t.Parameters...)
		}
		if t.Strict {
			dst = append(dst, `,"strict":true`...)
		}
		dst = append(dst, `}}`...)
	}
	return append(dst, ']')
}

// appendToolChoice encodes a core tool choice; "" encodes as nil (absent).
func appendToolChoice(dst []byte, choice string) []byte {
	switch choice {
	case "":
		return nil
	case "auto", "none", "required":
		return appendString(dst, choice)
	}
	dst = append(dst, `{"type":"function","function":{"name":`...)
	dst = appendString(dst, choice)
	return append(dst, `}}`...)
}

// appendFloat encodes f; nil, NaN and infinities encode as nil (absent).
func appendFloat(dst []byte, f *float64) []byte {
	if f == nil || math.IsNaN(*f) || math.IsInf(*f, 0) {
		return nil
	}
	return jsontext.AppendFloat(dst, *f, 64)
}

// appendStop encodes stop sequences; none encodes as nil (absent).
func appendStop(dst []byte, stop []string) []byte {
	if len(stop) == 0 {
		return nil
	}
	dst = append(dst, '[')
	for i, s := range stop {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b || (math.IsNaN(*a) && math.IsNaN(*b))
}

func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
