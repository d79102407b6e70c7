package policies

import (
	"fmt"
	"reflect"
)

// Source locates the fields of a YAML document decoded by [DecodeStrict],
// so that a caller's own semantic checks report their problems at the
// right line, like the policy loader's.
type Source struct{ src *sourceMap }

// DecodeStrict decodes b, one YAML (or JSON) document, into v (a pointer
// to a struct whose fields carry yaml tags) with the policy loader's strict
// rules: unknown keys (with a suggestion for a typo), values of the wrong
// type, durations without a unit and oversized documents are problems,
// each with its field path and name:line:column. It is how other files of
// tokenwise (the gateway's) get the same checks as a policy. The problems
// are sorted by position; parsed is false after a syntax error.
func DecodeStrict(b []byte, name string, v any) (src *Source, probs []Problem, parsed bool) {
	s := &sourceMap{file: name, pos: map[string]position{}}
	probs, parsed = decodeDocument(b, v, s)
	sortProblems(probs)
	return &Source{src: s}, probs, parsed
}

// Problem returns a problem at path (a field path as DecodeStrict reports
// them, e.g. "upstreams[1].base_url"), placed at the line of that field or
// of its nearest ancestor present in the document.
func (s *Source) Problem(path, format string, args ...any) Problem {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if s == nil || s.src == nil {
		return p
	}
	p.File = s.src.file
	if pos, ok := s.src.locate(path); ok {
		p.Line, p.Column = pos.line, pos.col
	}
	return p
}

// Invalid returns a *ValidationError of probs sorted by position, or nil
// when there are none.
func Invalid(probs []Problem) error {
	if len(probs) == 0 {
		return nil
	}
	probs = append([]Problem(nil), probs...)
	sortProblems(probs)
	return &ValidationError{Problems: probs}
}

// StructSchema returns the JSON Schema (draft 2020-12) of a struct type
// that DecodeStrict decodes, built like the policy schema (see JSONSchema):
// objects allow only their own keys, durations need a unit, byte sizes and
// USD amounts take their string forms, counts are non-negative.
func StructSchema(t reflect.Type) map[string]any { return schemaOf(t) }
