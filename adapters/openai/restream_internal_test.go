package openai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// randomAnswer returns a chat completion body of random shape: 1 to 3
// choices, each with content, a refusal or tool calls, maybe reasoning,
// maybe logprobs (whose tokens spell the text or not), and usage.
func randomAnswer(r *rand.Rand) []byte {
	words := []string{"disk", " at", " 95%", "é", "日本", " ", "\n", "/var/log", `"q"`, "a longer piece of text than sixteen bytes"}
	text := func() (string, []any) {
		var sb strings.Builder
		var toks []any
		for range r.IntN(8) {
			w := words[r.IntN(len(words))]
			sb.WriteString(w)
			toks = append(toks, map[string]any{"token": w, "logprob": -float64(r.IntN(100)) / 10, "bytes": []int{1}, "top_logprobs": []any{}})
		}
		if r.IntN(4) == 0 && len(toks) > 1 { // tokens that do not spell the text
			toks = toks[1:]
		}
		return sb.String(), toks
	}
	var choices []any
	for i := range 1 + r.IntN(3) {
		msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil}
		ch := map[string]any{"index": i, "logprobs": nil, "finish_reason": []string{"stop", "length", "tool_calls", "content_filter"}[r.IntN(4)]}
		var lpContent, lpRefusal []any
		switch r.IntN(3) {
		case 0:
			msg["content"], lpContent = text()
		case 1:
			msg["refusal"], lpRefusal = text()
			if msg["refusal"] == "" {
				msg["refusal"], msg["content"] = nil, ""
			}
		default:
			var calls []any
			for j := range 1 + r.IntN(2) {
				args, _ := text()
				c := map[string]any{"id": fmt.Sprint("call_", i, j), "type": "function",
					"function": map[string]any{"name": "check_disk", "arguments": args}}
				if r.IntN(3) == 0 { // Gemini's thought signature, which the client sends back
					c["extra_content"] = map[string]any{"google": map[string]any{"thought_signature": fmt.Sprint("sig<", j, ">")}}
				}
				if r.IntN(4) == 0 { // a custom tool's call (GPT-5's free-form tools)
					delete(c, "function")
					c["type"], c["custom"] = "custom", map[string]any{"name": "exec", "input": args}
				}
				calls = append(calls, c)
			}
			msg["tool_calls"] = calls
			if r.IntN(4) == 0 { // the legacy functions API's call instead
				delete(msg, "tool_calls")
				args, _ := text()
				msg["function_call"] = map[string]any{"name": "check_disk", "arguments": args}
				ch["finish_reason"] = "function_call"
			}
		}
		if r.IntN(3) == 0 {
			if s, _ := text(); s != "" {
				msg["reasoning_content"] = s
			}
		}
		if len(lpContent) > 0 || len(lpRefusal) > 0 {
			lp := map[string]any{}
			if len(lpContent) > 0 {
				lp["content"] = lpContent
			}
			if len(lpRefusal) > 0 {
				lp["refusal"] = lpRefusal
			}
			ch["logprobs"] = lp
		}
		ch["message"] = msg
		choices = append(choices, ch)
	}
	a := map[string]any{"id": fmt.Sprint("chatcmpl-", r.Int()), "object": "chat.completion", "created": 1733000000 + r.IntN(1000),
		"model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_x", "choices": choices,
		"usage": map[string]any{"prompt_tokens": r.IntN(100), "completion_tokens": r.IntN(100), "total_tokens": 200}}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return b
}

// ssePayloads returns the data payloads of a stream's events.
func ssePayloads(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for ev := range bytes.SplitSeq(stream, []byte("\n\n")) {
		if len(ev) == 0 {
			continue
		}
		data, ok := bytes.CutPrefix(ev, []byte("data: "))
		if !ok || !json.Valid(data) {
			t.Fatalf("bad event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRestreamRoundTrip: for answers of every shape, the stream rendered
// from a stored body (one choice a chunk, no piece over restreamPiece bytes
// unless it is one logprob token) merges back into the same body: what a
// streamed hit gives a caller is what was stored, and what a cache stores
// of a stream is what the stream carried.
func TestRestreamRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	for i := range 2000 {
		body := randomAnswer(r)
		stream, err := appendRestream(nil, body, true)
		if err != nil {
			t.Fatalf("%d: %v\n%s", i, err, body)
		}
		payloads := ssePayloads(t, stream)
		for _, p := range payloads[:len(payloads)-1] {
			var c sseChunk
			if err := json.Unmarshal(p, &c); err != nil || len(c.Choices) != 1 {
				t.Fatalf("%d: chunk %s: %d choices, %v", i, p, len(c.Choices), err)
			}
		}
		merged, err := mergeChunks(payloads)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got, want := decodeAny(t, merged), decodeAny(t, body); !reflect.DeepEqual(got, want) {
			t.Fatalf("%d: merged\n%s\nwant\n%s\nstream\n%s", i, merged, body, stream)
		}
		noUsage, err := appendRestream(nil, body, false)
		if err != nil || bytes.Contains(noUsage, []byte(`"usage"`)) {
			t.Fatalf("%d: usage sent unasked (%v):\n%s", i, err, noUsage)
		}
	}
}

// TestRestreamRefusesBrokenInput: neither a broken stored body nor a
// broken chunk is a silent success.
func TestRestreamRefusesBrokenInput(t *testing.T) {
	for _, body := range []string{``, `{`, `{"choices":[{"message":{"tool_calls":[1]}}]}`, `{"choices":"x"}`} {
		if _, err := appendRestream(nil, []byte(body), true); err == nil {
			t.Errorf("appendRestream(%q) succeeded", body)
		}
	}
	for _, chunk := range []string{`{`, `{"choices":[{"index":-1,"delta":{}}]}`, `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":5000}]}}]}`} {
		if _, err := mergeChunks([][]byte{[]byte(chunk)}); err == nil {
			t.Errorf("mergeChunks(%q) succeeded", chunk)
		}
	}
}

// BenchmarkMergeChunks is what a cache pays, once per stored streamed
// answer, to keep its body: merging 1000 chunks.
func BenchmarkMergeChunks(b *testing.B) {
	var payloads [][]byte
	for ev := range bytes.SplitSeq(sseBody(1000), []byte("\n\n")) {
		if data, ok := bytes.CutPrefix(ev, []byte("data: ")); ok && string(data) != "[DONE]" {
			payloads = append(payloads, data)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mergeChunks(payloads); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestream is rendering a streamed hit of n=3 with logprobs from
// its stored body.
func BenchmarkRestream(b *testing.B) {
	body := randomAnswer(rand.New(rand.NewPCG(1, 2)))
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = appendRestream(dst[:0], body, true); err != nil {
			b.Fatal(err)
		}
	}
}

// mergeChunksStdlib is the reference for mergeChunks: the same merge with
// encoding/json, as it was written before the package's reader did it.
func mergeChunksStdlib(chunks [][]byte) ([]byte, error) {
	type call struct {
		index    int
		ID       string
		Type     string
		Function sseFunction
		custom   bool
		extra    map[string]json.RawMessage
	}
	type message struct {
		Role             string           `json:"role"`
		Content          *string          `json:"content"`
		ReasoningContent string           `json:"reasoning_content,omitempty"`
		Refusal          *string          `json:"refusal"`
		ToolCalls        []map[string]any `json:"tool_calls,omitempty"`
		FunctionCall     *sseFunction     `json:"function_call,omitempty"`
	}
	type choice struct {
		Index        int          `json:"index"`
		Message      message      `json:"message"`
		Logprobs     *sseLogprobs `json:"logprobs"`
		FinishReason *string      `json:"finish_reason"`
	}
	var out struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		ServiceTier       string          `json:"service_tier,omitempty"`
		SystemFingerprint string          `json:"system_fingerprint,omitempty"`
		Choices           []choice        `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
	}
	out.Object = "chat.completion"
	var text []*struct{ content, refusal strings.Builder }
	var calls [][]*call       // per choice, in arrival order
	var slots []map[int]*call // per choice, the latest call of each index
	for _, data := range chunks {
		var c struct {
			sseChunk
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Content          *string                      `json:"content"`
					ReasoningContent string                       `json:"reasoning_content"`
					Reasoning        string                       `json:"reasoning"`
					Refusal          *string                      `json:"refusal"`
					ToolCalls        []map[string]json.RawMessage `json:"tool_calls"`
					FunctionCall     *sseFunction                 `json:"function_call"`
				} `json:"delta"`
				Logprobs     *sseLogprobs `json:"logprobs"`
				FinishReason *string      `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, err
		}
		out.ID, out.Created, out.Model = cmp.Or(out.ID, c.ID), cmp.Or(out.Created, c.Created), cmp.Or(out.Model, c.Model)
		out.ServiceTier, out.SystemFingerprint = cmp.Or(out.ServiceTier, c.ServiceTier), cmp.Or(out.SystemFingerprint, c.SystemFingerprint)
		if len(c.Usage) > 0 && string(c.Usage) != "null" {
			out.Usage = c.Usage
		}
		for _, d := range c.Choices {
			if d.Index < 0 || d.Index > 1<<10 {
				return nil, errors.New("tokenwise/openai: choice index out of range")
			}
			for len(out.Choices) <= d.Index {
				out.Choices = append(out.Choices, choice{Index: len(out.Choices), Message: message{Role: "assistant"}})
				text = append(text, &struct{ content, refusal strings.Builder }{})
				calls, slots = append(calls, nil), append(slots, map[int]*call{})
			}
			ch, tx := &out.Choices[d.Index], text[d.Index]
			if d.Delta.Content != nil {
				tx.content.WriteString(*d.Delta.Content)
			}
			if d.Delta.Refusal != nil {
				tx.refusal.WriteString(*d.Delta.Refusal)
			}
			ch.Message.ReasoningContent += d.Delta.ReasoningContent + d.Delta.Reasoning
			if fc := d.Delta.FunctionCall; fc != nil {
				if ch.Message.FunctionCall == nil {
					ch.Message.FunctionCall = &sseFunction{}
				}
				ch.Message.FunctionCall.Name += fc.Name
				ch.Message.FunctionCall.Arguments += fc.Arguments
			}
			for pos, m := range d.Delta.ToolCalls {
				// A delta without an index has its place in the array; a
				// new id at a used index is a new call.
				var tc struct {
					Index    *int        `json:"index"`
					ID       string      `json:"id"`
					Type     string      `json:"type"`
					Function sseFunction `json:"function"`
					Custom   *struct {
						Name  string `json:"name"`
						Input string `json:"input"`
					} `json:"custom"`
				}
				if m != nil {
					b, _ := json.Marshal(m)
					if err := json.Unmarshal(b, &tc); err != nil {
						return nil, err
					}
				}
				index := pos
				if tc.Index != nil {
					index = *tc.Index
				}
				if index < 0 || index > 1<<10 {
					return nil, errors.New("tokenwise/openai: tool call index out of range")
				}
				t := slots[d.Index][index]
				if t != nil && tc.ID != "" && t.ID != "" && tc.ID != t.ID {
					t = nil
				}
				if t == nil {
					t = &call{index: index, extra: map[string]json.RawMessage{}}
					calls[d.Index] = append(calls[d.Index], t)
					slots[d.Index][index] = t
				}
				t.ID, t.Type = cmp.Or(t.ID, tc.ID), cmp.Or(t.Type, tc.Type)
				t.Function.Name += tc.Function.Name
				t.Function.Arguments += tc.Function.Arguments
				if tc.Custom != nil {
					t.custom = true
					t.Function.Name += tc.Custom.Name
					t.Function.Arguments += tc.Custom.Input
				}
				for k, v := range m {
					switch k {
					case "index", "id", "type", "function", "custom":
					default:
						t.extra[k] = v
					}
				}
			}
			if d.Logprobs != nil {
				if ch.Logprobs == nil {
					ch.Logprobs = &sseLogprobs{}
				}
				ch.Logprobs.Content = append(ch.Logprobs.Content, d.Logprobs.Content...)
				ch.Logprobs.Refusal = append(ch.Logprobs.Refusal, d.Logprobs.Refusal...)
			}
			if d.FinishReason != nil {
				ch.FinishReason = d.FinishReason
			}
		}
	}
	for i := range out.Choices {
		ch, tx := &out.Choices[i], text[i]
		slices.SortStableFunc(calls[i], func(a, b *call) int { return a.index - b.index })
		for _, c := range calls[i] {
			m := map[string]any{"id": c.ID, "type": c.Type, "function": c.Function}
			if c.custom {
				delete(m, "function")
				m["custom"] = map[string]any{"name": c.Function.Name, "input": c.Function.Arguments}
				if c.Type == "" {
					m["type"] = "custom"
				}
			}
			for k, v := range c.extra {
				m[k] = v
			}
			ch.Message.ToolCalls = append(ch.Message.ToolCalls, m)
		}
		if tx.content.Len() > 0 || len(ch.Message.ToolCalls) == 0 && tx.refusal.Len() == 0 && ch.Message.FunctionCall == nil {
			s := tx.content.String()
			ch.Message.Content = &s
		}
		if tx.refusal.Len() > 0 {
			s := tx.refusal.String()
			ch.Message.Refusal = &s
		}
		for _, c := range ch.Message.ToolCalls {
			if c["type"] == "" {
				c["type"] = "function"
			}
		}
	}
	return json.Marshal(&out)
}

// TestMergeChunksMatchesEncodingJSON: the package reader's merge and the
// encoding/json reference merge agree on every stream of the restream
// corpus, on the same streams with members that may be null, and on
// broken chunks (both refuse them).
func TestMergeChunksMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 3))
	variants := []func([]byte) []byte{
		func(b []byte) []byte { return b },
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"logprobs":null`), []byte(`"logprobs":{"content":null}`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"delta":{`), []byte(`"delta":{"reasoning":"r","content":null,`), 1)
		},
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"choices":[`), []byte(`"choices":[null,`), 1) },
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"tool_calls":[`), []byte(`"tool_calls":[null,`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"finish_reason":"`), []byte(`"finish_reason":null,"x":"`), 1)
		},
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"index":`), []byte(`"index":-`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"id":"`), []byte(`"id":5,"y":"`), 1) },
		// Gemini: a call without an index, a second call at index 0.
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"tool_calls":[{"index":0,`), []byte(`"tool_calls":[{`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"tool_calls":[{"index":1,`), []byte(`"tool_calls":[{`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"tool_calls":[{"index":0,"id":"`), []byte(`"tool_calls":[{"extra_content":{"k":[1]},"id":"x`), 1)
		},
		func(b []byte) []byte { return b[:len(b)/2] },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`}`), []byte(` } `), -1) },
	}
	for i := range 1500 {
		body := randomAnswer(r)
		stream, err := appendRestream(nil, body, true)
		if err != nil {
			t.Fatal(err)
		}
		payloads := ssePayloads(t, stream)
		if k := r.IntN(len(payloads)); r.IntN(2) == 0 {
			payloads[k] = variants[r.IntN(len(variants))](bytes.Clone(payloads[k]))
		}
		got, gerr := mergeChunks(payloads)
		want, werr := mergeChunksStdlib(payloads)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%d: merge error %v, encoding/json's %v\n%s", i, gerr, werr, bytes.Join(payloads, []byte("\n")))
		}
		if gerr != nil {
			continue
		}
		if !json.Valid(got) {
			t.Fatalf("%d: invalid JSON %s", i, got)
		}
		if g, w := decodeAny(t, got), decodeAny(t, want); !reflect.DeepEqual(g, w) {
			t.Fatalf("%d: merged\n%s\nencoding/json merged\n%s", i, got, want)
		}
	}
}

// TestStreamMergeAsReadMatchesMergeChunks: the body the provider merges
// as it reads a stream (taking the decoded chunk of a plain chunk, reading
// the payload of any other) is, byte for byte, mergeChunks' of the same
// payloads, and refused exactly when mergeChunks refuses, on every stream
// of the restream corpus and on the same streams with one chunk changed.
func TestStreamMergeAsReadMatchesMergeChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 5))
	variants := []func([]byte) []byte{
		func(b []byte) []byte { return b },
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"logprobs":null`), []byte(`"logprobs":{"content":null}`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"delta":{`), []byte(`"delta":{"reasoning":"r","content":null,`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"delta":{`), []byte(`"delta":{"reasoning_content":"a","reasoning":"b",`), 1)
		},
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"choices":[`), []byte(`"choices":[null,`), 1) },
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"finish_reason":null`), []byte(`"finish_reason":""`), 1)
		},
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"index":0`), []byte(`"index":3`), 1) },
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"tool_calls":[{"index":1,`), []byte(`"tool_calls":[{`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"tool_calls":[{"index":0,"id":"`), []byte(`"tool_calls":[{"extra_content":null,"id":"x`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"object":`), []byte(`"service_tier":"a\"b","system_fingerprint":null,"object":`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"object":`), []byte(`"service_tier":5,"object":`), 1)
		},
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"object":`), []byte(`"usage":null,"system_fingerprint":"late","object":`), 1)
		},
		func(b []byte) []byte { return bytes.Replace(b, []byte(`}`), []byte(` } `), -1) },
	}
	ctx := middleware.WithKeepNative(context.Background())
	p := &Provider{cfg: newConfig(nil)}
	for i := range 1500 {
		body := randomAnswer(r)
		stream, err := appendRestream(nil, body, true)
		if err != nil {
			t.Fatal(err)
		}
		payloads := ssePayloads(t, stream)
		for range r.IntN(3) {
			k := r.IntN(len(payloads))
			payloads[k] = variants[r.IntN(len(variants))](bytes.Clone(payloads[k]))
		}
		var sse []byte
		for _, pl := range payloads {
			sse = appendEvent(sse, pl)
		}
		sse = append(sse, "data: [DONE]\n\n"...)
		req := &middleware.Request{Model: "m", Stream: func(context.Context, middleware.Chunk) error { return nil }}
		resp, err := p.readStream(ctx, req, bytes.NewReader(sse))
		if err != nil {
			continue // not a stream the provider accepts: nothing is stored
		}
		nm, ok := resp.Native.(middleware.NativeMarshaler)
		if !ok {
			t.Fatalf("%d: Native %T", i, resp.Native)
		}
		_, got, gok := nm.MarshalNative()
		want, werr := mergeChunks(payloads)
		if gok != (werr == nil) || gok && !bytes.Equal(got, want) {
			t.Fatalf("%d: merged as read (%v)\n%s\nmergeChunks (%v)\n%s\nstream\n%s", i, gok, got, werr, want, sse)
		}
	}
}

// geminiToolStream is a stream of two tool calls as Gemini's OpenAI
// compatibility sends them: each call whole in a chunk of its own,
// without an index, the first with the thought signature (extra_content)
// that Gemini 3 wants back with the call; finish_reason stop.
var geminiToolStream = [][]byte{
	[]byte(`{"choices":[{"delta":{"role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"SIG<1>"}},"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_1","type":"function"}]},"index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`),
	[]byte(`{"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Rome\"}","name":"get_weather"},"id":"call_2","type":"function"}]},"index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`),
	[]byte(`{"choices":[{"delta":{"role":"assistant"},"finish_reason":"stop","index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk","usage":{"completion_tokens":20,"prompt_tokens":50,"total_tokens":70}}`),
}

// TestMergeKeepsGeminiToolCalls: a stream of Gemini's tool calls (no
// index, each call whole, a thought signature beside the first) merges
// into the body Gemini would have answered — two calls, the signature
// kept with its call — as the provider reads it, as mergeChunks and its
// encoding/json reference do, with the calls the core's accumulator
// finds; and the body restreamed (a cached answer replayed to a stream)
// carries the signature with its call and merges back into the same body.
// Before, the two calls merged into one ("get_weatherget_weather"), and a
// replay lost the signature, which a Gemini 3 client must send back.
func TestMergeKeepsGeminiToolCalls(t *testing.T) {
	want := `{"id":"x","object":"chat.completion","created":1,"model":"gemini-2.5-flash","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,` +
		`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},"extra_content":{"google":{"thought_signature":"SIG<1>"}}},` +
		`{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"completion_tokens":20,"prompt_tokens":50,"total_tokens":70}}`
	got, err := mergeChunks(geminiToolStream)
	if err != nil || string(got) != want {
		t.Fatalf("merged (%v)\n%s\nwant\n%s", err, got, want)
	}
	ref, err := mergeChunksStdlib(geminiToolStream)
	if err != nil || !reflect.DeepEqual(decodeAny(t, ref), decodeAny(t, got)) {
		t.Fatalf("encoding/json reference merged (%v)\n%s", err, ref)
	}
	var sse []byte
	for _, pl := range geminiToolStream {
		sse = appendEvent(sse, pl)
	}
	sse = append(sse, "data: [DONE]\n\n"...)
	p := &Provider{cfg: newConfig(nil)}
	req := &middleware.Request{Model: "gemini-2.5-flash", Stream: func(context.Context, middleware.Chunk) error { return nil }}
	resp, err := p.readStream(middleware.WithKeepNative(context.Background()), req, bytes.NewReader(sse))
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Message.ToolCalls; len(c) != 2 || c[0].ID != "call_1" || c[0].Name != "get_weather" || c[1].Arguments != `{"city":"Rome"}` {
		t.Fatalf("the accumulator's calls %+v", c)
	}
	if _, asRead, ok := resp.Native.(middleware.NativeMarshaler).MarshalNative(); !ok || string(asRead) != want {
		t.Fatalf("merged as read (%v)\n%s", ok, asRead)
	}
	stream, err := appendRestream(nil, got, true)
	if err != nil {
		t.Fatal(err)
	}
	payloads := ssePayloads(t, stream)
	if !bytes.Contains(payloads[0], []byte(`"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""},"extra_content":{"google":{"thought_signature":"SIG\u003c1\u003e"}}`)) {
		t.Fatalf("the replay's first chunk lacks the call's signature:\n%s", payloads[0])
	}
	if again, err := mergeChunks(payloads); err != nil || !reflect.DeepEqual(decodeAny(t, again), decodeAny(t, got)) {
		t.Fatalf("the replay merged back (%v)\n%s", err, again)
	}
}
