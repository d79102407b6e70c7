package openai

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
)

// Wire is the Native value of the core requests, responses and chunks this
// package decodes: the OpenAI wire JSON they were decoded from (a request
// body, a response body, or the data payload of one server-sent event).
//
// A Wire is immutable. It also remembers what it decoded to, so that the
// adapter can tell whether the chain changed a value: an unchanged value is
// sent on as the original bytes, a changed one is patched or re-encoded.
// The strings of the decoded value share memory with JSON (decoding them
// copies nothing), which is one more reason never to modify JSON.
type Wire struct {
	// JSON is the wire JSON, exactly as received. It must not be modified.
	JSON []byte

	req     *requestSnapshot     // set for a request
	resp    *middleware.Response // set for a response: as decoded, Native nil
	isChunk bool                 // set for a chunk, with chunk
	chunk   chunkSnapshot
	// unfinished is set for a response with a choice that did not finish
	// normally (length, content_filter, none).
	unfinished bool
}

var (
	_ middleware.NativeKeyer       = (*Wire)(nil)
	_ middleware.NativeServiceTier = (*Wire)(nil)
	_ middleware.NativePartitioner = (*Wire)(nil)
	_ middleware.NativeFinisher    = (*Wire)(nil)
)

// CachePartition implements middleware.NativePartitioner for a request a
// Transport intercepted: its endpoint (scheme, host, path) and a hash of
// its query, organization, project and credential, so that a response
// cache never gives one deployment's, server's or account's answer to
// another. "" for other Wires.
func (w *Wire) CachePartition() string {
	if w == nil || w.req == nil {
		return ""
	}
	return w.req.partition
}

var _ middleware.NativeExpirer = (*Wire)(nil)

// ExpiresAt implements middleware.NativeExpirer for a response: the
// earliest audio.expires_at of its choices' messages (an audio answer's
// id is kept by the provider until then, for the next turn to refer to).
// Other Wires, and responses without audio, have none.
func (w *Wire) ExpiresAt() (int64, bool) {
	if w == nil || w.resp == nil || !bytes.Contains(w.JSON, []byte(`"expires_at"`)) {
		return 0, false
	}
	var body struct {
		Choices []struct {
			Message struct {
				Audio *struct {
					ExpiresAt *float64 `json:"expires_at"`
				} `json:"audio"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(w.JSON, &body) != nil {
		return 0, false
	}
	var at int64
	found := false
	for _, c := range body.Choices {
		if a := c.Message.Audio; a != nil && a.ExpiresAt != nil {
			if t := int64(*a.ExpiresAt); !found || t < at {
				at, found = t, true
			}
		}
	}
	return at, found
}

// AllFinished implements middleware.NativeFinisher for a response: whether
// every choice finished normally (stop, tool calls), not only the first,
// which Response.FinishReason is. True for other Wires.
func (w *Wire) AllFinished() bool { return w == nil || !w.unfinished }

// RequestedServiceTier implements middleware.NativeServiceTier for a
// request: the processing tier its service_tier member asks for ("" for
// none, "auto" and "default"). Other Wires return "".
func (w *Wire) RequestedServiceTier() string {
	if w == nil || w.req == nil {
		return ""
	}
	return w.req.serviceTier
}

// AppendCacheKey implements middleware.NativeKeyer for a request: it
// appends every top-level member of the body but the neutral ones
// (middleware.NeutralFields), each length-prefixed, as the bytes the
// caller sent, so that every field of every message and tool, unknown
// fields and the exact escapes of strings (a lone surrogate is not
// U+FFFD) are part of the key. It reports whole when req's core fields
// are still those the body decoded to: the provider then sends the body's
// own bytes, which the key holds. Other Wires append nothing.
func (w *Wire) AppendCacheKey(dst []byte, req *middleware.Request) ([]byte, bool) {
	if w.req == nil {
		return dst, false
	}
	for _, m := range w.req.members {
		if m.neutral {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(m.end-m.start))
		dst = append(dst, w.JSON[m.start:m.end]...)
	}
	return dst, sameCore(req, &w.req.core)
}

// CacheKeySpans gives the response cache the key of AppendCacheKey by
// reference: it returns JSON (immutable) and appends to dst the start and
// end in it of each member AppendCacheKey appends, in the same order, and
// reports whole as AppendCacheKey does. A cache entry then keeps the body
// instead of a copy of the key.
func (w *Wire) CacheKeySpans(dst []uint32, req *middleware.Request) ([]byte, []uint32, bool) {
	if w.req == nil || uint64(len(w.JSON)) > 1<<31 { // spans are uint32 (a constant int would overflow on 32-bit)
		return nil, dst, false
	}
	for _, m := range w.req.members {
		if !m.neutral {
			dst = append(dst, uint32(m.start), uint32(m.end))
		}
	}
	return w.JSON, dst, sameCore(req, &w.req.core)
}

// SharedValues gives the response cache the values of the body (messages
// and tools of at least 64 bytes) whose bytes are also held by the
// Transport's memo, in a copy that is immutable and shared by every
// request that resends them: it appends, in body order, the start of
// each such value in JSON to starts and the memo's copy of its bytes
// (JSON[start:start+len(copy)] equals the copy) to vals. A cache entry
// then refers to those copies instead of keeping the body, so that the
// entries of an agent's turns share the conversation they resend: a miss
// keeps what is new in its request, not the whole request.
func (w *Wire) SharedValues(starts []uint32, vals [][]byte) ([]uint32, [][]byte) {
	if w.req == nil {
		return starts, vals
	}
	a, b := w.req.msgKept, w.req.toolKept
	for len(a) > 0 || len(b) > 0 {
		var v keptValue
		if len(b) == 0 || (len(a) > 0 && a[0].start < b[0].start) {
			v, a = a[0], a[1:]
		} else {
			v, b = b[0], b[1:]
		}
		starts, vals = append(starts, uint32(v.start)), append(vals, v.e.raw)
	}
	return starts, vals
}

// sameCore reports whether a's core fields equal b's (Stream and Native
// aside); the common case, an unchanged request, costs a few compares.
func sameCore(a, b *middleware.Request) bool {
	return a.Model == b.Model && a.ToolChoice == b.ToolChoice && a.MaxTokens == b.MaxTokens && a.N == b.N &&
		sameFloat(a.Temperature, b.Temperature) && sameFloat(a.TopP, b.TopP) && samePtr(a.Seed, b.Seed) &&
		slices.Equal(a.Stop, b.Stop) && bytes.Equal(a.ResponseFormat, b.ResponseFormat) && bytes.Equal(a.Extra, b.Extra) &&
		middleware.EqualMessages(a.Messages, b.Messages) && middleware.EqualTools(a.Tools, b.Tools)
}

// NativeFormat is the format of a chat completion response body in
// middleware.NativeMarshaler and middleware.StoredNative.
const NativeFormat = "openai.chat.completion/v1"

var _ middleware.NativeMarshaler = (*Wire)(nil)

// MarshalNative implements middleware.NativeMarshaler for a response: the
// provider's body, every choice and field as it was sent.
func (w *Wire) MarshalNative() (string, []byte, bool) {
	if w.resp == nil {
		return "", nil, false
	}
	return NativeFormat, w.JSON, true
}

// chunkSnapshot is what a chunk's JSON decoded to.
type chunkSnapshot struct {
	c         middleware.Chunk // as decoded, Native nil
	usageOnly bool             // no choices, only usage: the include_usage chunk
	// cutStart, cutEnd delimit the top-level "usage" member and one adjacent
	// comma, for callers that did not ask for usage; cutEnd == 0: none.
	// (int32: a data line holds at most maxStreamLine bytes.)
	cutStart, cutEnd int32
	// errStart, errEnd delimit a top-level "error" member that holds no
	// error, and one adjacent comma, cut for every caller; errEnd == 0:
	// none.
	errStart, errEnd int32
}

// usageCut and errCut return the spans of the members to cut.
func (s *chunkSnapshot) usageCut() span { return span{int(s.cutStart), int(s.cutEnd)} }
func (s *chunkSnapshot) errCut() span   { return span{int(s.errStart), int(s.errEnd)} }

// span is a byte range [start, end) of a JSON document.
type span struct{ start, end int }

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendKey appends "key": after a comma unless the object was just opened.
func appendKey(dst []byte, key string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' && dst[n-1] != '[' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

func appendUsage(dst []byte, u middleware.Usage) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = appendInt(dst, u.InputTokens)
	dst = append(dst, `,"completion_tokens":`...)
	dst = appendInt(dst, u.OutputTokens)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, u.Total())
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = appendInt(dst, u.CachedInputTokens)
	dst = append(dst, `,"audio_tokens":`...)
	dst = appendInt(dst, u.AudioInputTokens)
	if u.CacheWriteTokens != 0 { // not OpenAI's: kept as read (cache_write_tokens)
		dst = append(dst, `,"cache_write_tokens":`...)
		dst = appendInt(dst, u.CacheWriteTokens)
	}
	dst = append(dst, `},"completion_tokens_details":{"reasoning_tokens":`...)
	dst = appendInt(dst, u.ReasoningTokens)
	dst = append(dst, `,"audio_tokens":`...)
	dst = appendInt(dst, u.AudioOutputTokens)
	return append(dst, `}}`...)
}

// readUsage decodes an OpenAI usage object (null reads as zero usage).
func (r *reader) usage() (middleware.Usage, bool, error) {
	var u middleware.Usage
	ok, err := r.open('{')
	if err != nil || !ok {
		return u, false, err
	}
	var topCached, total int64
	var sawDetails bool
	for r.more() {
		name, err := r.name()
		if err != nil {
			return u, false, err
		}
		switch name {
		case "prompt_tokens":
			u.InputTokens, _, err = r.count()
		case "completion_tokens":
			u.OutputTokens, _, err = r.count()
		case "total_tokens":
			total, _, err = r.count()
		case "prompt_cache_hit_tokens": // DeepSeek
			var n int64
			n, _, err = r.count()
			topCached = max(topCached, n)
		case "cached_tokens": // Moonshot (Kimi), beside the prompt's count
			var n int64
			n, _, err = r.count()
			topCached = max(topCached, n)
		case "prompt_tokens_details":
			sawDetails = true
			err = r.details(func(name string) (bool, error) {
				switch name {
				case "cached_tokens":
					n, _, err := r.count()
					u.CachedInputTokens = n
					return true, err
				case "cache_creation_tokens", "cache_write_tokens":
					n, _, err := r.count()
					u.CacheWriteTokens = n
					return true, err
				case "audio_tokens":
					n, _, err := r.count()
					u.AudioInputTokens = n
					return true, err
				}
				return false, nil
			})
		case "completion_tokens_details":
			err = r.details(func(name string) (bool, error) {
				switch name {
				case "reasoning_tokens":
					n, _, err := r.count()
					u.ReasoningTokens = n
					return true, err
				case "audio_tokens":
					n, _, err := r.count()
					u.AudioOutputTokens = n
					return true, err
				}
				return false, nil
			})
		default:
			err = r.skip()
		}
		if err != nil {
			return u, false, err
		}
	}
	if !sawDetails || u.CachedInputTokens == 0 {
		u.CachedInputTokens = max(u.CachedInputTokens, topCached)
	}
	if err := r.close(); err != nil {
		return u, false, err
	}
	if !u.Negative() && total >= 0 {
		// OpenAI counts reasoning tokens in completion_tokens; xAI and
		// some Gemini bridges leave them out of it but in total_tokens
		// and completion_tokens_details.reasoning_tokens, and bill them
		// as output all the same. The output is what the counts prove
		// was produced: total − prompt when larger, else completion plus
		// reasoning when the reasoning alone exceeds the completion.
		switch {
		case total-u.InputTokens > u.OutputTokens:
			u.OutputTokens = total - u.InputTokens
		case u.ReasoningTokens > u.OutputTokens:
			u.OutputTokens = middleware.SatAdd(u.OutputTokens, u.ReasoningTokens)
		}
	}
	if u.Implausible() {
		// A negative count, or one beyond middleware.MaxCount, is no
		// count: settled as given, it would take spend off a budget, or
		// spend a whole budget on one call. The call is billed as one
		// without usage (the Meter's conservative estimate).
		return middleware.Usage{}, false, nil
	}
	return u, true, nil
}

// details reads an object (or null), handing each member name to fn; fn
// reads the value and reports true, or reports false to have it skipped.
func (r *reader) details(fn func(name string) (bool, error)) error {
	ok, err := r.open('{')
	if err != nil || !ok {
		return err
	}
	for r.more() {
		name, err := r.name()
		if err != nil {
			return err
		}
		read, err := fn(name)
		if err != nil {
			return err
		}
		if !read {
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
	return r.close()
}
