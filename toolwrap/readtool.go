package toolwrap

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ReadArtifactName is the name of the tool that reads artifacts back.
const ReadArtifactName = "read_artifact"

const readArtifactSchema = `{"type":"object","properties":{` +
	`"id":{"type":"string","description":"the artifact id, art_..."},` +
	`"offset":{"type":"integer","description":"first line to read, 0-based"},` +
	`"limit":{"type":"integer","description":"how many lines to read"},` +
	`"byte":{"type":"integer","description":"with offset: read that one line on from this byte, for a line cut with …"},` +
	`"grep":{"type":"string","description":"a regular expression (RE2); returns matching lines with their numbers instead of a range"}},` +
	`"required":["id"]}`

// ReadArgs are the arguments of the read_artifact tool.
type ReadArgs struct {
	ID     string `json:"id"`
	Offset int    `json:"offset,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Grep   string `json:"grep,omitempty"`
	// Byte, when positive, reads line Offset alone from this byte on
	// (moved back to the start of its character), as much of it as an
	// answer holds: how a line longer than MaxLineBytes, which range
	// reads and greps cut, is read whole.
	Byte int `json:"byte,omitempty"`
}

// maxPattern bounds a grep pattern's length.
const maxPattern = 1000

// maxEcho bounds how much of an id or a pattern the model gave an answer
// or an error repeats: a hostile argument is never echoed whole.
const maxEcho = 40

// echo quotes at most maxEcho bytes of s.
func echo(s string) string { return strconv.Quote(clip(s, maxEcho)) }

// ReadTool returns the read_artifact tool. A range answer is a header line
// "[art_… lines a-b of n]" followed by the raw lines; a grep answer is a
// header followed by "line: text" for each match (line numbers 0-based,
// usable as offset). Answers are bounded by MaxReadLines, MaxMatches,
// MaxLineBytes and MaxReadBytes, so a read cannot flood the context. An id
// of another run, or an unknown one, is "not found". A number argument may
// be written as a string of an integer or as an integral float, as models
// often write them.
//
// Nothing of an artifact is out of reach, however long its lines (a
// result of minified JSON is one line): a line longer than MaxLineBytes is
// cut with "…" in a range answer, whose header says how to read it on
// ({"id":…,"offset":line,"byte":b}: the line from byte b, as much as an
// answer holds, and how to read on from there); in a grep answer such a
// line is shown from a little before its match, as "line@byte: …text".
func (a *Artifacts) ReadTool() Tool {
	return Tool{
		Name: ReadArtifactName,
		Description: "Read a stored tool result (artifact) by line range, or grep it with a regular expression. " +
			"Use the id given in the excerpt.",
		Parameters: []byte(readArtifactSchema),
		Call:       a.read,
	}
}

func (a *Artifacts) read(ctx context.Context, args string) (string, error) {
	var ra ReadArgs
	var w readWire
	if id := strings.Trim(strings.TrimSpace(args), `"`); ValidID(id) {
		ra.ID = id // frameworks that pass a plain string (langchaingo's __arg1)
	} else if err := json.Unmarshal([]byte(args), &w); err != nil {
		// Said without the input: a type error's message quotes the
		// value whole (a number of 5,000 digits).
		what := "not valid JSON"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			what = fmt.Sprintf("%s must be %s", cmp.Or(te.Field, "the value"), te.Type)
		}
		return "", fmt.Errorf("arguments must be JSON like {\"id\":\"art_...\",\"offset\":0,\"limit\":50}: %s", clip(what, maxEcho))
	} else {
		ra = ReadArgs{ID: w.ID, Grep: w.Grep, Offset: int(w.Offset), Limit: int(w.Limit), Byte: int(w.Byte)}
	}
	return a.Read(ctx, ra)
}

// readWire is ReadArgs as the model writes them: a number may come as a
// string ("offset":"1000") or as an integral float ("limit":5.0).
type readWire struct {
	ID     string   `json:"id"`
	Offset looseInt `json:"offset"`
	Limit  looseInt `json:"limit"`
	Grep   string   `json:"grep"`
	Byte   looseInt `json:"byte"`
}

// looseInt is an integer written as a JSON number (integral: 5, 5.0,
// 5e0) or as a string of one.
type looseInt int

func (n *looseInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	if i, err := strconv.Atoi(s); err == nil {
		*n = looseInt(i)
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		*n = looseInt(f)
		return nil
	}
	return &json.UnmarshalTypeError{Value: "number " + clip(s, maxEcho), Type: reflect.TypeFor[int]()}
}

// Read answers one read_artifact call, bounded as ReadTool describes.
func (a *Artifacts) Read(ctx context.Context, ra ReadArgs) (string, error) {
	c := a.cfg
	t, err := a.getOrRun(ctx, ra.ID)
	if errors.Is(err, ErrEvicted) {
		return "", fmt.Errorf("artifact %s is no longer kept: its store, full, evicted it for newer results; call the tool that produced it again if you need it", echo(ra.ID))
	}
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("artifact %s not found", echo(ra.ID))
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	budget := c.MaxReadBytes
	add := func(line string) bool {
		if len(line)+1 > budget {
			return false
		}
		budget -= len(line) + 1
		b.WriteString(line)
		b.WriteByte('\n')
		return true
	}
	if ra.Grep != "" {
		if len(ra.Grep) > maxPattern {
			return "", fmt.Errorf("grep pattern longer than %d bytes", maxPattern)
		}
		re, err := regexp.Compile(ra.Grep)
		if err != nil {
			// A syntax error quotes the pattern from the fault on: say
			// what is wrong and quote a prefix only.
			msg := "invalid pattern"
			var se *syntax.Error
			if errors.As(err, &se) {
				msg = string(se.Code) + " at " + echo(se.Expr)
			}
			return "", fmt.Errorf("bad grep pattern: %s", msg)
		}
		ms := t.Grep(re, max(ra.Offset, 0), c.MaxMatches+1)
		more := len(ms) > c.MaxMatches
		if more {
			ms = ms[:c.MaxMatches]
		}
		fmt.Fprintf(&b, "[%s grep %s: %d matches shown of %d lines", ra.ID, echo(ra.Grep), len(ms), t.Lines())
		if more {
			b.WriteString("; more matches exist, narrow the pattern or grep from a later offset")
		}
		if slices.ContainsFunc(ms, func(m Match) bool { return len(m.Text) > c.MaxLineBytes }) {
			fmt.Fprintf(&b, "; a line over %d bytes is shown around its match as \"line@byte: …text\", the text from that byte: read it on with {\"id\":%q,\"offset\":line,\"byte\":byte}",
				c.MaxLineBytes, ra.ID)
		}
		b.WriteString("]\n")
		budget -= b.Len()
		for _, m := range ms {
			line := fmt.Sprintf("%d: %s", m.Line, clip(m.Text, c.MaxLineBytes))
			if len(m.Text) > c.MaxLineBytes && m.At > c.MaxLineBytes/4 {
				// The match is past what the cut line shows: show the
				// line from a little before it.
				from := runeStart(m.Text, m.At-c.MaxLineBytes/4)
				line = fmt.Sprintf("%d@%d: …%s", m.Line, from, clip(m.Text[from:], c.MaxLineBytes))
			}
			if !add(line) {
				b.WriteString("[answer size limit reached]\n")
				break
			}
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	limit := ra.Limit
	if limit <= 0 {
		limit = c.ReadLines
	}
	limit = min(limit, c.MaxReadLines)
	offset := max(ra.Offset, 0)
	if offset >= t.Lines() {
		return fmt.Sprintf("[%s has %d lines; offset %d is past the end]", ra.ID, t.Lines(), offset), nil
	}
	if ra.Byte > 0 {
		return a.readLine(t, ra.ID, offset, ra.Byte), nil
	}
	lines := t.Range(offset, limit)
	room := budget - 100 // the header
	if slices.ContainsFunc(lines, func(l string) bool { return len(l) > c.MaxLineBytes }) {
		room -= 200 // and its note on a cut line
	}
	var body strings.Builder
	shown := 0
	cutLine, cutAt, cutLen := -1, 0, 0 // the first line cut
	for i, l := range lines {
		full := len(l)
		cl := clip(l, c.MaxLineBytes)
		if body.Len()+len(cl)+1 > room {
			if shown > 0 {
				break
			}
			// The first line, cut, is over what the answer holds
			// (MaxLineBytes above MaxReadBytes): cut it to fit, so
			// that the answer shows a line and how to read it on.
			cl = clip(l, room-1-len("…"))
		}
		l = cl
		if full > len(l) && cutLine < 0 {
			cutLine, cutAt, cutLen = offset+i, len(l)-len("…"), full
		}
		body.WriteString(l)
		body.WriteByte('\n')
		shown++
	}
	fmt.Fprintf(&b, "[%s lines %d-%d of %d", ra.ID, offset, offset+shown-1, t.Lines())
	if cutLine >= 0 {
		fmt.Fprintf(&b, "; lines over %d bytes are cut with …: read line %d (%d bytes) on with {\"id\":%q,\"offset\":%d,\"byte\":%d}",
			c.MaxLineBytes, cutLine, cutLen, ra.ID, cutLine, cutAt)
	}
	b.WriteString("]\n")
	b.WriteString(body.String())
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// readLine answers a read of line i of t from byte from on: as much of
// the line as an answer holds, cut on character boundaries, and how to
// read on.
func (a *Artifacts) readLine(t *Text, id string, i, from int) string {
	line := t.Line(i)
	if from >= len(line) {
		return fmt.Sprintf("[%s line %d has %d bytes; byte %d is past its end]", id, i, len(line), from)
	}
	from = runeStart(line, from)
	to := len(line)
	if room := max(a.cfg.MaxReadBytes-200, 1); to-from > room {
		to = runeStart(line, from+room)
		if to == from { // (a room smaller than a character)
			_, n := utf8.DecodeRuneInString(line[from:])
			to = from + n
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s line %d bytes %d-%d of %d", id, i, from, to, len(line))
	if to < len(line) {
		fmt.Fprintf(&b, "; read on with {\"id\":%q,\"offset\":%d,\"byte\":%d}", id, i, to)
	}
	b.WriteString("]\n")
	b.WriteString(line[from:to])
	return b.String()
}

// runeStart returns i, in [0, len(s)], moved back to the start of the
// character it falls in: at most utf8.UTFMax-1 bytes back, and only into
// a valid multi-byte character. A byte of invalid UTF-8 is a character of
// its own, so that a line of them is cut where asked, not at its start
// (before, a line of 700 stray continuation bytes was cut to nothing and
// could never be read on).
func runeStart(s string, i int) int {
	i = min(max(i, 0), len(s))
	if i == 0 || i == len(s) || utf8.RuneStart(s[i]) {
		return i
	}
	for j := i - 1; j >= 0 && j > i-utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			if r, size := utf8.DecodeRuneInString(s[j:]); (r != utf8.RuneError || size > 1) && j+size > i {
				return j
			}
			break
		}
	}
	return i
}
