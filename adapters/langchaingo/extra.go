package langchaingo

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tmc/langchaingo/llms"
)

// extraOptions renders the options that change the answer but that the core
// does not model as canonical JSON (sorted keys) for Request.Extra, which
// caches key on: top_k, penalties, min/max length, a response MIME type
// other than JSON, and the thinking configuration. Zero values are
// langchaingo's "not set" and are left out, as is Metadata (trace data,
// backend switches). nil when there is none.
func extraOptions(co *llms.CallOptions) []byte {
	var b []byte
	add := func(key string) {
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, key)
		b = append(b, ':')
	}
	num := func(key string, f float64) {
		if f != 0 && f == f {
			add(key)
			b = strconv.AppendFloat(b, f, 'g', -1, 64)
		}
	}
	integer := func(key string, n int) {
		if n != 0 && n != unsetInt {
			add(key)
			b = strconv.AppendInt(b, int64(n), 10)
		}
	}
	// Keys in sorted order.
	num("frequency_penalty", co.FrequencyPenalty)
	integer("max_length", co.MaxLength)
	integer("min_length", co.MinLength)
	num("presence_penalty", co.PresencePenalty)
	num("repetition_penalty", co.RepetitionPenalty)
	if m := co.ResponseMIMEType; m != "" && !strings.EqualFold(m, "application/json") {
		add("response_mime_type")
		j, _ := json.Marshal(m) // a string always marshals
		b = append(b, j...)
	}
	if tc, ok := co.Metadata["thinking_config"].(*llms.ThinkingConfig); ok && tc != nil {
		if j, err := json.Marshal(tc); err == nil { // a struct: fields in a fixed order
			add("thinking")
			b = append(b, j...)
		}
	}
	integer("top_k", co.TopK)
	if b != nil {
		b = append(b, '}')
	}
	return b
}
