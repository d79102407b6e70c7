package cache

import (
	"encoding/binary"
	"errors"

	"github.com/tokenwise/tokenwise/middleware"
)

// Entry is one cached answer. Once handed to a [Store] it is immutable:
// stores may return the same *Entry to many callers, and the cache layer
// serves deep copies of its Response.
type Entry struct {
	// Request is the canonical encoding of the request
	// ([AppendCanonical]); a lookup is a hit only when it equals the
	// request's own encoding.
	Request []byte
	// Response is the complete answer as the provider gave it, usage
	// included; FromCache is false and Native nil.
	Response middleware.Response
}

// entryVersion prefixes the binary form of an Entry. Version 2 adds the
// message's refusal; version 1 entries (without it) are still read.
const entryVersion = 2

// ErrCorruptEntry is returned by [Entry.UnmarshalBinary] for bytes that are
// not an entry of this version.
var ErrCorruptEntry = errors.New("tokenwise/cache: corrupt or foreign cache entry")

// MarshalBinary encodes the entry for a shared store (Redis).
func (e *Entry) MarshalBinary() ([]byte, error) { return e.AppendBinary(nil) }

// AppendBinary appends the binary form of the entry to dst.
func (e *Entry) AppendBinary(dst []byte) ([]byte, error) {
	r := &e.Response
	dst = append(dst, entryVersion)
	dst = appendBytes(dst, e.Request)
	dst = appendStr(dst, r.ID)
	dst = appendStr(dst, r.Model)
	dst = appendStr(dst, r.FinishReason)
	for _, n := range [...]int64{r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CachedInputTokens,
		r.Usage.CacheWriteTokens, r.Usage.ReasoningTokens} {
		dst = binary.AppendVarint(dst, n)
	}
	dst = appendMessage(dst, &r.Message)
	return appendStr(dst, r.Refusal), nil
}

// UnmarshalBinary decodes an entry written by MarshalBinary. The entry
// shares no memory with data.
func (e *Entry) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	version := d.byte()
	if version != entryVersion && version != 1 {
		return ErrCorruptEntry
	}
	var out Entry
	out.Request = d.bytes()
	r := &out.Response
	r.ID, r.Model, r.FinishReason = d.str(), d.str(), d.str()
	for _, p := range [...]*int64{&r.Usage.InputTokens, &r.Usage.OutputTokens, &r.Usage.CachedInputTokens,
		&r.Usage.CacheWriteTokens, &r.Usage.ReasoningTokens} {
		*p = d.varint()
	}
	m := &r.Message
	m.Role = middleware.Role(d.str())
	m.Content = d.str()
	if n := d.count(); n > 0 {
		m.Parts = make([]middleware.Part, n)
		for i := range m.Parts {
			p := &m.Parts[i]
			p.Type, p.Text, p.URL, p.Detail, p.MIMEType = d.str(), d.str(), d.str(), d.str(), d.str()
			p.Data = d.bytes()
		}
	}
	m.Name = d.str()
	if n := d.count(); n > 0 {
		m.ToolCalls = make([]middleware.ToolCall, n)
		for i := range m.ToolCalls {
			c := &m.ToolCalls[i]
			c.ID, c.Name, c.Arguments = d.str(), d.str(), d.str()
		}
	}
	m.ToolCallID = d.str()
	m.Reasoning = d.str()
	if version >= 2 {
		r.Refusal = d.str()
	}
	if d.bad || len(d.b) != 0 {
		return ErrCorruptEntry
	}
	*e = out
	return nil
}

// size estimates the memory an entry holds, for the byte bound.
func (e *Entry) size() int64 {
	r := &e.Response
	m := &r.Message
	n := 256 + len(e.Request) + len(r.ID) + len(r.Model) + len(r.FinishReason) + len(m.Content) + len(m.Reasoning) + len(r.Refusal) + len(m.Name)
	for _, p := range m.Parts {
		n += 96 + len(p.Text) + len(p.URL) + len(p.Data) + len(p.Type) + len(p.MIMEType)
	}
	for _, c := range m.ToolCalls {
		n += 48 + len(c.ID) + len(c.Name) + len(c.Arguments)
	}
	return int64(n)
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.bad = true
		d.b = nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) str() string { return string(d.take(d.uvarint())) }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	return append([]byte{}, d.take(n-1)...)
}

func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every element takes at least one byte
		d.bad = true
		d.b = nil
		return 0
	}
	return int(n)
}
