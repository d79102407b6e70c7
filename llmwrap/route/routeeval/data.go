package routeeval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/tokenwise/tokenwise/middleware"
)

// ErrData is matched (errors.Is) by every error about a labelled file's
// content; the error is a *LineError naming the line.
var ErrData = errors.New("routeeval: bad labelled data")

// ErrNoGap is returned when the strong model is not more accurate than the
// weak one on the data: the share of the gap recovered (PGR) is undefined.
var ErrNoGap = errors.New("routeeval: the strong model is not more accurate than the weak one on this data")

// LineError is a problem of one line of a labelled file.
type LineError struct {
	File string // may be empty
	Line int    // 1-based
	Msg  string
}

func (e *LineError) Error() string {
	if e.File != "" {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Is matches ErrData.
func (e *LineError) Is(target error) bool { return target == ErrData }

// Example is one labelled query.
type Example struct {
	// Line is the 1-based line of the file it was read from.
	Line int
	// Text is what scorers read: the prompt, or the last user message.
	Text string
	// Messages is the conversation: the prompt as one user message, or
	// the messages of the line.
	Messages []middleware.Message
	// Category is the optional category ("" when the line has none).
	Category string
	// Weak and Strong are the quality of each model's answer in [0,1]:
	// 1 or 0 for correctness flags.
	Weak, Strong float64
}

// Request returns a request of the example to model, without tools.
func (e *Example) Request(model string) *middleware.Request {
	return &middleware.Request{Model: model, Messages: e.Messages}
}

// Gain is what routing the example to the strong model adds: Strong − Weak.
func (e *Example) Gain() float64 { return e.Strong - e.Weak }

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wireLine struct {
	Prompt        *string       `json:"prompt"`
	Messages      []wireMessage `json:"messages"`
	Category      string        `json:"category"`
	WeakCorrect   *bool         `json:"weak_correct"`
	StrongCorrect *bool         `json:"strong_correct"`
	WeakScore     *float64      `json:"weak_score"`
	StrongScore   *float64      `json:"strong_score"`
}

// ReadFile reads a labelled JSONL file; see Read.
func ReadFile(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ex, err := Read(f)
	var le *LineError
	if errors.As(err, &le) {
		le.File = path
	}
	return ex, err
}

// Read reads labelled JSONL: one JSON object per line (blank lines are
// skipped), with
//
//   - the query: "prompt" (a string), or "messages" (OpenAI-style, each
//     {"role", "content"}; content a string or a list of parts whose
//     "text" parts count), of which the last user message is scored;
//   - each model's quality: "weak_correct" and "strong_correct" (booleans),
//     or "weak_score" and "strong_score" (numbers in [0,1]); a model has
//     one of the two, not both;
//   - optionally "category" (a string).
//
// Other fields are ignored. A malformed line is a *LineError (ErrData)
// naming it; a file without examples is an error too.
func Read(r io.Reader) ([]Example, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []Example
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		e, msg := parseLine(b)
		if msg != "" {
			return nil, &LineError{Line: n, Msg: msg}
		}
		e.Line = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, &LineError{Line: n + 1, Msg: err.Error()}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no examples", ErrData)
	}
	return out, nil
}

func parseLine(b []byte) (Example, string) {
	var w wireLine
	var e Example
	if err := json.Unmarshal(b, &w); err != nil {
		return e, "not a JSON object: " + err.Error()
	}
	switch {
	case w.Prompt != nil && w.Messages != nil:
		return e, `both "prompt" and "messages": give one`
	case w.Prompt != nil:
		e.Text = *w.Prompt
		e.Messages = []middleware.Message{{Role: middleware.RoleUser, Content: e.Text}}
	case len(w.Messages) > 0:
		for i, m := range w.Messages {
			text, ok := contentText(m.Content)
			if !ok {
				return e, fmt.Sprintf("messages[%d].content: not a string nor a list of parts", i)
			}
			if m.Role == "" {
				return e, fmt.Sprintf("messages[%d]: no role", i)
			}
			e.Messages = append(e.Messages, middleware.Message{Role: middleware.Role(m.Role), Content: text})
		}
		last := -1
		for i := range e.Messages {
			if e.Messages[i].Role == middleware.RoleUser {
				last = i
			}
		}
		if last < 0 {
			return e, "messages: no user message to score"
		}
		e.Text = e.Messages[last].Content
	default:
		return e, `no "prompt" nor "messages"`
	}
	var msg string
	if e.Weak, msg = quality("weak", w.WeakCorrect, w.WeakScore); msg != "" {
		return e, msg
	}
	if e.Strong, msg = quality("strong", w.StrongCorrect, w.StrongScore); msg != "" {
		return e, msg
	}
	e.Category = w.Category
	return e, ""
}

func quality(who string, correct *bool, score *float64) (float64, string) {
	switch {
	case correct != nil && score != nil:
		return 0, fmt.Sprintf("both %s_correct and %s_score: give one", who, who)
	case correct != nil:
		if *correct {
			return 1, ""
		}
		return 0, ""
	case score != nil:
		if math.IsNaN(*score) || *score < 0 || *score > 1 {
			return 0, fmt.Sprintf("%s_score %v not in [0,1]", who, *score)
		}
		return *score, ""
	}
	return 0, fmt.Sprintf("no %s_correct nor %s_score", who, who)
}

// contentText reads a message content: a string, or parts of which the
// text ones are joined with newlines.
func contentText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", false
	}
	var b []byte
	for _, p := range parts {
		if p.Type != "text" {
			continue
		}
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, p.Text...)
	}
	return string(b), true
}
