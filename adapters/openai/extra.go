package openai

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// extraMember is a top-level request member that the core does not model
// and that is not neutral (middleware.NeutralField): it may change the
// answer, so it goes to Request.Extra.
type extraMember struct {
	name  string
	value []byte // wire JSON
}

// canonicalExtra renders the members as canonical JSON: an object with
// sorted keys, each value re-encoded compactly with its objects' keys
// sorted (numbers keep their text). nil when there is none.
func canonicalExtra(ms []extraMember) []byte {
	if len(ms) == 0 {
		return nil
	}
	slices.SortStableFunc(ms, func(a, b extraMember) int { return strings.Compare(a.name, b.name) })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(appendString(nil, m.name))
		b.WriteByte(':')
		b.Write(canonicalValue(m.value))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func canonicalValue(raw []byte) []byte {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return raw // the scanner validated it; keep the bytes
	}
	out, err := json.Marshal(v) // map keys come out sorted
	if err != nil {
		return raw
	}
	return out
}
