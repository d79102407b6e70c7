package toolwrap

import (
	"bytes"
	"regexp"
	"unsafe"
)

// Text is an artifact's content with an index of its lines, so that a
// range of lines is found without scanning. Lines are split on "\n"; a
// trailing newline does not start an extra line. A Text is immutable and
// safe for concurrent use.
type Text struct {
	data   []byte
	starts []int // start offset of each line
}

// NewText indexes data. It keeps data: the caller must not modify it
// afterwards.
func NewText(data []byte) *Text {
	t := &Text{data: data}
	if len(data) == 0 {
		return t
	}
	n := bytes.Count(data, []byte{'\n'})
	t.starts = make([]int, 0, n+1)
	t.starts = append(t.starts, 0)
	for off := 0; ; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
		if off >= len(data) {
			break
		}
		t.starts = append(t.starts, off)
	}
	return t
}

// Bytes returns the content. The caller must not modify it.
func (t *Text) Bytes() []byte { return t.data }

// Size returns the content's size in bytes.
func (t *Text) Size() int { return len(t.data) }

// memSize is the memory t holds: its bytes and its line index (a word a
// line: a text of line breaks only holds nine times its size).
func (t *Text) memSize() int64 {
	return int64(len(t.data)) + int64(cap(t.starts))*int64(unsafe.Sizeof(0))
}

// Lines returns the number of lines.
func (t *Text) Lines() int { return len(t.starts) }

// Line returns line i (0-based) without its newline, or "" out of range.
func (t *Text) Line(i int) string {
	if i < 0 || i >= len(t.starts) {
		return ""
	}
	end := len(t.data)
	if i+1 < len(t.starts) {
		end = t.starts[i+1] - 1
	} else if end > 0 && t.data[end-1] == '\n' {
		end--
	}
	return string(t.data[t.starts[i]:end])
}

// Range returns up to limit lines starting at line offset (0-based).
func (t *Text) Range(offset, limit int) []string {
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 || offset >= len(t.starts) {
		return nil
	}
	end := offset + min(limit, len(t.starts)-offset) // (offset+limit may overflow)
	out := make([]string, 0, end-offset)
	for i := offset; i < end; i++ {
		out = append(out, t.Line(i))
	}
	return out
}

// Match is a line found by Grep.
type Match struct {
	Line int // 0-based line number
	Text string
	At   int // byte offset in Text of the leftmost match
}

// Grep returns up to limit lines matching re, in order, starting at line
// from (0-based). limit <= 0 means no bound.
func (t *Text) Grep(re *regexp.Regexp, from, limit int) []Match {
	var out []Match
	for i := max(from, 0); i < len(t.starts); i++ {
		end := len(t.data)
		if i+1 < len(t.starts) {
			end = t.starts[i+1] - 1
		} else if end > 0 && t.data[end-1] == '\n' {
			end--
		}
		line := t.data[t.starts[i]:end]
		if re.Match(line) {
			out = append(out, Match{Line: i, Text: t.Line(i), At: re.FindIndex(line)[0]})
			if limit > 0 && len(out) >= limit {
				break
			}
		}
	}
	return out
}
