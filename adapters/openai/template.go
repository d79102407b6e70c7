package openai

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/tokenwise/tokenwise/middleware"
)

// chunkTemplate spares the decoding of a stream's chunks that differ from
// an earlier one only in the text of its content. A provider sends most
// chunks of an answer as the same bytes around a different content string
// (`{"id":…,"choices":[{"index":0,"delta":{"content":"` + text +
// `"},"logprobs":null,"finish_reason":null}],…}`). Decoding is a function
// of the tokens of a document, and a string literal whose body holds no
// quote, backslash or control character is one token whatever its bytes:
// a payload equal to the template's but for the body of that one literal,
// replaced by another such body, decodes to the template's chunk with
// that literal's value, and to nothing else. The reader's own string
// decoding keeps such a body's bytes as they are when they are UTF-8 (see
// reader.string), which is what match keeps; a body that is not is
// decoded.
type chunkTemplate struct {
	ok        bool
	pre, post []byte           // the template's payload before and from the literal's closing quote
	c         middleware.Chunk // its decoded chunk, Native nil
	snap      chunkSnapshot
	pc        plainChunk // what the decoder found for the merge (when a cache keeps the stream)
}

// learn makes the chunk c, decoded from data (whose snapshot is snap and
// plain-chunk report pc), the template when its content is a non-empty
// literal of data read as it is, and it carries no usage or tool calls
// (whose memory the chunks would share). Otherwise the template is kept.
func (t *chunkTemplate) learn(data []byte, c *middleware.Chunk, snap *chunkSnapshot, pc *plainChunk) {
	n := len(c.Content)
	if n == 0 || c.Usage != nil || len(c.ToolCalls) > 0 || len(data) == 0 {
		return
	}
	start := int(uintptr(unsafe.Pointer(unsafe.StringData(c.Content))) - uintptr(unsafe.Pointer(unsafe.SliceData(data))))
	if start < 1 || start+n >= len(data) || data[start-1] != '"' || data[start+n] != '"' ||
		unsafe.StringData(c.Content) != &data[start] {
		return // not a view of data: it had escapes
	}
	t.ok, t.pre, t.post = true, data[:start:start], data[start+n:]
	t.c, t.snap, t.pc = *c, *snap, *pc
	t.c.Native, t.snap.c.Native = nil, nil
}

// match decodes payload from the template when it is the template's but
// for the body of its content literal, replaced by another plain one: it
// copies payload to mem and returns the chunk, whose Native is its Wire,
// and the plain-chunk report. ok is false when payload must be decoded.
func (t *chunkTemplate) match(mem *chunkArena, payload []byte) (c middleware.Chunk, pc plainChunk, ok bool) {
	if !t.ok || len(payload) <= len(t.pre)+len(t.post) || !bytes.HasPrefix(payload, t.pre) || !bytes.HasSuffix(payload, t.post) {
		return c, pc, false
	}
	body := payload[len(t.pre) : len(payload)-len(t.post)]
	var seen byte
	for _, b := range body {
		if special[b] {
			return c, pc, false
		}
		seen |= b
	}
	if seen >= utf8.RuneSelf && !utf8.Valid(body) {
		return c, pc, false // the decoder replaces what is not UTF-8
	}
	data := mem.copy(payload)
	w := mem.wire()
	c = t.c
	c.Content = bytesString(data[len(t.pre) : len(t.pre)+len(body)])
	*w = Wire{JSON: data, isChunk: true, chunk: t.snap}
	w.chunk.c = c
	// The usage and error members after the literal moved by the
	// difference of the bodies' lengths.
	shift := int32(len(body) - len(t.c.Content))
	if w.chunk.cutEnd > 0 && int(w.chunk.cutStart) >= len(t.pre) {
		w.chunk.cutStart += shift
		w.chunk.cutEnd += shift
	}
	if w.chunk.errEnd > 0 && int(w.chunk.errStart) >= len(t.pre) {
		w.chunk.errStart += shift
		w.chunk.errEnd += shift
	}
	c.Native = w
	return c, t.pc, true
}
