package middleware

import "bytes"

// Equal reports whether m and o are the same message, field by field, so
// that no adapter can tell them apart: nil Parts differ from empty Parts
// (a text content from an empty array on the wire), and a part's nil Data
// from empty Data (no bytes from an empty binary part). It is the one
// message equality of tokenwise; adapters use it to tell whether a layer
// changed a request, the compactor whether a prefix is still the one it
// summarised.
func (m *Message) Equal(o *Message) bool {
	if m.Role != o.Role || m.Content != o.Content || m.Name != o.Name || m.ToolCallID != o.ToolCallID ||
		m.Reasoning != o.Reasoning || m.Refusal != o.Refusal || len(m.ToolCalls) != len(o.ToolCalls) ||
		(m.FunctionCall == nil) != (o.FunctionCall == nil) || (m.FunctionCall != nil && *m.FunctionCall != *o.FunctionCall) ||
		len(m.Parts) != len(o.Parts) || (m.Parts == nil) != (o.Parts == nil) {
		return false
	}
	for i := range m.ToolCalls {
		if m.ToolCalls[i] != o.ToolCalls[i] {
			return false
		}
	}
	for i := range m.Parts {
		p, q := &m.Parts[i], &o.Parts[i]
		if p.Type != q.Type || p.Text != q.Text || p.URL != q.URL || p.Detail != q.Detail || p.MIMEType != q.MIMEType ||
			(p.Data == nil) != (q.Data == nil) || !bytes.Equal(p.Data, q.Data) {
			return false
		}
	}
	return true
}

// EqualMessages reports whether a and b hold equal messages ([Message.Equal]),
// in order; the common case, the very same slice, costs nothing.
func EqualMessages(a, b []Message) bool { return equalAll(a, b, (*Message).Equal) }

// Equal reports whether t and o describe the same tool (nil and empty
// Parameters alike: no schema).
func (t *Tool) Equal(o *Tool) bool {
	return t.Name == o.Name && t.Description == o.Description && t.Strict == o.Strict && bytes.Equal(t.Parameters, o.Parameters)
}

// EqualTools reports whether a and b hold equal tools ([Tool.Equal]), in
// order; the very same slice costs nothing.
func EqualTools(a, b []Tool) bool { return equalAll(a, b, (*Tool).Equal) }

// equalAll reports whether a and b are equal element by element under eq;
// the very same slice is equal without a look at its elements.
func equalAll[T any](a, b []T, eq func(x, y *T) bool) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if !eq(&a[i], &b[i]) {
			return false
		}
	}
	return true
}
