package langchaingo

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/middleware"
)

var _ middleware.NativePartitioner = (*nativeRequest)(nil)

// CachePartition implements middleware.NativePartitioner: what the inner
// models add to a request on their own, which the call's messages and
// options do not show (see modelsPartition); "" when none does.
func (n *nativeRequest) CachePartition() string { return n.partition }

// modelsPartition names what the inner models of a Models decide of a
// request outside its messages and options, for a response cache to key
// on, so that the same call through Models over differently configured
// clients of one model name never shares an answer. For langchaingo's
// openai backend that is its client's configuration: the endpoint (base
// URL, API type and version), the organization, the response format set
// with openai.WithResponseFormat (sent with every call) and a hash of the
// credential (never the credential itself), as the OpenAI adapter's
// partition names the endpoint and account. Other backends add nothing.
// Models over equally configured clients get the same partition, in any
// process. "" when no model adds anything.
func modelsPartition(known []string, inner map[string]innerModel) string {
	var b []byte
	for _, name := range known {
		fp, ok := openaiClientConfig(inner[name].llm)
		if !ok {
			continue
		}
		b = appendStr(appendStr(b, name), fp)
	}
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "langchaingo#" + hex.EncodeToString(sum[:16])
}

// openaiClientConfig encodes the configuration of langchaingo's openai
// backend's client that goes into every request it sends (see
// modelsPartition). It reads the client's fields, which are set once by
// openai.New, with reflect; ok is false for another model, or a client
// whose fields are not those of langchaingo v0.1.14's.
func openaiClientConfig(m llms.Model) (string, bool) {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return "", false
	}
	if t := v.Elem().Type(); t.PkgPath() != "github.com/tmc/langchaingo/llms/openai" || t.Name() != "LLM" {
		return "", false
	}
	c := v.Elem().FieldByName("client")
	if c.Kind() != reflect.Pointer || c.IsNil() || c.Elem().Kind() != reflect.Struct {
		return "", false
	}
	c = c.Elem()
	var b []byte
	for _, f := range [...]string{"baseURL", "organization", "apiType", "apiVersion"} {
		fv := c.FieldByName(f)
		if fv.Kind() != reflect.String {
			return "", false
		}
		b = appendStr(b, fv.String())
	}
	token := c.FieldByName("token")
	if token.Kind() != reflect.String {
		return "", false
	}
	sum := sha256.Sum256([]byte(token.String()))
	b = appendStr(b, string(sum[:]))
	rf := c.FieldByName("ResponseFormat")
	if !rf.IsValid() {
		return "", false
	}
	b = appendReflected(b, rf, 0)
	return string(b), true
}

// appendReflected appends an unambiguous encoding of v (a value of plain
// data: strings, numbers, bools, and pointers, interfaces, slices, maps
// and structs of them), readable through unexported fields.
func appendReflected(b []byte, v reflect.Value, depth int) []byte {
	if depth > 32 {
		return append(b, 'd')
	}
	switch v.Kind() {
	case reflect.Invalid:
		return append(b, 'n')
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return append(b, 'n')
		}
		return appendReflected(append(b, 'p'), v.Elem(), depth+1)
	case reflect.String:
		return appendStr(append(b, 's'), v.String())
	case reflect.Bool:
		if v.Bool() {
			return append(b, 't')
		}
		return append(b, 'f')
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(append(b, 'i'), v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(append(b, 'u'), v.Uint())
	case reflect.Float32, reflect.Float64:
		return binary.LittleEndian.AppendUint64(append(b, 'g'), math.Float64bits(v.Float()))
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return append(b, 'n')
		}
		b = binary.AppendUvarint(append(b, 'a'), uint64(v.Len()))
		for i := range v.Len() {
			b = appendReflected(b, v.Index(i), depth+1)
		}
		return b
	case reflect.Map:
		if v.IsNil() {
			return append(b, 'n')
		}
		type entry struct {
			key []byte
			val reflect.Value
		}
		entries := make([]entry, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			entries = append(entries, entry{appendReflected(nil, it.Key(), depth+1), it.Value()})
		}
		slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(string(x.key), string(y.key)) })
		b = binary.AppendUvarint(append(b, 'm'), uint64(len(entries)))
		for _, e := range entries {
			b = appendReflected(append(b, e.key...), e.val, depth+1)
		}
		return b
	case reflect.Struct:
		b = binary.AppendUvarint(append(b, 'o'), uint64(v.NumField()))
		for i := range v.NumField() {
			b = appendReflected(appendStr(b, v.Type().Field(i).Name), v.Field(i), depth+1)
		}
		return b
	}
	// Funcs, channels: no data of a request.
	return append(b, 'x')
}
