package langchaingo

import (
	"encoding/binary"
	"math"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/middleware"
)

// NativeFormat is the format of an inner model's response kept by a store
// (middleware.NativeMarshaler, middleware.StoredNative): every choice with
// its GenerationInfo, the values' Go types kept. It is a compact binary
// encoding, decoded with a handful of allocations on a hit.
const NativeFormat = "langchaingo.content_response/v1"

var _ middleware.NativeMarshaler = (*nativeResponse)(nil)

// Choice flags and GenerationInfo value kinds of the encoding.
const (
	flagNil byte = 1 << iota
	flagFuncCall
	flagFuncIsFirstTool // FuncCall aliases ToolCalls[0].FunctionCall
	flagGenInfo
)

const (
	kindNil byte = iota
	kindString
	kindBool
	kindInt
	kindInt32
	kindInt64
	kindUint64
	kindFloat32
	kindFloat64
)

// MarshalNative implements middleware.NativeMarshaler: the inner response,
// every choice, with GenerationInfo values of the types the backends use
// (strings, bools, int, int32, int64, uint64, float32, float64, nil), each
// kept with its Go type. A response carrying a value of another type is
// not kept (ok false): a hit then has the core view only.
func (n *nativeResponse) MarshalNative() (string, []byte, bool) {
	b := binary.AppendUvarint(nil, uint64(max(n.n, 0)))
	b = binary.AppendUvarint(b, uint64(len(n.raw.Choices)))
	for _, c := range n.raw.Choices {
		if c == nil {
			b = append(b, flagNil)
			continue
		}
		var flags byte
		switch {
		case c.FuncCall != nil && len(c.ToolCalls) > 0 && c.FuncCall == c.ToolCalls[0].FunctionCall:
			flags |= flagFuncIsFirstTool
		case c.FuncCall != nil:
			flags |= flagFuncCall
		}
		if c.GenerationInfo != nil {
			flags |= flagGenInfo
		}
		b = append(b, flags)
		b = appendStr(appendStr(appendStr(b, c.Content), c.StopReason), c.ReasoningContent)
		if flags&flagFuncCall != 0 {
			b = appendStr(appendStr(b, c.FuncCall.Name), c.FuncCall.Arguments)
		}
		b = binary.AppendUvarint(b, uint64(len(c.ToolCalls)))
		for _, tc := range c.ToolCalls {
			b = appendStr(appendStr(b, tc.ID), tc.Type)
			if tc.FunctionCall == nil {
				b = append(b, 0)
				continue
			}
			b = appendStr(appendStr(append(b, 1), tc.FunctionCall.Name), tc.FunctionCall.Arguments)
		}
		if c.GenerationInfo == nil {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(c.GenerationInfo)))
		for k, v := range c.GenerationInfo {
			b = appendStr(b, k)
			var ok bool
			if b, ok = appendValue(b, v); !ok {
				return "", nil, false
			}
		}
	}
	return NativeFormat, b, true
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendValue(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, kindNil), true
	case string:
		return appendStr(append(b, kindString), x), true
	case bool:
		if x {
			return append(b, kindBool, 1), true
		}
		return append(b, kindBool, 0), true
	case int:
		return binary.AppendVarint(append(b, kindInt), int64(x)), true
	case int32:
		return binary.AppendVarint(append(b, kindInt32), int64(x)), true
	case int64:
		return binary.AppendVarint(append(b, kindInt64), x), true
	case uint64:
		return binary.AppendUvarint(append(b, kindUint64), x), true
	case float32:
		return binary.LittleEndian.AppendUint32(append(b, kindFloat32), math.Float32bits(x)), true
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, kindFloat64), math.Float64bits(x)), true
	}
	return b, false
}

// storedReader decodes the encoding; its strings are slices of one copy of
// the data, so decoding them allocates nothing more.
type storedReader struct {
	s   string
	bad bool
}

func (r *storedReader) uvarint() uint64 {
	v, n := binary.Uvarint([]byte(r.s[:min(len(r.s), binary.MaxVarintLen64)]))
	if n <= 0 {
		r.bad, r.s = true, ""
		return 0
	}
	r.s = r.s[n:]
	return v
}

func (r *storedReader) varint() int64 {
	v, n := binary.Varint([]byte(r.s[:min(len(r.s), binary.MaxVarintLen64)]))
	if n <= 0 {
		r.bad, r.s = true, ""
		return 0
	}
	r.s = r.s[n:]
	return v
}

func (r *storedReader) take(n uint64) string {
	if n > uint64(len(r.s)) {
		r.bad, r.s = true, ""
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *storedReader) str() string { return r.take(r.uvarint()) }

func (r *storedReader) byte() byte {
	s := r.take(1)
	if s == "" {
		return 0
	}
	return s[0]
}

// count reads a count of elements that take at least one byte each.
func (r *storedReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad, r.s = true, ""
		return 0
	}
	return int(n)
}

func (r *storedReader) value() any {
	switch r.byte() {
	case kindNil:
		return nil
	case kindString:
		return r.str()
	case kindBool:
		return r.byte() == 1
	case kindInt:
		return int(r.varint())
	case kindInt32:
		return int32(r.varint())
	case kindInt64:
		return r.varint()
	case kindUint64:
		return r.uvarint()
	case kindFloat32:
		s := r.take(4)
		if len(s) < 4 {
			return nil
		}
		return math.Float32frombits(binary.LittleEndian.Uint32([]byte(s)))
	case kindFloat64:
		s := r.take(8)
		if len(s) < 8 {
			return nil
		}
		return math.Float64frombits(binary.LittleEndian.Uint64([]byte(s)))
	}
	r.bad = true
	return nil
}

// decodeStored decodes what MarshalNative wrote into memory the caller
// owns; ok false for bytes it did not write.
func decodeStored(data []byte) (*llms.ContentResponse, int, bool) {
	r := &storedReader{s: string(data)}
	n := int(r.uvarint())
	choices := make([]llms.ContentChoice, r.count())
	cr := &llms.ContentResponse{Choices: make([]*llms.ContentChoice, len(choices))}
	for i := range choices {
		flags := r.byte()
		if flags&flagNil != 0 {
			continue
		}
		c := &choices[i]
		c.Content, c.StopReason, c.ReasoningContent = r.str(), r.str(), r.str()
		if flags&flagFuncCall != 0 {
			c.FuncCall = &llms.FunctionCall{Name: r.str(), Arguments: r.str()}
		}
		if k := r.count(); k > 0 {
			c.ToolCalls = make([]llms.ToolCall, k)
			for j := range c.ToolCalls {
				tc := &c.ToolCalls[j]
				tc.ID, tc.Type = r.str(), r.str()
				if r.byte() == 1 {
					tc.FunctionCall = &llms.FunctionCall{Name: r.str(), Arguments: r.str()}
				}
			}
		}
		if flags&flagFuncIsFirstTool != 0 && len(c.ToolCalls) > 0 {
			c.FuncCall = c.ToolCalls[0].FunctionCall
		}
		if flags&flagGenInfo != 0 {
			k := r.count()
			c.GenerationInfo = make(map[string]any, k)
			for range k {
				key := r.str()
				c.GenerationInfo[key] = r.value()
			}
		}
		cr.Choices[i] = c
	}
	if r.bad || r.s != "" {
		return nil, 0, false
	}
	return cr, n, true
}

// storedContentResponse returns the inner response a store kept for resp,
// decoded into memory the caller owns, when the chain did not change the
// answer (compared with the core view derived from it again, usage aside
// for a hit, which spent nothing); nil otherwise.
func storedContentResponse(resp *middleware.Response) *llms.ContentResponse {
	sn, ok := resp.Native.(*middleware.StoredNative)
	if !ok || sn.Format != NativeFormat {
		return nil
	}
	cr, n, ok := decodeStored(sn.Data)
	if !ok {
		return nil
	}
	view, ok := coreResponse(cr, &middleware.Request{Model: resp.Model, N: n}, resp.Usage.ServiceTier)
	if !ok {
		return nil
	}
	a := *resp
	if a.FromCache && a.Usage.IsZero() {
		a.Usage = view.Usage
	}
	if !sameAnswer(&a, view) {
		return nil
	}
	return cr
}
