package policies

import (
	"bytes"
	"fmt"
)

// # Limits
//
// A policy file is checked on its bytes before the YAML parser sees it, so
// that any input within MaxFileSize loads or fails in milliseconds, whatever
// its shape (the parser's cost grows with the square of the nesting depth
// and with the number of entries):
//
//   - at most maxNesting levels of block nesting, estimated from the
//     indentation and the indicators (- ? :) that open a line;
//   - at most maxFlowOpens flow collections ([ and {) in the whole file,
//     which bounds their nesting whatever the quoting;
//   - at most maxEntries entries: non-blank, non-comment lines plus commas;
//   - at most maxWidth lines directly under one parent (the parser checks
//     each key of a block mapping against all the earlier ones).
//
// The estimates never count less than the parser will build, so they may
// refuse a strangely formatted file that the parser would read; a real
// policy uses a small fraction of each limit.
const (
	maxNesting   = 64
	maxFlowOpens = 1000
	maxEntries   = 10000
	maxWidth     = 1000
)

type indentLevel struct{ indent, depth, children int }

// prescan returns the first limit b exceeds, as a problem of file, or nil.
func prescan(b []byte, file string) *Problem {
	if len(b) > MaxFileSize {
		return &Problem{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize), Err: ErrTooLarge}
	}
	var stack []indentLevel
	rootChildren := 0
	blockScalar := -1 // indent of the line that opened a block scalar, -1 outside one
	opens, entries := 0, 0
	for lineNo := 1; len(b) > 0; lineNo++ {
		// YAML breaks lines at \n, \r\n and a lone \r.
		line := b
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			next := i + 1
			if b[i] == '\r' && next < len(b) && b[next] == '\n' {
				next++
			}
			line, b = b[:i], b[next:]
		} else {
			b = nil
		}
		// Brackets and commas count everywhere, block scalars and quoted
		// text included: the guess of what is text must not hide them.
		opens += bytes.Count(line, []byte{'['}) + bytes.Count(line, []byte{'{'})
		entries += bytes.Count(line, []byte{','})
		if opens > maxFlowOpens {
			return &Problem{File: file, Line: lineNo, Column: 1, Err: ErrTooDeep,
				Msg: fmt.Sprintf("more than %d flow collections ([ or {); write the policy in block style", maxFlowOpens)}
		}
		indent := 0
		for indent < len(line) && (line[indent] == ' ' || line[indent] == '\t') {
			indent++
		}
		rest := bytes.TrimRight(line[indent:], " \t\r")
		if len(rest) == 0 {
			continue
		}
		if blockScalar >= 0 {
			if indent > blockScalar {
				continue
			}
			blockScalar = -1
		}
		if rest[0] == '#' {
			continue
		}
		if entries++; entries > maxEntries {
			return &Problem{File: file, Line: lineNo, Column: indent + 1, Err: ErrTooLarge,
				Msg: fmt.Sprintf("more than %d entries", maxEntries)}
		}
		indicators := 0
		for p := rest; len(p) > 0 && (p[0] == '-' || p[0] == '?' || p[0] == ':') && (len(p) == 1 || p[1] == ' ' || p[1] == '\t'); {
			indicators++
			p = bytes.TrimLeft(p[1:], " \t")
			if indicators > maxNesting {
				break
			}
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		depth, children := indicators+1, &rootChildren
		if len(stack) > 0 {
			depth += stack[len(stack)-1].depth
			children = &stack[len(stack)-1].children
		}
		if *children++; *children > maxWidth {
			return &Problem{File: file, Line: lineNo, Column: indent + 1, Err: ErrTooLarge,
				Msg: fmt.Sprintf("more than %d entries in one mapping or list", maxWidth)}
		}
		if depth > maxNesting {
			return &Problem{File: file, Line: lineNo, Column: indent + 1, Err: ErrTooDeep,
				Msg: fmt.Sprintf("nested more than %d levels deep", maxNesting)}
		}
		stack = append(stack, indentLevel{indent: indent, depth: depth})
		if opensBlockScalar(rest) {
			blockScalar = indent
		}
	}
	return nil
}

// opensBlockScalar reports whether a line ends in a block scalar header
// (| or >, with optional chomping and indentation indicators), comments
// aside.
func opensBlockScalar(line []byte) bool {
	if i := bytes.Index(line, []byte(" #")); i >= 0 {
		line = bytes.TrimRight(line[:i], " \t")
	}
	f := line
	if i := bytes.LastIndexAny(line, " \t"); i >= 0 {
		f = line[i+1:]
	}
	if len(f) == 0 || (f[0] != '|' && f[0] != '>') {
		return false
	}
	for _, c := range f[1:] {
		if c != '-' && c != '+' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
