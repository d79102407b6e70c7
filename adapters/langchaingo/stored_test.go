package langchaingo

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// FuzzStoredContentResponse: whatever bytes a store hands back, decoding
// never panics; what MarshalNative wrote decodes to an equal response.
func FuzzStoredContentResponse(f *testing.F) {
	fc := &llms.FunctionCall{Name: "check_disk", Arguments: `{"path":"/"}`}
	cr := &llms.ContentResponse{Choices: []*llms.ContentChoice{
		{Content: "one", StopReason: "tool_calls", ReasoningContent: "think", FuncCall: fc,
			ToolCalls:      []llms.ToolCall{{ID: "c1", Type: "function", FunctionCall: fc}},
			GenerationInfo: map[string]any{"a": 1, "b": int32(2), "c": int64(3), "d": uint64(4), "e": float32(0.5), "f": 0.25, "g": "s", "h": true, "i": nil}},
		nil,
		{Content: "two", FuncCall: &llms.FunctionCall{Name: "legacy"}, ToolCalls: []llms.ToolCall{{ID: "x"}}},
	}}
	_, data, ok := (&nativeResponse{raw: cr, n: 3}).MarshalNative()
	if !ok {
		f.Fatal("not marshalled")
	}
	got, n, ok := decodeStored(data)
	if !ok || n != 3 || !reflect.DeepEqual(got, cr) || got.Choices[0].FuncCall != got.Choices[0].ToolCalls[0].FunctionCall {
		f.Fatalf("round trip: %v %d %+v", ok, n, got)
	}
	f.Add(data)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeStored(data)
		storedContentResponse(&middleware.Response{Native: &middleware.StoredNative{Format: NativeFormat, Data: data}})
	})
}

// TestNewTransportDefaultsToTheSharedBase: NewTransport(nil) sends through
// the OpenAI adapter's default base transport (one per process, with the
// write buffer that sends an agent's request in one write), not through
// http.DefaultTransport.
func TestNewTransportDefaultsToTheSharedBase(t *testing.T) {
	tr, ok := NewTransport(nil).(*transport)
	if !ok || tr.base != twopenai.DefaultBaseTransport() || tr.base == http.DefaultTransport {
		t.Fatalf("NewTransport(nil) sends through %T %p, want the default base %p", tr.base, tr.base, twopenai.DefaultBaseTransport())
	}
	if b, ok := tr.base.(*http.Transport); !ok || b.WriteBufferSize < 32<<10 {
		t.Fatalf("the default base is %T with its write buffer unset", tr.base)
	}
	custom := &http.Transport{}
	if tr := NewTransport(custom).(*transport); tr.base != custom {
		t.Fatal("NewTransport(base) does not send through base")
	}
}
