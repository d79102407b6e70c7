package policies

import (
	_ "embed"
	"fmt"
	"io"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns a fresh copy of the embedded default policy: calls stay
// on the model their caller asked for, and a caller of gpt-4o has its
// tool-selection turns on gpt-4o-mini; at most 10 LLM calls and 5 minutes
// per run, 30s per attempt (a stream's first token and its gaps 30s each)
// and 60s per call with its retries and fallback, 10,000 input tokens per
// request, a 1h response cache, a fallback to gpt-4o-mini with 3 attempts,
// a circuit breaker per model (5 failures in a row open it for 30s), and up
// to 4 tools in parallel with 30s each. See default.yaml (DefaultYAML);
// examples/policies/default.yaml is the same policy.
func Default() *Policy {
	p, err := LoadBytes(defaultYAML, "default.yaml")
	if err != nil {
		panic("tokenwise/policies: embedded default.yaml: " + err.Error()) // caught by the package tests
	}
	return p
}

// LoadFile reads and validates the policy file at path; see LoadBytes. A
// path that is not a regular file (a FIFO, a device, a directory) is an
// error matching ErrNotRegularFile, and a file larger than MaxFileSize one
// matching ErrTooLarge; neither is read.
func LoadFile(path string) (*Policy, error) {
	b, err := readPolicyFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/policies: %w", err)
	}
	return LoadBytes(b, path)
}

// Load reads a policy from r and validates it; name is used in messages
// (typically the file name). See LoadBytes.
func Load(r io.Reader, name string) (*Policy, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("tokenwise/policies: reading %s: %w", name, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, name, MaxFileSize)
	}
	return LoadBytes(b, name)
}

// LoadBytes decodes a policy from YAML or JSON (JSON is read as YAML) and
// validates it. Decoding is strict: unknown keys and values of the wrong
// type are errors. Every problem of the file — syntax aside, which stops
// the parse — is reported at once in a *ValidationError, each with its
// field path and name:line:column. name is used in messages.
//
// Extends is kept as data and not resolved here.
func LoadBytes(b []byte, name string) (*Policy, error) {
	p := &Policy{}
	src := &sourceMap{file: name, pos: map[string]position{}}
	probs, parsed := decodeDocument(b, p, src)
	if !parsed {
		return nil, &ValidationError{Problems: probs}
	}
	p.src = src
	for _, vp := range p.problems(probs) {
		if !shadowed(vp, probs) {
			probs = append(probs, vp)
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ValidationError{Problems: probs}
	}
	return p, nil
}

// shadowed reports whether a validation problem sits at or below a path
// that already failed to decode: its zero value would only repeat it. (The
// checks that read a failed value beside the one they report on are skipped
// by problems itself.)
func shadowed(vp Problem, decodeProbs []Problem) bool {
	for _, dp := range decodeProbs {
		if dp.Path != "" && dp.File == vp.File && under(vp.Path, dp.Path) {
			return true
		}
	}
	return false
}

// DefaultYAML returns the embedded default policy file, comments
// included: the starting point of a policy directory (tokenwise gateway
// init writes it as default.yaml).
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }
