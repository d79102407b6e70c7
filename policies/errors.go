package policies

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalid matches every *ValidationError with errors.Is.
var ErrInvalid = errors.New("tokenwise/policies: invalid policy")

// Problem is one thing wrong with a policy.
type Problem struct {
	// Path is the field path, e.g. "routing.rules[1].when.regex" or
	// `models["gpt-4.1"].input_per_1m`. Empty for a problem with the file
	// as a whole (a syntax error).
	Path string
	// File is the name the policy was loaded under. Empty for a policy
	// built in code.
	File string
	// Line and Column are 1-based; zero when unknown.
	Line, Column int
	// Msg says what is wrong and, where possible, how to fix it. It quotes
	// at most a short prefix of a value from the file.
	Msg string
	// Err is the sentinel of the problem when it has one (ErrTooLarge,
	// ErrTooDeep, ErrNotPolicy, ErrNotRegularFile, ErrExtendsEscape, ...),
	// so that errors.Is sees through a *ValidationError; nil otherwise.
	Err error
}

// String formats the problem as "file:line:col: path: message", leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(":")
		if p.Column > 0 {
			b.WriteString(strconv.Itoa(p.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a policy, sorted by position.
// It matches ErrInvalid with errors.Is.
type ValidationError struct {
	Problems []Problem
}

// Error lists every problem on its own line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the errors of the problems that carry one, so that
// errors.Is(err, ErrNotRegularFile) and the like match.
func (e *ValidationError) Unwrap() []error {
	var out []error
	for _, p := range e.Problems {
		if p.Err != nil {
			out = append(out, p.Err)
		}
	}
	return out
}

// maxEcho is the most of a value from a file that a message quotes.
const maxEcho = 40

// clip shortens s to maxEcho bytes (on a rune boundary) plus "…", so that
// a message never echoes a long value from the file.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	i := maxEcho
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
}

// position is a 1-based line and column.
type position struct{ line, col int }

// sourceMap maps field paths of a loaded policy to their place in the file.
type sourceMap struct {
	file string
	pos  map[string]position
	// files names the file of each path of a policy merged by extends
	// (see extends.go); nil for a single file.
	files map[string]string
}

// locate returns the position of path, or of its nearest recorded ancestor.
func (s *sourceMap) locate(path string) (position, bool) {
	if s == nil {
		return position{}, false
	}
	for {
		if p, ok := s.pos[path]; ok {
			return p, true
		}
		if path == "" {
			return position{}, false
		}
		path = parentPath(path)
	}
}

// joinPath appends a struct field name to a path.
func joinPath(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

// keyPath appends a map key to a path: models.gpt-4o, but
// models["gpt-4.1"] when the key holds characters other than letters,
// digits, '-' and '_'.
func keyPath(parent, key string) string {
	simple := key != ""
	for i := 0; i < len(key) && simple; i++ {
		c := key[i]
		simple = c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if simple {
		return joinPath(parent, key)
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

// indexPath appends a list index to a path.
func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last element of a path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "\"]") {
		// models["a.b"]: find the opening quote of the key.
		body := path[:len(path)-2]
		for i := len(body) - 1; i >= 1; i-- {
			if body[i] == '"' && body[i-1] == '[' {
				if _, err := strconv.Unquote(body[i:] + "\""); err == nil {
					return path[:i-1]
				}
			}
		}
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// under reports whether path is p or lies below it.
func under(path, p string) bool {
	if p == "" || path == p {
		return true
	}
	return strings.HasPrefix(path, p) && (path[len(p)] == '.' || path[len(p)] == '[')
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to s, or
// "" when none is close: within a small edit distance, or starting with s
// (as "o200k_base" does with "o200k").
func suggest(s string, candidates []string) string {
	if c := Suggest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// Suggest returns the candidate that s is most likely a typo of ("devops"
// for "devps"), by the rule of the loader's "did you mean": within a small
// edit distance, or starting with s (as "o200k_base" does with "o200k");
// "" when none is close. A candidate equal to s is passed over.
func Suggest(s string, candidates []string) string {
	if len(s) > 2*maxEcho {
		return "" // no name is that long; spare the edit distances
	}
	ls := strings.ToLower(s)
	best, bestD := "", -1
	prefix := ""
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if c == s {
			continue
		}
		if d := editDistance(ls, lc); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
		if prefix == "" && len(ls) >= 3 && strings.HasPrefix(lc, ls) {
			prefix = c
		}
	}
	if bestD >= 0 && bestD <= max(1, min(3, len(s)/3)) {
		return best
	}
	return prefix
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
