package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/maphash"
	"math/bits"
	"strings"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
)

// Encoding names returned by [Estimator.Encoding].
const (
	O200kBase  = "o200k_base"
	Cl100kBase = "cl100k_base"
)

// DefaultCacheSize is the number of memoised message and tool counts kept
// when no [WithCacheSize] option is given.
const DefaultCacheSize = 16384

// Option configures an Estimator.
type Option func(*config)

type config struct {
	cacheSize int
	encodings []modelEncoding
	models    ModelFunc
}

// Model is what an Estimator needs to know of a model. A model catalog
// (policies: the embedded catalog and a policy's models:) provides it
// through [WithModels].
type Model struct {
	// Encoding is the model's tokenizer: O200kBase or Cl100kBase count
	// exactly; any other value, including "", makes the model use the
	// conservative estimate.
	Encoding string
	// ImageLow and ImageHigh are the most input tokens one image of unknown
	// size counts at detail low, and at detail high or auto. Zero: gpt-4o's
	// 85 and 1445.
	ImageLow, ImageHigh int64
}

// ModelFunc resolves a model name; false means the model is unknown and
// the built-in tables apply.
type ModelFunc func(model string) (Model, bool)

// WithModels makes the estimator resolve models with fn before its
// built-in encoding table: a policy's per-model encoding and the model
// family's image rule then take effect.
func WithModels(fn ModelFunc) Option { return func(c *config) { c.models = fn } }

// WithCacheSize sizes the memo of per-message counts: n entries, rounded
// up to a power of two. n <= 0 turns memoisation off.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// WithModelEncoding declares that model (matched exactly, or as a prefix
// followed by "-") uses encoding (O200kBase or Cl100kBase; any other value,
// including "", makes the model use the conservative estimate). Declared
// models are looked up before the built-in table.
func WithModelEncoding(model, encoding string) Option {
	return func(c *config) {
		c.encodings = append(c.encodings, modelEncoding{strings.ToLower(model), encoding})
	}
}

type modelEncoding struct{ family, enc string }

// builtin is our own model→encoding table; more specific families first.
var builtin = []modelEncoding{
	{"gpt-4o", O200kBase},
	{"chatgpt-4o", O200kBase},
	{"gpt-4.1", O200kBase},
	{"gpt-4.5", O200kBase},
	{"gpt-5", O200kBase},
	{"o1", O200kBase},
	{"o3", O200kBase},
	{"o4", O200kBase},
	{"gpt-4", Cl100kBase},
	{"gpt-3.5", Cl100kBase},
	{"gpt-35", Cl100kBase},
	// Embeddings (tiktoken's model table): their input is counted
	// exactly, so the gateway reserves an embeddings call's real cost.
	{"text-embedding-3", Cl100kBase},
	{"text-embedding-ada-002", Cl100kBase},
}

// Estimator estimates input tokens: exact for OpenAI encodings
// (o200k_base, cl100k_base), conservative for other models (see the package
// documentation for both rules). Per-message counts are memoised in a
// bounded table keyed by a hash of the message. The zero value is not usable;
// call [New]. An Estimator is safe for concurrent use.
type Estimator struct {
	encodings []modelEncoding
	models    ModelFunc
	seed1     maphash.Seed
	memo      *countMemo
	ids       *idTable   // identity fast path in front of memo; nil when memo is
	convs     *convTable // conversation fast path in front of ids; nil when memo is
}

type key [2]uint64

// New returns an Estimator. Vocabularies are loaded on first use.
func New(opts ...Option) *Estimator {
	c := config{cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o(&c)
	}
	e := &Estimator{
		encodings: append(c.encodings, builtin...),
		models:    c.models,
		seed1:     maphash.MakeSeed(),
	}
	if c.cacheSize > 0 {
		e.memo = newCountMemo(c.cacheSize)
		// Four slots per memoised count: with the 4-way buckets of the
		// table, a live message almost never loses its slot to another
		// between two calls (a slot is 16 bytes; the bytes the entries
		// keep alive are bounded apart).
		e.ids = newIDTable(4*c.cacheSize, maxIdentityBytes/2)
		// A slot per conversation in flight, four per bucket.
		e.convs = newConvTable(c.cacheSize/4, maxIdentityBytes/2)
	}
	return e
}

// WithModels returns an estimator that resolves models with fn (see
// [WithModels]) and shares e's vocabularies and memo: counts depend only on
// the encoding, which is part of every memo key. A chain rebuilt for a new
// policy keeps its warm memo this way.
func (e *Estimator) WithModels(fn ModelFunc) *Estimator {
	c := *e
	c.models = fn
	return &c
}

// model returns what e knows of model: the resolver's answer, else the
// built-in encoding table and gpt-4o's image rule.
func (e *Estimator) model(model string) Model {
	if e.models != nil {
		if m, ok := e.models(model); ok {
			switch m.Encoding {
			case O200kBase, Cl100kBase:
			case "": // the catalog does not say: our own table
				m.Encoding = e.builtinEncoding(model)
			default: // an encoding we cannot count exactly
				m.Encoding = ""
			}
			return m
		}
	}
	return Model{Encoding: e.builtinEncoding(model)}
}

// imageTokens returns the worst-case tokens of one image at detail.
func (m Model) imageTokens(detail string) int64 {
	if detail == "low" {
		if m.ImageLow > 0 {
			return m.ImageLow
		}
		return imageLowTokens
	}
	if m.ImageHigh > 0 {
		return m.ImageHigh
	}
	return imageHighTokens
}

// Encoding returns the encoding of model: the one [WithModels] resolves,
// else by our own table (gpt-4o*,
// chatgpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*, o3*, o4* → o200k_base;
// gpt-4*, gpt-3.5* → cl100k_base), or "" when the model is not an OpenAI
// model with a known encoding. A provider prefix ("openai/") and a
// fine-tune prefix ("ft:") are ignored.
func (e *Estimator) Encoding(model string) string { return e.model(model).Encoding }

func (e *Estimator) builtinEncoding(model string) string {
	m := strings.ToLower(strings.TrimSpace(model))
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	for _, me := range e.encodings {
		if m == me.family || (strings.HasPrefix(m, me.family) && (m[len(me.family)] == '-' || m[len(me.family)] == ':')) {
			if me.enc == O200kBase || me.enc == Cl100kBase {
				return me.enc
			}
			return ""
		}
	}
	return ""
}

// codec returns the counter of enc (o200k_base or cl100k_base), nil for
// another encoding.
func (e *Estimator) codec(enc string) *bpe {
	return bpeFor(enc)
}

// Text returns the number of tokens of s alone (no chat framing) for model.
func (e *Estimator) Text(model, s string) int64 {
	return e.text(e.codec(e.Encoding(model)), s)
}

func (e *Estimator) text(c *bpe, s string) int64 {
	if s == "" {
		return 0
	}
	if c == nil {
		// Other models: 3/2 of the cl100k_base count, rounded up.
		return (e.count(e.codec(Cl100kBase), s)*3 + 1) / 2
	}
	return e.count(c, s)
}

// count counts s with c's ranks and this package's pre-tokenizer (the
// same tokens as tiktoken-go's Count, see bpe.go); without a counter (its
// vocabulary failed to load), one token per byte, which can never
// undercount.
func (e *Estimator) count(c *bpe, s string) int64 {
	if c == nil {
		return int64(len(s))
	}
	return int64(c.count(s))
}

// AudioInput returns the part of Request's estimate that is audio: the
// tokens counted for the request's input_audio parts (one per two bytes
// of data, far above OpenAI's 10 tokens a second), which a model with an
// audio input price bills at that price.
func (e *Estimator) AudioInput(req *middleware.Request) int64 {
	var n int64
	for i := range req.Messages {
		for _, p := range req.Messages[i].Parts {
			if p.Type == "input_audio" {
				n += int64(len(p.Data)+len(p.URL)+1) / 2
			}
		}
	}
	return n
}

// Framing constants (OpenAI cookbook; see the package doc).
const (
	replyPriming     = 3
	otherMessage     = 5 // conservative framing per message for other models
	otherReply       = 5
	otherTool        = 10
	imageLowTokens   = 85
	imageHighTokens  = 1445
	toolCallOverhead = 3
)

// Request returns the estimated input tokens of req for model: messages
// with their per-message overhead, tool definitions and the reply priming,
// by the OpenAI cookbook's rules for OpenAI encodings and by the
// conservative rule otherwise.
func (e *Estimator) Request(model string, req *middleware.Request) int64 {
	if req == nil {
		return 0
	}
	mi := e.model(model)
	enc := mi.Encoding
	c := e.codec(enc)
	legacy := legacyModel(model)
	variant := variantOf(enc, legacy)
	var n int64
	all := req.Messages
	// The conversation table first: the messages it holds, from the first,
	// are counted; the others take the per-message path below.
	start, prevN := 0, int64(0)
	var prev, next *convEntry
	tried := false
	var ck uint64
	conv := false
	if e.convs != nil && len(all) >= minConvMessages {
		ck, conv = convKey(variant, all)
		if conv {
			prev, start, prevN = e.convs.lookup(ck, variant, all)
			n = prevN
			for i := range start {
				n += imageTokens(mi, &all[i])
			}
		}
	}
	// mc is the count of messages 0..i, images aside; held ends the
	// messages the next conversation entry holds (at the first without
	// an identity: binary parts).
	mc, held := prevN, start
	if conv {
		for held < len(all) && !hasData(&all[held]) {
			held++
		}
	}
	for base := start; base < len(all); base += idBatch {
		msgs := all[base:min(base+idBatch, len(all))]
		// First the identity table's candidate for every message of the
		// batch, then each message: the table's cache misses of one
		// message do not wait for those of the one before.
		var cands [idBatch]idCandidate
		if e.ids != nil {
			for i := range msgs {
				cands[i] = e.ids.candidate(variant, &msgs[i])
			}
		}
		for i := range msgs {
			m := &msgs[i]
			v := e.message(variant, enc, c, legacy, m, cands[i])
			n += v + imageTokens(mi, m)
			mc += v
			if base+i < held {
				if !tried {
					tried = true
					next = newConvEntry(ck, variant, prev, start, held, all)
					if next != nil && next.base == 0 && start > 0 {
						prev.copyCounts(next.msgs[:start])
					}
				}
				if next != nil {
					next.msgs[base+i-next.base].n = mc
				}
			}
		}
	}
	if next != nil {
		e.convs.store(ck, next)
	}
	return n + e.toolsAndReply(enc, c, req.Tools) + e.extraTools(enc, c, req.Extra) + e.responseFormat(c, req.ResponseFormat)
}

// responseFormat counts a Structured Outputs schema (response_format of
// type json_schema), which the provider adds to the prompt and bills as
// input, as it does tool definitions: the text of its JSON, a little more
// than the schema itself. Other formats (text, json_object) add nothing
// worth counting.
func (e *Estimator) responseFormat(c *bpe, rf []byte) int64 {
	if len(rf) == 0 || !bytes.Contains(rf, []byte(`"json_schema"`)) {
		return 0
	}
	return e.text(c, string(rf))
}

// extraTools counts the tool definitions the adapters keep in Extra, as
// the core does not model them; the model reads them as it reads tools.
// One read of Extra serves both:
//   - "tools": tools that are no function tools (OpenAI's custom tools, a
//     provider's built-in ones), each its JSON text (the text of its name,
//     description and format, and some more for the JSON around them) and
//     as much as a function tool's overhead;
//   - "functions": the legacy functions API's definitions, counted as
//     function tools.
func (e *Estimator) extraTools(enc string, c *bpe, extra []byte) int64 {
	if len(extra) == 0 || !bytes.Contains(extra, []byte(`"tools"`)) && !bytes.Contains(extra, []byte(`"functions"`)) {
		return 0
	}
	var v struct {
		Tools     []json.RawMessage `json:"tools"`
		Functions []struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"functions"`
	}
	if json.Unmarshal(extra, &v) != nil {
		return 0
	}
	var n int64
	for _, t := range v.Tools {
		n += otherTool + e.text(c, string(t))
	}
	if len(v.Functions) > 0 {
		ts := make([]middleware.Tool, len(v.Functions))
		for i, f := range v.Functions {
			ts[i] = middleware.Tool{Name: f.Name, Description: f.Description, Parameters: f.Parameters}
		}
		n += e.tools(enc, c, ts)
	}
	return n
}

// toolsAndReply returns what a request counts besides its messages: its
// tool definitions and the reply's priming.
func (e *Estimator) toolsAndReply(enc string, c *bpe, tools []middleware.Tool) int64 {
	var n int64
	if len(tools) > 0 {
		n += e.tools(enc, c, tools)
		if c != nil {
			n += 12 // func_end
		}
	}
	if c == nil {
		return n + otherReply
	}
	return n + replyPriming
}

// Bound returns an upper bound of Request(model, req), without tokenising
// any text: the messages the conversation table knows (a resent
// conversation's, up to its first change) at their counts, every other
// message's text at one token a byte (a token of these encodings is at
// least one byte; three a byte for a string that is not valid UTF-8, whose
// invalid bytes are counted as U+FFFD; 3/2 of that for other models, as
// Request counts them), their framing, images and binary parts as Request
// counts them, the tool definitions counted (memoised as Request does),
// and a Structured Outputs schema at its text's bound (schemaBound).
// For a conversation of which no count is memoised (no layer counts it),
// the bound of its messages but the last is kept from its previous call
// (from its second sight on, see boundPrefix): the same sum, read from
// one entry. It costs a pass over the other messages' bytes (as fast as
// utf8.ValidString), and changes no memo of counts.
func (e *Estimator) Bound(model string, req *middleware.Request) int64 {
	if req == nil {
		return 0
	}
	mi := e.model(model)
	c := e.codec(mi.Encoding)
	legacy := legacyModel(model)
	variant := variantOf(mi.Encoding, legacy)
	all := req.Messages
	var n int64
	start := 0
	if e.convs != nil && len(all) >= minConvMessages {
		if ck, ok := convKey(variant, all); ok {
			_, start, n = e.convs.lookup(ck, variant, all)
			if start == 0 {
				// No count of the conversation: the bound of its messages
				// the table holds.
				start, n = e.boundPrefix(ck^boundSalt, variant, c, legacy, all)
			}
		}
	}
	for i := range all {
		m := &all[i]
		n += imageTokens(mi, m)
		if i >= start {
			n += messageBound(c, legacy, m)
		}
	}
	return n + e.toolsAndReply(mi.Encoding, c, req.Tools) + e.extraTools(mi.Encoding, c, req.Extra) + schemaBound(c, req.ResponseFormat)
}

// boundSalt tells a conversation's bound entry's key from its count
// entry's: they are kept apart, and a count entry is not replaced by a
// bound one. Its low 32 bits are zero: the bound entry is in the count
// entry's bucket, whose lines the count lookup just read.
const boundSalt = 0x5851F42D00000000

// boundPrefix returns how many of msgs, from the first, the conversation
// table's bound entry of h holds and the sum of their messageBound,
// extending the entry to every message but the last (up to the first
// with binary parts) first: a conversation no layer counts (a call
// outside a run, below its caps) re-sent with a turn more reads the bytes
// of its new messages only, and the bound is the same sum (Bound's:
// textBound of each text) whether a message's bound is read from the
// entry or computed. An entry is kept on the conversation's second sight
// (its first two messages, by identity): a one-shot request costs no
// allocation. The last message is left out of the entry: it is the one
// an agent's next call most often changes (a new question each time).
// Bound entries are told from count entries apart (convEntry.bounds, the
// key salted with boundSalt) and their variant says whether the model
// has a tokenizer (c nil: 3/2 of every text's bound), so an entry is
// never read as a count nor under another rule.
func (e *Estimator) boundPrefix(h, variant uint64, c *bpe, legacy bool, msgs []middleware.Message) (int, int64) {
	if c == nil {
		variant |= 8
	}
	prev, p, cum := e.convs.find(h, variant, msgs, true)
	q := p
	for q < len(msgs)-1 && !hasData(&msgs[q]) {
		q++
	}
	if q == p || prev == nil && !e.convs.metBefore(h) {
		return p, cum
	}
	next := newConvEntry(h, variant, prev, p, q, msgs)
	if next == nil {
		return p, cum
	}
	next.bounds = true
	if next.base == 0 && p > 0 {
		prev.copyCounts(next.msgs[:p])
	}
	for i := p; i < q; i++ {
		cum += messageBound(c, legacy, &msgs[i])
		next.msgs[i-next.base].n = cum
	}
	e.convs.store(h, next)
	return q, cum
}

// schemaBound is an upper bound of responseFormat(c, rf), without
// tokenising it (textBound).
func schemaBound(c *bpe, rf []byte) int64 {
	if len(rf) == 0 || !bytes.Contains(rf, []byte(`"json_schema"`)) {
		return 0
	}
	return textBound(c, string(rf))
}

// Within reports whether Request(model, req) is at most limit, counting
// only when [Estimator.Bound] is above it.
func (e *Estimator) Within(model string, req *middleware.Request, limit int64) bool {
	return e.Bound(model, req) <= limit || e.Request(model, req) <= limit
}

// messageBound is an upper bound of countMessage(c, legacy, m): the
// same framing, each text at textBound.
func messageBound(c *bpe, legacy bool, m *middleware.Message) int64 {
	return frameMessage(c, legacy, m, textBound)
}

// textBound is an upper bound of text(c, s): its bytes, three for each
// byte of a string that is not valid UTF-8 (count replaces each invalid
// byte with U+FFFD), and 3/2 of that for other models.
func textBound(c *bpe, s string) int64 {
	n := int64(len(s))
	if !utf8.ValidString(s) {
		n *= 3
	}
	if c == nil {
		return (3*n + 1) / 2
	}
	return n
}

// imageTokens returns the tokens of m's images by mi's rule (counted
// outside the memos: the rule is the model family's, not the encoding's).
func imageTokens(mi Model, m *middleware.Message) int64 {
	var n int64
	for j := range m.Parts {
		if m.Parts[j].Type == "image_url" {
			n += mi.imageTokens(m.Parts[j].Detail)
		}
	}
	return n
}

// hasData reports whether m has binary parts (no identity).
func hasData(m *middleware.Message) bool {
	for i := range m.Parts {
		if len(m.Parts[i].Data) > 0 {
			return true
		}
	}
	return false
}

// legacyModel reports whether model counts messages as gpt-3.5-turbo-0301
// does (its name's prefix, in any case; no copy of the name).
func legacyModel(model string) bool {
	const legacy = "gpt-3.5-turbo-0301"
	return len(model) >= len(legacy) && strings.EqualFold(model[:len(legacy)], legacy)
}

// message returns the count of m, cand its identity table candidate.
func (e *Estimator) message(variant uint64, enc string, c *bpe, legacy bool, m *middleware.Message, cand idCandidate) int64 {
	if e.memo == nil {
		return e.countMessage(c, legacy, m)
	}
	if !cand.ok {
		n, _ := e.messageByContent(enc, c, legacy, m)
		return n
	}
	if v, ok := cand.get(variant, m); ok {
		return v
	}
	v, seen := e.messageByContent(enc, c, legacy, m)
	if seen {
		// Kept by identity from its second sight on: a message seen once
		// (the last turn of a one-shot call, a request's new question) is
		// not worth an entry, which would cost an allocation and push a
		// live message out of its bucket. A re-sent message takes one hash
		// more, once.
		e.ids.put(cand.h, variant, m, v)
	}
	return v
}

// messageByContent returns the count of m from the memo keyed by a hash of
// its content, counting it on a miss; seen reports a memo hit.
func (e *Estimator) messageByContent(enc string, c *bpe, legacy bool, m *middleware.Message) (n int64, seen bool) {
	k := e.hashMessage(enc, legacy, m)
	if v, ok := e.memo.Get(k); ok {
		return v, true
	}
	v := e.countMessage(c, legacy, m)
	e.memo.Add(k, v)
	return v, false
}

func (e *Estimator) countMessage(c *bpe, legacy bool, m *middleware.Message) int64 {
	return frameMessage(c, legacy, m, e.text)
}

// frameMessage counts m by the framing rules, each of its texts by text:
// its count (Estimator.text) or a bound of it (textBound).
func frameMessage(c *bpe, legacy bool, m *middleware.Message, text func(*bpe, string) int64) int64 {
	var n int64
	switch {
	case c == nil:
		n = otherMessage
	case legacy:
		n = 4
	default:
		n = 3
	}
	n += text(c, string(m.Role))
	n += text(c, m.Content)
	if m.Name != "" {
		n += text(c, m.Name)
		if legacy {
			n--
		} else {
			n++
		}
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		switch p.Type {
		case "text":
			n += text(c, p.Text)
		case "image_url":
			// counted by Request, by the called model's rule
		default:
			n += int64(len(p.Data)+len(p.URL)+1) / 2
		}
	}
	for _, tc := range m.ToolCalls {
		n += toolCallOverhead + text(c, tc.Name) + text(c, tc.Arguments)
	}
	if fc := m.FunctionCall; fc != nil {
		// The legacy functions API's call is rendered as a tool call is.
		n += toolCallOverhead + text(c, fc.Name) + text(c, fc.Arguments)
	}
	if m.Refusal != "" {
		// A refusal of the history is the assistant's text.
		n += text(c, m.Refusal)
	}
	if m.ToolCallID != "" {
		n += text(c, m.ToolCallID)
	}
	return n
}

// hasher folds strings into a 128-bit key: a seeded 64-bit hash of every
// field (maphash.String, one pass each), mixed in order, and the total
// length with the field count. Collisions need a 64-bit hash collision under
// a random per-Estimator seed with equal lengths: negligible for a memo.
type hasher struct {
	seed maphash.Seed
	acc  uint64
	n    uint64
}

func (h *hasher) add(s string) {
	x := maphash.String(h.seed, s)
	h.acc = bits.RotateLeft64((h.acc^x)*0x9E3779B97F4A7C15, 31)
	h.n += uint64(len(s))<<8 + 1
}

// addBytes is add for a byte slice, without converting it to a string.
func (h *hasher) addBytes(b []byte) {
	x := maphash.Bytes(h.seed, b)
	h.acc = bits.RotateLeft64((h.acc^x)*0x9E3779B97F4A7C15, 31)
	h.n += uint64(len(b))<<8 + 1
}

func (h *hasher) key() key { return key{h.acc, h.n} }

func (e *Estimator) hashMessage(enc string, legacy bool, m *middleware.Message) key {
	h := hasher{seed: e.seed1}
	if legacy {
		h.add("m-legacy")
	} else {
		h.add("m")
	}
	h.add(enc)
	h.add(string(m.Role))
	h.add(m.Content)
	h.add(m.Name)
	h.add(m.ToolCallID)
	for i := range m.Parts {
		p := &m.Parts[i]
		h.add(p.Type)
		h.add(p.Text)
		h.add(p.Detail)
		h.add(p.URL)
		h.addBytes(p.Data)
	}
	h.add("|")
	for _, tc := range m.ToolCalls {
		h.add(tc.Name)
		h.add(tc.Arguments)
	}
	if m.FunctionCall != nil || m.Refusal != "" {
		h.add("|legacy")
		if fc := m.FunctionCall; fc != nil {
			h.add(fc.Name)
			h.add(fc.Arguments)
		}
		h.add(m.Refusal)
	}
	return h.key()
}

// tools returns the count of the tool definitions ts: memoised for the
// whole list under one hash of their content (one memo lookup where a
// lookup per tool would take a cache miss each), else the sum of each
// tool's memoised count.
func (e *Estimator) tools(enc string, c *bpe, ts []middleware.Tool) int64 {
	if e.memo == nil || len(ts) == 1 {
		var n int64
		for i := range ts {
			n += e.tool(enc, c, &ts[i])
		}
		return n
	}
	h := hasher{seed: e.seed1}
	h.add("tools")
	h.add(enc)
	for i := range ts {
		h.add(ts[i].Name)
		h.add(ts[i].Description)
		h.addBytes(ts[i].Parameters)
	}
	k := h.key()
	if v, ok := e.memo.Get(k); ok {
		return v
	}
	var n int64
	for i := range ts {
		n += e.tool(enc, c, &ts[i])
	}
	e.memo.Add(k, n)
	return n
}

func (e *Estimator) tool(enc string, c *bpe, t *middleware.Tool) int64 {
	if e.memo == nil {
		return e.countTool(c, t)
	}
	h := hasher{seed: e.seed1}
	h.add("t")
	h.add(enc)
	h.add(t.Name)
	h.add(t.Description)
	h.addBytes(t.Parameters)
	k := h.key()
	if v, ok := e.memo.Get(k); ok {
		return v
	}
	v := e.countTool(c, t)
	e.memo.Add(k, v)
	return v
}

type schemaProp struct {
	Type        json.RawMessage `json:"type"`
	Description string          `json:"description"`
	Enum        []any           `json:"enum"`
}

func (e *Estimator) countTool(c *bpe, t *middleware.Tool) int64 {
	if c == nil {
		return otherTool + e.text(nil, t.Name) + e.text(nil, t.Description) + e.text(nil, string(t.Parameters))
	}
	funcInit := int64(7)
	if c.name == Cl100kBase {
		funcInit = 10
	}
	n := funcInit + e.text(c, t.Name+":"+strings.TrimSuffix(t.Description, "."))
	if len(t.Parameters) == 0 {
		return n
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(t.Parameters, &schema); err != nil {
		return n + e.text(c, string(t.Parameters)) // not JSON: count it as text
	}
	if len(schema.Properties) == 0 {
		return n
	}
	n += 3 // prop_init
	for name, raw := range schema.Properties {
		n += 3 // prop_key
		var p schemaProp
		_ = json.Unmarshal(raw, &p)
		typ := strings.Trim(string(p.Type), `"`)
		if len(p.Type) > 0 && p.Type[0] == '[' {
			typ = string(p.Type) // a list of types: count its JSON text
		}
		if p.Enum != nil {
			n -= 3 // enum_init
			for _, it := range p.Enum {
				n += 3 // enum_item
				s, ok := it.(string)
				if !ok {
					b, _ := json.Marshal(it)
					s = string(b)
				}
				n += e.text(c, s)
			}
		}
		n += e.text(c, name+":"+typ+":"+strings.TrimSuffix(p.Description, "."))
		if nested(raw) {
			n += e.text(c, string(raw)) // nested schemas: the cookbook is silent; be safe
		}
	}
	return n
}

// nested reports whether a property schema has keys the cookbook's rule
// does not count (properties, items, anyOf, ...).
func nested(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	for k := range m {
		switch k {
		case "type", "description", "enum":
		default:
			return true
		}
	}
	return false
}

// ForCall returns e.Request(model, req) computed at most once per call: the
// count is memoised in the call's [middleware.CallInfo] (see
// [middleware.CallInfo.Estimate]) under a key of the model's encoding and
// image rule and the identity of the request's message and tool slices, so
// that a clone that only changed the model reuses the count and a layer
// that rewrote the messages gets a fresh one. Outside an instrumented call
// it just computes the count.
func ForCall(ctx context.Context, e *Estimator, model string, req *middleware.Request) int64 {
	ci := middleware.CallInfoFrom(ctx)
	if ci == nil {
		return e.Request(model, req)
	}
	return ci.Estimate(e.callKey(model, req), func() int64 { return e.Request(model, req) })
}

// BoundForCall returns an upper bound of ForCall(ctx, e, model, req): the
// call's count when a layer has made it (exact true), else
// [Estimator.Bound]. A layer that only compares the estimate with a limit
// (the request's input cap, a context window) takes the count only when
// the bound is above the limit, and costs no tokenising of new text when
// the request is far enough below it.
func BoundForCall(ctx context.Context, e *Estimator, model string, req *middleware.Request) (n int64, exact bool) {
	if ci := middleware.CallInfoFrom(ctx); ci != nil {
		if n, ok := ci.EstimateOf(e.callKey(model, req)); ok {
			return n, true
		}
	}
	return e.Bound(model, req), false
}

// callKey is the per-call memo key of e's count of req on model.
func (e *Estimator) callKey(model string, req *middleware.Request) middleware.EstimateKey {
	// Unknown models share the conservative count, which does not depend on
	// the model's name; gpt-3.5-turbo-0301 counts messages differently.
	mi := e.model(model)
	k := middleware.EstimateKey{Estimator: e, Encoding: mi.Encoding, Rule: [3]int64{mi.ImageLow, mi.ImageHigh}, N: len(req.Messages), NT: len(req.Tools)}
	if legacyModel(model) {
		k.Rule[2] = 1
	}
	if len(req.Messages) > 0 {
		k.Messages = &req.Messages[0]
	}
	if len(req.Tools) > 0 {
		k.Tools = &req.Tools[0]
	}
	return k
}
