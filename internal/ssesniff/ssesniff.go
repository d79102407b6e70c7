// Package ssesniff tells an event stream from a JSON body by its first
// bytes, for the adapters that read what a provider sends whatever its
// Content-Type says (a proxy may label a stream application/json, which
// go-openai reads as a stream all the same).
package ssesniff

import "bufio"

// BOM is the UTF-8 encoding of the byte order mark, U+FEFF, which the SSE
// spec drops at the start of a stream.
const BOM = "\xef\xbb\xbf"

// prefixes are the starts of an event stream's lines but blank ones: a
// comment, and the fields of the SSE spec.
var prefixes = [...]string{":", "data:", "event:", "id:", "retry:"}

// Sniff reports whether the body br reads begins as an event stream does:
// its first bytes that are not white space (nor a byte order mark) are a
// comment or an SSE field name and its colon. It peeks, reading nothing;
// a body whose white space fills br's buffer is not a stream.
func Sniff(br *bufio.Reader) bool {
	skip := 0
	for skip < br.Size()-len(BOM) {
		b, _ := br.Peek(skip + 1)
		if len(b) <= skip {
			return false // the end of the body, or a read error
		}
		switch b[skip] {
		case ' ', '\t', '\r', '\n':
			skip++
			continue
		case BOM[0]:
			if b, _ = br.Peek(skip + len(BOM)); string(b[skip:]) != BOM {
				return false
			}
			skip += len(BOM)
			continue
		}
		for _, p := range prefixes {
			if p[0] == b[skip] {
				b, _ = br.Peek(skip + len(p))
				return string(b[skip:]) == p
			}
		}
		return false
	}
	return false
}
