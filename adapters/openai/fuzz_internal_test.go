package openai

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// FuzzDecodeRequest: any body either decodes, or fails with a
// *RequestError (which the transport turns into a 400), the same with a
// Transport's message memo as without; a decoded request
// encodes to valid JSON that decodes to the same core request, and its
// unchanged re-encoding for upstream is valid JSON. Its cache key given by
// reference (CacheKeySpans) is its cache key (AppendCacheKey).
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(fullRequest))
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":"0.2"}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]}],"stream":true,"stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"model":"m","messages":[],"stop":["a","b"],"seed":3,"n":2,"max_tokens":5,"response_format":{"type":"json_object"},"reasoning_effort":"low"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"model":"m","messages":[],"tools":[{"type":"custom","custom":{"name":"g","description":"d"}},{"type":"function","function":{"name":"f"}},{"type":"web_search"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","Text":"b"}]}],"tools":[{"type":"function","function":{"name":"f","Description":"d"}}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","ARGUMENTS":"{}"}}]}]}`))
	memo := newMsgMemo(64, 1<<20)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRequest(body)
		for range 2 { // the memo decodes as the strict reader, kept or not
			got, gotErr := decodeRequestMemo(body, memo)
			decodedEqual(t, body, got, req, gotErr, err)
		}
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || !errors.Is(err, middleware.ErrBadRequest) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		// Every tool of the body is the core's (a function tool) or in
		// Extra's "tools" (any other), where the token count finds it.
		var bodyTools, extraTools struct {
			Tools []json.RawMessage `json:"tools"`
		}
		if json.Unmarshal(body, &bodyTools) == nil {
			_ = json.Unmarshal(req.Extra, &extraTools)
			if len(req.Tools)+len(extraTools.Tools) != len(bodyTools.Tools) {
				t.Fatalf("%d tools in the body, %d in the core and %d in Extra (%s)", len(bodyTools.Tools), len(req.Tools), len(extraTools.Tools), req.Extra)
			}
		}
		// The cache's key by reference is the key: the spans of the body,
		// length-prefixed, are AppendCacheKey's bytes, and whole agrees.
		w := req.Native.(*Wire)
		key, whole := w.AppendCacheKey(nil, req)
		data, spans, whole2 := w.CacheKeySpans(nil, req)
		var byRef []byte
		for i := 0; i+1 < len(spans); i += 2 {
			byRef = binary.AppendUvarint(byRef, uint64(spans[i+1]-spans[i]))
			byRef = append(byRef, data[spans[i]:spans[i+1]]...)
		}
		if whole != whole2 || len(spans)%2 != 0 || !bytes.Equal(byRef, key) {
			t.Fatalf("key by reference %q (whole %v), key %q (whole %v)", byRef, whole2, key, whole)
		}
		if out := encodeRequest(req, encodeOptions{}); !json.Valid(out) {
			t.Fatalf("re-encoded body is not JSON: %s", out)
		}
		req.Native = nil
		out := encodeRequest(req, encodeOptions{})
		if !json.Valid(out) {
			t.Fatalf("encoded body is not JSON: %s", out)
		}
		again, err := decodeRequest(out)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		again.Native, again.Extra, req.Extra = nil, nil, nil
		if !reflect.DeepEqual(nilEmpty(again), nilEmpty(req)) {
			t.Fatalf("round trip\n%+v\n%+v\n%s", again, req, out)
		}
	})
}

// FuzzDecodeResponse: any body either decodes, or fails with an error or
// an API error; a decoded response encodes to valid JSON that decodes to
// the same core response.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"r","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":1}}}`))
	f.Add([]byte(`{"error":{"message":"no","type":"invalid_request_error","param":null,"code":"x"}}`))
	f.Add([]byte(`{"choices":[{"message":{"content":null,"refusal":"no"}}],"usage":null}`))
	f.Add([]byte(`{"choices":[]}`))
	f.Add([]byte(`{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hm"}]},{"type":"text","text":"Hi"},{"type":"refusal","refusal":"no"}]},"finish_reason":"stop"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, apiErr, err := decodeResponse(body)
		if err != nil || apiErr != nil {
			return
		}
		out := appendResponse(nil, resp, chunkMeta{id: resp.ID, model: resp.Model, created: 1})
		if !json.Valid(out) {
			t.Fatalf("encoded response is not JSON: %s", out)
		}
		again, apiErr, err := decodeResponse(out)
		if err != nil || apiErr != nil {
			t.Fatalf("%s: %v %v", out, err, apiErr)
		}
		want := resp.Clone()
		want.Native, again.Native = nil, nil
		if want.FinishReason == "" {
			want.FinishReason = finishOr(want)
		}
		if len(want.Message.ToolCalls) == 0 {
			want.Message.ToolCalls = nil
		}
		if len(again.Message.ToolCalls) == 0 {
			again.Message.ToolCalls = nil
		}
		if !reflect.DeepEqual(again, want) {
			t.Fatalf("round trip\n%+v\n%+v\n%s", again, want, out)
		}
	})
}

// nilEmpty sets the request's empty slices to nil: an absent member and an
// empty one mean the same.
func nilEmpty(r *middleware.Request) *middleware.Request {
	r = r.DeepClone()
	if len(r.Messages) == 0 {
		r.Messages = nil
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		if len(m.Parts) == 0 {
			m.Parts = nil
		}
		if len(m.ToolCalls) == 0 {
			m.ToolCalls = nil
		}
		for j := range m.Parts {
			if len(m.Parts[j].Data) == 0 {
				m.Parts[j].Data = nil
			}
		}
	}
	if len(r.Tools) == 0 {
		r.Tools = nil
	}
	for i := range r.Tools {
		if len(r.Tools[i].Parameters) == 0 {
			r.Tools[i].Parameters = nil
		}
	}
	if len(r.Stop) == 0 {
		r.Stop = nil
	}
	if len(r.ResponseFormat) == 0 {
		r.ResponseFormat = nil
	}
	return r
}

func TestResponseIsTheChoiceWithIndexZero(t *testing.T) {
	for body, want := range map[string]string{
		`{"choices":[{"index":1,"message":{"content":"one"}},{"index":0,"message":{"content":"zero"},"finish_reason":"stop"}]}`: "zero",
		`{"choices":[{"message":{"content":"first"}},{"message":{"content":"second"}}]}`:                                        "first",
		`{"choices":[{"index":2,"message":{"content":"two"}}]}`:                                                                 "two",
	} {
		resp, _, err := decodeResponse([]byte(body))
		if err != nil || resp.Message.Content != want {
			t.Errorf("%s: %+v %v, want %q", body, resp, err, want)
		}
	}
}
