package openai

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// reader is a small, strict JSON reader over an in-memory document, built
// for the adapter's hot paths (a request body, one streamed chunk): it reads
// only what the core models, skips the rest while validating it, and knows
// the byte offset of everything it reads, so that the adapter can copy or
// patch spans of the original.
//
// A string without escapes is returned without a copy: it shares the
// document's memory. Documents are never modified after they are read
// (a request body the adapter owns, a [Wire]'s JSON), so such strings stay
// valid and unchanged for as long as they are referenced.
//
// Methods record the first syntax error and return it from then on.
type reader struct {
	src   []byte
	pos   int
	stack []frame // the open objects and arrays
	err   error
	memo  *msgMemo // decoded messages to reuse; nil: none
	// plain receives what a stream's merge needs of a chunk (reader.chunk);
	// nil: nothing.
	plain *plainChunk
	// others, with collectOthers, receives the choices of a stream's
	// chunks after the first (reader.chunkChoice), made on the first one.
	others        *otherChoices
	collectOthers bool
}

// frame is an open object or array.
type frame struct {
	close byte // '}' or ']'
	first bool // no element read yet
}

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 10000

var readerPool = sync.Pool{New: func() any { return &reader{stack: make([]frame, 0, 16)} }}

func getReader(src []byte) *reader {
	r := readerPool.Get().(*reader)
	r.src, r.pos, r.stack, r.err, r.memo = src, 0, r.stack[:0], nil, nil
	r.others, r.collectOthers = nil, false
	return r
}

func putReader(r *reader) {
	r.src, r.err, r.memo = nil, nil, nil
	r.others, r.collectOthers = nil, false
	readerPool.Put(r)
}

// syntaxError is a JSON document that is not valid, or not of the
// expected shape.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg)
}

func (r *reader) fail(msg string) error {
	if r.err == nil {
		r.err = &syntaxError{off: r.pos, msg: msg}
	}
	return r.err
}

func (r *reader) unexpected(want string) error {
	if r.pos >= len(r.src) {
		return r.fail("unexpected end of input, want " + want)
	}
	return r.fail(fmt.Sprintf("unexpected %q, want %s", r.src[r.pos], want))
}

// ws skips whitespace.
func (r *reader) ws() {
	src, i := r.src, r.pos
	if i < len(src) && src[i] > ' ' {
		return // the common case: compact JSON
	}
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
		i++
	}
	r.pos = i
}

// next returns the offset of the next token.
func (r *reader) next() int {
	r.ws()
	return r.pos
}

// offset returns the offset just past the last token or value read.
func (r *reader) offset() int { return r.pos }

// peek returns the kind of the next value: '"', '{', '[', '0' (a number),
// 't', 'f', 'n', or 0 at the end of the input.
func (r *reader) peek() byte {
	r.ws()
	if r.pos >= len(r.src) {
		return 0
	}
	c := r.src[r.pos]
	if c == '-' || c >= '0' && c <= '9' {
		return '0'
	}
	return c
}

// open reads the opening delimiter of an object ('{') or array ('['). It
// reports false, without error, for a null.
func (r *reader) open(kind byte) (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	switch r.peek() {
	case kind:
		if len(r.stack) >= maxDepth {
			return false, r.fail("nesting too deep")
		}
		r.pos++
		closer := byte('}')
		if kind == '[' {
			closer = ']'
		}
		r.stack = append(r.stack, frame{close: closer, first: true})
		return true, nil
	case 'n':
		return false, r.literal("null")
	}
	if kind == '{' {
		return false, r.unexpected("object")
	}
	return false, r.unexpected("array")
}

// more reports whether the current object or array has another member or
// element, consuming the comma before it.
func (r *reader) more() bool {
	if r.err != nil || len(r.stack) == 0 {
		return false
	}
	r.ws()
	if r.pos >= len(r.src) {
		r.fail("unexpected end of input")
		return false
	}
	top := &r.stack[len(r.stack)-1]
	c := r.src[r.pos]
	if c == top.close {
		return false
	}
	if top.first {
		top.first = false
		return true
	}
	if c != ',' {
		r.unexpected("',' or '" + string(top.close) + "'")
		return false
	}
	r.pos++
	r.ws()
	if r.pos < len(r.src) && r.src[r.pos] == top.close {
		r.fail("trailing comma")
		return false
	}
	return true
}

// close reads the closing delimiter of the current object or array.
func (r *reader) close() error {
	if r.err != nil {
		return r.err
	}
	if len(r.stack) == 0 {
		return r.fail("close without open")
	}
	top := r.stack[len(r.stack)-1]
	r.ws()
	if r.pos >= len(r.src) || r.src[r.pos] != top.close {
		return r.unexpected("'" + string(top.close) + "'")
	}
	r.pos++
	r.stack = r.stack[:len(r.stack)-1]
	return nil
}

// name reads an object member's name and the colon after it.
func (r *reader) name() (string, error) {
	if r.err != nil {
		return "", r.err
	}
	if r.peek() != '"' {
		return "", r.unexpected("member name")
	}
	s, err := r.string()
	if err != nil {
		return "", err
	}
	r.ws()
	if r.pos >= len(r.src) || r.src[r.pos] != ':' {
		return "", r.unexpected("':'")
	}
	r.pos++
	return s, nil
}

// str reads a string; null reads as "".
func (r *reader) str() (string, error) {
	if r.err != nil {
		return "", r.err
	}
	switch r.peek() {
	case '"':
		return r.string()
	case 'n':
		return "", r.literal("null")
	}
	return "", r.unexpected("string")
}

// special marks the bytes that end the plain run of a string literal:
// the quote, the backslash and the control characters.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// specialOrHigh is special with the bytes that are not ASCII: the bytes
// that end a plain ASCII run.
var specialOrHigh = func() (t [256]bool) {
	t = special
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	return t
}()

// string reads the string literal at r.pos. Bytes that are not UTF-8 read
// as U+FFFD, each, as encoding/json (and so go-openai) reads them: a
// string is what a client of the same bytes reads, whatever chunk it
// came in (a rune split across two chunks is two halves, each invalid).
func (r *reader) string() (string, error) {
	src, start := r.src, r.pos+1
	i := start
	for i < len(src) && !specialOrHigh[src[i]] {
		i++
	}
	if i < len(src) && src[i] == '"' { // ASCII (member names, most values): UTF-8
		r.pos = i + 1
		if i == start {
			return "", nil
		}
		return unsafe.String(&src[start], i-start), nil
	}
	for i < len(src) && !special[src[i]] {
		i++
	}
	if i < len(src) && src[i] == '"' {
		r.pos = i + 1
		if !utf8.Valid(src[start:i]) {
			b := appendValidUTF8(nil, src[start:i])
			return unsafe.String(&b[0], len(b)), nil
		}
		return unsafe.String(&src[start], i-start), nil
	}
	if i < len(src) && src[i] == '\\' {
		return r.unescape(start)
	}
	r.pos = i
	if i < len(src) {
		return "", r.fail("control character in string")
	}
	return "", r.fail("unterminated string")
}

// unescape decodes a string with escapes that starts at start (after the
// quote) into a new buffer.
func (r *reader) unescape(start int) (string, error) {
	src := r.src
	// The next quote is often the end; past an escaped quote, buf grows.
	size := len(src) - start
	if q := bytes.IndexByte(src[start:], '"'); q >= 0 {
		size = min(size, 2*q+16)
	}
	buf := make([]byte, 0, size)
	for i := start; i < len(src); {
		c := src[i]
		switch {
		case c == '"':
			r.pos = i + 1
			if len(buf) == 0 {
				return "", nil
			}
			return unsafe.String(&buf[0], len(buf)), nil // buf is ours alone
		case c < 0x20:
			r.pos = i
			return "", r.fail("control character in string")
		case c != '\\':
			j, high := i, byte(0)
			for j < len(src) && !special[src[j]] {
				high |= src[j]
				j++
			}
			// A plain run ends at an ASCII byte: no rune spans two runs.
			if high < utf8.RuneSelf || utf8.Valid(src[i:j]) {
				buf = append(buf, src[i:j]...)
			} else {
				buf = appendValidUTF8(buf, src[i:j])
			}
			i = j
			continue
		}
		if i+1 >= len(src) {
			break
		}
		switch e := src[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r1, ok := hex4(src, i+2)
			if !ok {
				r.pos = i
				return "", r.fail("invalid \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r1) {
				if r2, ok := hex4(src, i+2); ok && i+1 < len(src) && src[i] == '\\' && src[i+1] == 'u' {
					if dec := utf16.DecodeRune(r1, r2); dec != utf8.RuneError {
						buf = utf8.AppendRune(buf, dec)
						i += 6
						continue
					}
				}
				r1 = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r1)
			continue
		default:
			r.pos = i
			return "", r.fail("invalid escape")
		}
		i += 2
	}
	r.pos = len(src)
	return "", r.fail("unterminated string")
}

// appendValidUTF8 appends b with each byte that does not start a valid
// UTF-8 sequence replaced by U+FFFD, as encoding/json decodes a string
// (strings.ToValidUTF8 would replace a run of them by one).
func appendValidUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		c, size := utf8.DecodeRune(b)
		if c == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var v rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

// skipString skips the string literal at r.pos, validating it.
func (r *reader) skipString() error {
	src, start := r.src, r.pos+1
	for i := start; i < len(src); i++ {
		for i < len(src) && !special[src[i]] {
			i++
		}
		if i >= len(src) {
			break
		}
		switch c := src[i]; {
		case c == '"':
			r.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(src) {
				break
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := hex4(src, i+2); !ok {
					r.pos = i
					return r.fail("invalid \\u escape")
				}
				i += 5
			default:
				r.pos = i
				return r.fail("invalid escape")
			}
		case c < 0x20:
			r.pos = i
			return r.fail("control character in string")
		}
	}
	r.pos = len(src)
	return r.fail("unterminated string")
}

// literal reads the literal lit (null, true, false).
func (r *reader) literal(lit string) error {
	if !bytes.HasPrefix(r.src[r.pos:], []byte(lit)) {
		return r.unexpected(lit)
	}
	r.pos += len(lit)
	return nil
}

// number reads a number and returns its text; integer reports that it has
// neither fraction nor exponent.
func (r *reader) number() (text []byte, integer bool, err error) {
	src, start := r.src, r.pos
	i := start
	if i < len(src) && src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case i < len(src) && src[i] >= '1' && src[i] <= '9':
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
	default:
		r.pos = i
		return nil, false, r.unexpected("digit")
	}
	integer = true
	if i < len(src) && src[i] == '.' {
		integer = false
		i++
		d := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		if i == d {
			r.pos = i
			return nil, false, r.unexpected("digit")
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		integer = false
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		d := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		if i == d {
			r.pos = i
			return nil, false, r.unexpected("digit")
		}
	}
	r.pos = i
	return src[start:i], integer, nil
}

// int reads a number as an integer (a fraction is truncated); null reads
// as ok == false.
func (r *reader) int() (n int64, ok bool, err error) {
	if r.err != nil {
		return 0, false, r.err
	}
	switch r.peek() {
	case 'n':
		return 0, false, r.literal("null")
	case '0':
	default:
		return 0, false, r.unexpected("number")
	}
	text, integer, err := r.number()
	if err != nil {
		return 0, false, err
	}
	if integer && len(text) < 19 {
		neg := text[0] == '-'
		if neg {
			text = text[1:]
		}
		for _, c := range text {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, true, nil
	}
	if integer {
		if n, err := strconv.ParseInt(unsafe.String(&text[0], len(text)), 10, 64); err == nil {
			return n, true, nil
		}
	}
	f, err := strconv.ParseFloat(unsafe.String(&text[0], len(text)), 64)
	if err != nil || f != f || f >= 1<<63 || f < -(1<<63) {
		return 0, false, r.fail("number out of range")
	}
	// A fraction is rounded up: the sent text is what the server reads,
	// and a lenient one that rounds max_tokens 1000.5 (or n 1.5) up must
	// not exceed the bound the chain reserved for; a count is billed up.
	return int64(math.Ceil(f)), true, nil
}

// count reads a usage count: a number (int's), or a number written in a
// string ("7000", as some OpenAI-compatible servers' serializers write
// counts: the count the server billed, read as it says); null reads as
// ok == false (no count). A string that holds no number, or one beyond
// the int64 range ("abc", "1e20"), is no count either, and fails the read
// as such a number does: the answer is malformed and billed an estimate,
// never read as a count of 0 tokens billed as the provider's.
func (r *reader) count() (n int64, ok bool, err error) {
	if r.err != nil {
		return 0, false, r.err
	}
	if r.peek() != '"' {
		return r.int()
	}
	s, err := r.string()
	if err != nil {
		return 0, false, err
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f >= 1<<63 || f < -(1<<63) {
		return 0, false, r.fail("count out of range or not a number")
	}
	return int64(math.Ceil(f)), true, nil
}

// floatIn reads a number into *dst and returns dst; null reads as nil
// (dst, in the caller's allocation, is then left alone).
func (r *reader) floatIn(dst *float64) (*float64, error) {
	if r.err != nil {
		return nil, r.err
	}
	switch r.peek() {
	case 'n':
		return nil, r.literal("null")
	case '0':
	default:
		return nil, r.unexpected("number")
	}
	text, _, err := r.number()
	if err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(unsafe.String(&text[0], len(text)), 64)
	if err != nil {
		return nil, r.fail("number out of range")
	}
	*dst = f
	return dst, nil
}

// bool reads a boolean; null reads as false.
func (r *reader) bool() (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	switch r.peek() {
	case 't':
		return true, r.literal("true")
	case 'f':
		return false, r.literal("false")
	case 'n':
		return false, r.literal("null")
	}
	return false, r.unexpected("boolean")
}

// scalar reads a string or a number as its text; null and other values
// read as "".
func (r *reader) scalar() (string, error) {
	switch r.peek() {
	case '"':
		return r.str()
	case '0':
		text, _, err := r.number()
		return string(text), err
	}
	return "", r.skip()
}

// raw skips a value and returns its bytes, a slice of the source with its
// capacity capped; null returns nil.
func (r *reader) raw() ([]byte, error) {
	start := r.next()
	if err := r.skip(); err != nil {
		return nil, err
	}
	end := r.pos
	if end-start == 4 && string(r.src[start:end]) == "null" {
		return nil, nil
	}
	return r.src[start:end:end], nil
}

// skip skips one value, validating it.
func (r *reader) skip() error {
	if r.err != nil {
		return r.err
	}
	return r.skipValue(len(r.stack))
}

func (r *reader) skipValue(depth int) error {
	switch r.peek() {
	case '"':
		return r.skipString()
	case '0':
		_, _, err := r.number()
		return err
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	case '{', '[':
	default:
		return r.unexpected("value")
	}
	if depth >= maxDepth {
		return r.fail("nesting too deep")
	}
	closer := byte('}')
	object := r.src[r.pos] == '{'
	if !object {
		closer = ']'
	}
	r.pos++
	r.ws()
	if r.pos < len(r.src) && r.src[r.pos] == closer {
		r.pos++
		return nil
	}
	for {
		if object {
			if r.peek() != '"' {
				return r.unexpected("member name")
			}
			if err := r.skipString(); err != nil {
				return err
			}
			r.ws()
			if r.pos >= len(r.src) || r.src[r.pos] != ':' {
				return r.unexpected("':'")
			}
			r.pos++
		}
		if err := r.skipValue(depth + 1); err != nil {
			return err
		}
		r.ws()
		if r.pos >= len(r.src) {
			return r.unexpected("',' or '" + string(closer) + "'")
		}
		switch r.src[r.pos] {
		case ',':
			r.pos++
		case closer:
			r.pos++
			return nil
		default:
			return r.unexpected("',' or '" + string(closer) + "'")
		}
	}
}

// end checks that nothing but whitespace follows the top-level value.
func (r *reader) end() error {
	if r.err != nil {
		return r.err
	}
	if len(r.stack) != 0 {
		return r.fail("unclosed object or array")
	}
	r.ws()
	if r.pos != len(r.src) {
		return r.fail("data after the top-level value")
	}
	return nil
}
