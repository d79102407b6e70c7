package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

const fullRequest = `{
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "name": "ann", "content": [
      {"type": "text", "text": "What is in this image?"},
      {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
      {"type": "input_audio", "input_audio": {"data": "aGVsbG8=", "format": "wav"}},
      {"type": "file", "file": {"file_id": "file-123"}}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "check_disk", "arguments": "{\"path\":\"/\"}"}}
    ], "refusal": null},
    {"role": "tool", "tool_call_id": "call_1", "content": "95% \u00e9\n"}
  ],
  "tools": [
    {"type": "function", "function": {"name": "check_disk", "description": "Disk usage", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}, "strict": true}},
    {"type": "custom", "custom": {"name": "grammar"}}
  ],
  "tool_choice": {"type": "function", "function": {"name": "check_disk"}},
  "parallel_tool_calls": false,
  "temperature": 0,
  "top_p": 0.5,
  "seed": 42,
  "stop": "END",
  "max_tokens": 100,
  "response_format": {"type": "json_object"},
  "n": 1,
  "stream": true,
  "stream_options": {"include_obfuscation": false},
  "metadata": {"x": "y"},
  "user": "u1",
  "logprobs": true
}`

func TestDecodeRequest(t *testing.T) {
	req, err := decodeRequest([]byte(fullRequest))
	if err != nil {
		t.Fatal(err)
	}
	zero, half := 0.0, 0.5
	seed := int64(42)
	want := &middleware.Request{
		Model: "gpt-4o-mini",
		Messages: []middleware.Message{
			{Role: "system", Content: "You are terse."},
			{Role: "user", Name: "ann", Parts: []middleware.Part{
				{Type: "text", Text: "What is in this image?"},
				{Type: "image_url", URL: "https://x/y.png", Detail: "low"},
				{Type: "input_audio", MIMEType: "audio/wav", Data: []byte("hello")},
				{Type: "file", MIMEType: PartMIMEType, Data: []byte(`{"type": "file", "file": {"file_id": "file-123"}}`)},
			}},
			{Role: "assistant", ToolCalls: []middleware.ToolCall{{ID: "call_1", Name: "check_disk", Arguments: `{"path":"/"}`}}},
			{Role: "tool", ToolCallID: "call_1", Content: "95% é\n"},
		},
		Tools: []middleware.Tool{{Name: "check_disk", Description: "Disk usage", Strict: true,
			Parameters: []byte(`{"type": "object", "properties": {"path": {"type": "string"}}}`)}},
		ToolChoice:     "check_disk",
		Temperature:    &zero,
		TopP:           &half,
		Seed:           &seed,
		Stop:           []string{"END"},
		MaxTokens:      100,
		ResponseFormat: []byte(`{"type": "json_object"}`),
		N:              1,
		// Answer-affecting members the core does not model, canonical,
		// with the tools it does not model (no function tool).
		Extra: []byte(`{"logprobs":true,"parallel_tool_calls":false,"tools":[{"custom":{"name":"grammar"},"type":"custom"}]}`),
	}
	w := req.Native.(*Wire)
	req.Native = nil
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", req, want)
	}
	if !w.req.stream || w.req.includeUsage {
		t.Fatalf("stream %v includeUsage %v", w.req.stream, w.req.includeUsage)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	for _, body := range []string{``, `null`, `[]`, `{"model": 5}`, `{"messages": {}}`, `{"model":"a"} x`, `{"messages":[null]}`,
		`{"a":1,}`, `{"x":[1 2]}`, `{"x":[1,]}`, `{"n":01}`, `{"n":-}`, `{"x":1.}`, `{"x":tru}`, `{"model":"a\q"}`, "{\"model\":\"\x01\"}",
		`{"model":"abc`, `{"x":{"a" 1}}`, `{"x":"\u12"}`, strings.Repeat("[", 20000)} {
		if _, err := decodeRequest([]byte(body)); err == nil {
			t.Errorf("%s: no error", body)
		}
	}
}

// members decodes a JSON object into its raw members.
func members(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return m
}

func TestPatchRequest(t *testing.T) {
	orig := []byte(fullRequest)
	decode := func() *middleware.Request {
		req, err := decodeRequest(orig)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	stream := func(context.Context, middleware.Chunk) error { return nil }
	om := members(t, orig)

	t.Run("unchanged non-stream request is the original bytes", func(t *testing.T) {
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"x":1}`)
		req, err := decodeRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		out := encodeRequest(req, encodeOptions{})
		if &out[0] != &body[0] {
			t.Fatalf("re-encoded: %s", out)
		}
	})
	t.Run("stream gets include_usage, other options kept", func(t *testing.T) {
		req := decode()
		req.Stream = stream
		out := encodeRequest(req, encodeOptions{})
		m := members(t, out)
		if string(m["stream_options"]) != `{"include_obfuscation": false,"include_usage":true}` {
			t.Fatalf("stream_options = %s", m["stream_options"])
		}
		for k, v := range om {
			if k != "stream_options" && !bytes.Equal(m[k], v) {
				t.Errorf("%s changed: %s -> %s", k, v, m[k])
			}
		}
	})
	t.Run("model, messages, max tokens changed", func(t *testing.T) {
		req := decode().Clone()
		req.Stream = stream
		req.Model = "gpt-4o"
		req.MaxTokens = 50
		// Compaction: drop the system message, replace the tool result.
		msgs := append([]middleware.Message(nil), req.Messages[1:]...)
		msgs[2] = middleware.Message{Role: "tool", ToolCallID: "call_1", Content: "[compacted]"}
		req.Messages = msgs
		out := encodeRequest(req, encodeOptions{})
		m := members(t, out)
		if string(m["model"]) != `"gpt-4o"` || string(m["max_tokens"]) != "50" {
			t.Fatalf("model %s max_tokens %s", m["model"], m["max_tokens"])
		}
		if _, ok := m["max_completion_tokens"]; ok {
			t.Fatal("max_completion_tokens added")
		}
		var got []json.RawMessage
		var was []json.RawMessage
		json.Unmarshal(m["messages"], &got)
		json.Unmarshal(om["messages"], &was)
		if len(got) != 3 || !bytes.Equal(got[0], was[1]) || !bytes.Equal(got[1], was[2]) ||
			string(got[2]) != `{"role":"tool","content":"[compacted]","tool_call_id":"call_1"}` {
			t.Fatalf("messages %s", m["messages"])
		}
		for _, k := range []string{"metadata", "user", "logprobs", "tools", "tool_choice", "response_format", "stop", "seed", "temperature", "top_p"} {
			if !bytes.Equal(m[k], om[k]) {
				t.Errorf("%s changed: %s -> %s", k, om[k], m[k])
			}
		}
	})
	t.Run("tools removed", func(t *testing.T) {
		req := decode().Clone()
		req.Stream = stream
		req.Tools = nil
		req.ToolChoice = "check_disk"
		m := members(t, encodeRequest(req, encodeOptions{}))
		for _, k := range []string{"tools", "tool_choice", "parallel_tool_calls"} {
			if _, ok := m[k]; ok {
				t.Errorf("%s kept: %s", k, m[k])
			}
		}
	})
	t.Run("stream turned off", func(t *testing.T) {
		req := decode()
		m := members(t, encodeRequest(req, encodeOptions{}))
		if string(m["stream"]) != "false" || m["stream_options"] != nil {
			t.Fatalf("stream %s options %s", m["stream"], m["stream_options"])
		}
	})
	t.Run("injected limit and sampling", func(t *testing.T) {
		body := []byte(`{"model":"m","messages":[],"stream":false}`)
		for _, legacy := range []bool{false, true} {
			req, _ := decodeRequest(body)
			req = req.Clone()
			req.MaxTokens = 7
			temp := 0.25
			req.Temperature = &temp
			req.Stop = []string{"a", "b"}
			req.ToolChoice = "none"
			m := members(t, encodeRequest(req, encodeOptions{legacyMaxTokens: legacy}))
			key := "max_completion_tokens"
			if legacy {
				key = "max_tokens"
			}
			if string(m[key]) != "7" || string(m["temperature"]) != "0.25" || string(m["stop"]) != `["a","b"]` || string(m["tool_choice"]) != `"none"` {
				t.Fatalf("legacy=%v: %v", legacy, m)
			}
		}
	})
}

func TestEncodeRequestRoundTrip(t *testing.T) {
	req, err := decodeRequest([]byte(fullRequest))
	if err != nil {
		t.Fatal(err)
	}
	req.Native = nil
	req.Stream = func(context.Context, middleware.Chunk) error { return nil }
	out := encodeRequest(req, encodeOptions{})
	again, err := decodeRequest(out)
	if err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	again.Native = nil
	req.Stream = nil
	// Extra is a cache-key input: a core request is encoded without it
	// (only the caller's own bytes carry unmodelled members upstream).
	req.Extra = nil
	// The assistant's null content and the raw part survive; the only
	// difference is the field name of the limit.
	if !reflect.DeepEqual(again, req) {
		t.Fatalf("round trip\n%+v\n%+v\n%s", again, req, out)
	}
}

func TestReaderStrings(t *testing.T) {
	for in, want := range map[string]string{
		`"plain"`: "plain", `""`: "", `"a\"b"`: `a"b`, `"\\\/\b\f\n\r\t"`: "\\/\b\f\n\r\t",
		`"\u00e9\u263a"`: "é☺", `"\ud83d\ude00"`: "😀", `"\ud83d x"`: "\ufffd x", `"é😀"`: "é😀",
	} {
		r := getReader([]byte(in))
		got, err := r.str()
		if err == nil {
			err = r.end()
		}
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
		putReader(r)
	}
	// Bytes that are not UTF-8 read as encoding/json reads them: each one
	// U+FFFD, escapes or none around them.
	for _, in := range []string{"\"a\x80b\"", "\"caf\xc3\"", "\"\xa9\"", "\"\xed\xa0\x80\"", "\"\xf0\x9f\x98\"", "\"\xff\\n\xc3\xa9\xc3\"",
		"\"\\u00e9\xe2\x82\\t\xe2\x82\xac\"", "\"\xc0\xaf\"", "\"\xef\xbf\xbd\""} {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		r := getReader([]byte(in))
		got, err := r.str()
		if err == nil {
			err = r.end()
		}
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; encoding/json reads %q", in, got, err, want)
		}
		putReader(r)
	}
	for in, want := range map[string]int64{`0`: 0, `-12`: -12, `3.9`: 4, `1000.5`: 1001, `-2.5`: -2, `1e3`: 1000, `9223372036854775807`: 1<<63 - 1} {
		r := getReader([]byte(in))
		got, ok, err := r.int()
		if err != nil || !ok || got != want {
			t.Errorf("%s: %d %v %v", in, got, ok, err)
		}
		putReader(r)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t cr\r ctl\x01\x1f", "é ☃ 😀", "bad \xff utf8", "<html>&"} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("%q -> %s -> %q", s, b, got)
		}
	}
}

func TestDecodeChunkUsageCut(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}`, `{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}]}`},
		{`{"usage":null, "id":"a","choices":[]}`, `{ "id":"a","choices":[]}`},
		{`{"choices":[], "usage":{"prompt_tokens":1} }`, `{"choices":[] }`},
	}
	for _, c := range cases {
		ch, _, _, err := decodeChunk([]byte(c.in), false)
		if err != nil {
			t.Fatal(err)
		}
		s := &ch.Native.(*Wire).chunk
		got := c.in[:s.cutStart] + c.in[s.cutEnd:]
		if got != c.want {
			t.Errorf("%s -> %s, want %s", c.in, got, c.want)
		}
	}
	ch, _, _, err := decodeChunk([]byte(`{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (middleware.Usage{InputTokens: 10, OutputTokens: 5, CachedInputTokens: 4, ReasoningTokens: 2}); ch.Usage == nil || *ch.Usage != want || !ch.Native.(*Wire).chunk.usageOnly {
		t.Fatalf("usage %+v", ch.Usage)
	}
}

func TestDecodeChunkChoices(t *testing.T) {
	in := `{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"reasoning_content":"r","tool_calls":[{"index":1,"id":"c","type":"function","function":{"name":"f","arguments":"{"}}]},"finish_reason":"tool_calls"}]}`
	ch, _, _, err := decodeChunk([]byte(in), false)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Content != "" || ch.Reasoning != "r" || ch.FinishReason != "tool_calls" ||
		!reflect.DeepEqual(ch.ToolCalls, []middleware.ToolCallDelta{{Index: 1, ID: "c", Name: "f", Arguments: "{"}}) {
		t.Fatalf("%+v", ch)
	}
	for _, bad := range []string{`{"choices":[{"delta":{"content":5}}]}`, `{"id":"x"}`, `{"choices":[`, `[]`} {
		if _, _, _, err := decodeChunk([]byte(bad), false); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// FuzzDecode checks that no input makes a decoder panic, and that the
// scanner accepts no document encoding/json rejects.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{fullRequest, `{"choices":[{"delta":{"content":"a\u00e9\n"}}],"usage":null}`,
		`{"id":"x","choices":[{"message":{"content":"hi","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}}],"usage":{"prompt_tokens":1}}`,
		`{"error":{"message":["a","b"],"code":429}}`, `[1,2,{"a":null}]`, `"\ud800"`, `-0.5e+3`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		if req, err := decodeRequest(data); err == nil {
			if !valid {
				t.Fatalf("request decoder accepted invalid JSON %q", data)
			}
			req.Stream = func(context.Context, middleware.Chunk) error { return nil }
			req.Model += "x"
			if out := encodeRequest(req, encodeOptions{}); !json.Valid(out) {
				t.Fatalf("patched %q into invalid JSON %q", data, out)
			}
		}
		if _, _, _, err := decodeChunk(data, true); err == nil && !valid {
			t.Fatalf("chunk decoder accepted invalid JSON %q", data)
		}
		if _, _, err := decodeResponse(data); err == nil && !valid {
			t.Fatalf("response decoder accepted invalid JSON %q", data)
		}
		r := getReader(data)
		if err := r.skip(); err == nil && r.end() == nil && !valid {
			t.Fatalf("scanner accepted invalid JSON %q", data)
		} else if (err == nil && r.end() == nil) != valid && len(data) < 1000 {
			t.Fatalf("scanner says %v, encoding/json %v for %q", err, valid, data)
		}
		putReader(r)
	})
}
