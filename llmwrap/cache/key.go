package cache

import (
	"encoding/binary"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenwise/tokenwise/middleware"
)

// KeyVersion is the version of the canonical request encoding. It is the
// first bytes of every encoding, so entries written by another version of
// the encoding never match.
const KeyVersion = "twc2"

// Field tags of the canonical encoding. Every field that changes the answer
// has its own tag; a field that is unset is omitted, so "omitted" and
// "zero" never encode alike.
const (
	tagScope byte = iota + 1
	tagModel
	tagMessage
	tagTool
	tagToolChoice
	tagTemperature
	tagTopP
	tagSeed
	tagStop
	tagMaxTokens
	tagResponseFormat
	tagN
	tagExtra
	tagNative
	tagWholeNative
	tagPartition
)

// AppendCanonical appends to dst the canonical, versioned encoding of
// everything in req that may change the answer, under the cache scope
// scope (for example "team:devops" or "global"): the model, every message
// (role, content, parts, name, tool calls, tool call id, reasoning), the
// tools, tool_choice, temperature (unset is not 0), top_p, seed, stop, max
// tokens, the response format, n, Extra, and, when req.Native is a
// middleware.NativeKeyer (the OpenAI adapter's wire JSON), the whole
// native request but its neutral fields (middleware.NeutralFields); when
// the core fields are still those the native request decoded to, the
// native request alone (the core fields are a function of it). The
// key is by denial: what the core does not model is in it through Extra
// and the native request. It never looks at Stream, nor at anything in the
// context (trace ids, callbacks).
//
// The encoding is deterministic and unambiguous: every variable-length
// value is length-prefixed and every field is tagged, so two requests
// encode alike if and only if those fields are equal.
func AppendCanonical(dst []byte, scope string, req *middleware.Request) []byte {
	return appendCanonical(dst, scope, "", req)
}

// appendCanonical encodes the scope scopePrefix+scope without
// concatenating the strings.
func appendCanonical(dst []byte, scopePrefix, scope string, req *middleware.Request) []byte {
	dst = appendPartition(appendHeader(dst, scopePrefix, scope), req)
	k, native := req.Native.(middleware.NativeKeyer)
	if native {
		// An unchanged native request stands for the whole request: its
		// bytes alone are the key (the core fields are decoded from them).
		start := len(dst)
		out, whole := k.AppendCacheKey(append(dst, tagWholeNative), req)
		if whole {
			return out
		}
		dst = out[:start]
	}
	dst = appendStr(append(dst, tagModel), req.Model)
	for i := range req.Messages {
		dst = appendMessage(append(dst, tagMessage), &req.Messages[i])
	}
	return appendTail(dst, req, k)
}

// appendHeader appends the start of every canonical encoding: the version
// and the scope scopePrefix+scope.
func appendHeader(dst []byte, scopePrefix, scope string) []byte {
	dst = append(dst, KeyVersion...)
	dst = binary.AppendUvarint(append(dst, tagScope), uint64(len(scopePrefix)+len(scope)))
	return append(append(dst, scopePrefix...), scope...)
}

// appendPartition appends the partition req's native request names
// (middleware.NativePartitioner: the endpoint and account it is sent to),
// if any, after the header.
func appendPartition(dst []byte, req *middleware.Request) []byte {
	if p, ok := req.Native.(middleware.NativePartitioner); ok {
		if s := p.CachePartition(); s != "" {
			dst = appendStr(append(dst, tagPartition), s)
		}
	}
	return dst
}

// appendTail appends what the canonical encoding of a request that is not
// whole native has after its messages: the tools, the settings and, when
// k is not nil, the native request.
func appendTail(dst []byte, req *middleware.Request, k middleware.NativeKeyer) []byte {
	for i := range req.Tools {
		t := &req.Tools[i]
		dst = append(dst, tagTool)
		dst = appendStr(dst, t.Name)
		dst = appendStr(dst, t.Description)
		dst = appendBytes(dst, t.Parameters)
		dst = appendBool(dst, t.Strict)
	}
	if req.ToolChoice != "" {
		dst = appendStr(append(dst, tagToolChoice), req.ToolChoice)
	}
	if req.Temperature != nil {
		dst = appendFloat(append(dst, tagTemperature), *req.Temperature)
	}
	if req.TopP != nil {
		dst = appendFloat(append(dst, tagTopP), *req.TopP)
	}
	if req.Seed != nil {
		dst = binary.AppendVarint(append(dst, tagSeed), *req.Seed)
	}
	if req.Stop != nil {
		dst = binary.AppendUvarint(append(dst, tagStop), uint64(len(req.Stop)))
		for _, s := range req.Stop {
			dst = appendStr(dst, s)
		}
	}
	if req.MaxTokens != 0 {
		dst = binary.AppendVarint(append(dst, tagMaxTokens), int64(req.MaxTokens))
	}
	if req.ResponseFormat != nil {
		dst = appendBytes(append(dst, tagResponseFormat), req.ResponseFormat)
	}
	if req.N != 0 {
		dst = binary.AppendVarint(append(dst, tagN), int64(req.N))
	}
	if req.Extra != nil {
		dst = appendBytes(append(dst, tagExtra), req.Extra)
	}
	if k != nil {
		// Last: it runs to the end of the encoding, so needs no length.
		dst, _ = k.AppendCacheKey(append(dst, tagNative), req)
	}
	return dst
}

// Sum returns the 64-bit xxHash of a canonical encoding: the cache key of
// a whole native request (one the OpenAI transport decoded and no layer
// changed); the key of another request hashes its messages' hashes
// instead of their encodings (see the package doc). Sum is not
// collision-free; a hit therefore also compares the stored canonical
// encoding with the request's (see [Entry.Request]), so a collision costs
// a miss, never a wrong answer.
func Sum(canonical []byte) uint64 { return xxhash.Sum64(canonical) }

// appendMessage appends the canonical encoding of m: appendMessageBase,
// then, when m has any, its legacy function call and refusal.
func appendMessage(dst []byte, m *middleware.Message) []byte {
	dst = appendMessageBase(dst, m)
	if m.FunctionCall == nil && m.Refusal == "" {
		return dst
	}
	// A legacy function call or a refusal (rare) follows a byte no tag
	// is: the encoding of a message without them is unchanged, and
	// stays unambiguous.
	return appendMessageLegacy(append(dst, tagLegacy), m)
}

// tagLegacy marks a message's legacy function call and refusal in its
// canonical encoding: a byte that no field tag is.
const tagLegacy byte = 0xFF

// appendMessageLegacy appends m's legacy function call (a presence byte,
// its id, name and arguments) and refusal.
func appendMessageLegacy(dst []byte, m *middleware.Message) []byte {
	if fc := m.FunctionCall; fc != nil {
		dst = append(dst, 1)
		dst = appendStr(dst, fc.ID)
		dst = appendStr(dst, fc.Name)
		dst = appendStr(dst, fc.Arguments)
	} else {
		dst = append(dst, 0)
	}
	return appendStr(dst, m.Refusal)
}

// appendMessageBase appends m's fields but its legacy function call and
// refusal.
func appendMessageBase(dst []byte, m *middleware.Message) []byte {
	dst = appendStr(dst, string(m.Role))
	dst = appendStr(dst, m.Content)
	if len(m.Parts) == 0 && m.Name == "" && len(m.ToolCalls) == 0 && m.ToolCallID == "" && m.Reasoning == "" {
		// The common message: no parts, name, tool calls, tool call id
		// or reasoning (the same bytes as the general case below).
		return append(dst, 0, 0, 0, 0, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Parts)))
	for i := range m.Parts {
		p := &m.Parts[i]
		dst = appendStr(dst, p.Type)
		dst = appendStr(dst, p.Text)
		dst = appendStr(dst, p.URL)
		dst = appendStr(dst, p.Detail)
		dst = appendStr(dst, p.MIMEType)
		dst = appendBytes(dst, p.Data)
	}
	dst = appendStr(dst, m.Name)
	dst = binary.AppendUvarint(dst, uint64(len(m.ToolCalls)))
	for i := range m.ToolCalls {
		c := &m.ToolCalls[i]
		dst = appendStr(dst, c.ID)
		dst = appendStr(dst, c.Name)
		dst = appendStr(dst, c.Arguments)
	}
	dst = appendStr(dst, m.ToolCallID)
	return appendStr(dst, m.Reasoning)
}

func appendStr(dst []byte, s string) []byte {
	if len(s) < 0x80 { // a one-byte uvarint
		return append(append(dst, byte(len(s))), s...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendBytes tells nil from empty: nil is "not set".
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case f == 0:
		f = 0 // -0 and +0 are the same setting
	case math.IsNaN(f):
		f = math.NaN()
	}
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}
