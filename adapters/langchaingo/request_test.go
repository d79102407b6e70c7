package langchaingo_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// coreRequest returns the core request the chain sees for a call.
func coreRequest(t *testing.T, msgs []llms.MessageContent, opts ...llms.CallOption) *middleware.Request {
	t.Helper()
	var sp spy
	in := &stub{resp: textResponse("ok", 1, 1)}
	llm := twlc.New(twlc.Models{"m": in}, sp.mw)
	if _, err := llm.GenerateContent(t.Context(), msgs, opts...); err != nil {
		t.Fatal(err)
	}
	req, _ := sp.last(t)
	return req
}

func ptr[T any](v T) *T { return &v }

// TestTemperatureOmittedStaysNil: options langchaingo cannot report as
// unset stay unset in the core request; explicit zeros are kept.
func TestTemperatureOmittedStaysNil(t *testing.T) {
	msgs := []llms.MessageContent{human("hi")}
	req := coreRequest(t, msgs)
	if req.Temperature != nil || req.TopP != nil || req.Seed != nil || req.N != 0 || req.MaxTokens != 0 {
		t.Fatalf("omitted options: temperature %v top_p %v seed %v n %d max %d", req.Temperature, req.TopP, req.Seed, req.N, req.MaxTokens)
	}
	req = coreRequest(t, msgs, llms.WithTemperature(0), llms.WithTopP(0), llms.WithSeed(0))
	if req.Temperature == nil || *req.Temperature != 0 || req.TopP == nil || *req.TopP != 0 || req.Seed == nil || *req.Seed != 0 {
		t.Fatalf("explicit zeros: temperature %v top_p %v seed %v", req.Temperature, req.TopP, req.Seed)
	}
	req = coreRequest(t, msgs, llms.WithTemperature(0.7), llms.WithSeed(42), llms.WithN(2), llms.WithMaxTokens(256))
	if *req.Temperature != 0.7 || *req.Seed != 42 || req.N != 2 || req.MaxTokens != 256 {
		t.Fatalf("set options: %+v", req)
	}
	// A later option wins, as in langchaingo.
	req = coreRequest(t, msgs, llms.WithTemperature(0.7), llms.WithTemperature(0))
	if req.Temperature == nil || *req.Temperature != 0 {
		t.Fatalf("temperature %v", req.Temperature)
	}
}

func TestRequestMessages(t *testing.T) {
	img := []byte{0x89, 'P', 'N', 'G'}
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "You are an SRE."),
		{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{
			llms.TextPart("What is in"), llms.TextPart("this picture?"),
			llms.ImageURLWithDetailPart("https://example.com/a.png", "low"),
			llms.BinaryPart("image/png", img),
			llms.BinaryPart("application/pdf", []byte("%PDF")),
		}},
		{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{
			llms.TextPart("Let me check."),
			llms.ToolCall{ID: "call_1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "check_disk", Arguments: `{"path":"/"}`}},
		}},
		{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "call_1", Name: "check_disk", Content: "95% full"}}},
		{Role: llms.ChatMessageTypeFunction, Parts: []llms.ContentPart{llms.ToolCallResponse{Name: "legacy", Content: "done"}}},
		{Role: llms.ChatMessageTypeGeneric, Parts: []llms.ContentPart{llms.TextPart("generic")}},
		{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{
			llms.ToolCallResponse{ToolCallID: "a", Content: "A"}, llms.ToolCallResponse{ToolCallID: "b", Content: "B"}}},
	}
	want := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are an SRE."},
		{Role: middleware.RoleUser, Parts: []middleware.Part{
			{Type: "text", Text: "What is in"}, {Type: "text", Text: "this picture?"},
			{Type: "image_url", URL: "https://example.com/a.png", Detail: "low"},
			{Type: "image_url", MIMEType: "image/png", Data: img},
			{Type: "file", MIMEType: "application/pdf", Data: []byte("%PDF")},
		}},
		{Role: middleware.RoleAssistant, Content: "Let me check.", ToolCalls: []middleware.ToolCall{{ID: "call_1", Name: "check_disk", Arguments: `{"path":"/"}`}}},
		{Role: middleware.RoleTool, ToolCallID: "call_1", Name: "check_disk", Content: "95% full"},
		{Role: "function", Name: "legacy", Content: "done"}, // as the OpenAI transport reads it
		{Role: middleware.RoleUser, Content: "generic"},
		{Role: middleware.RoleTool, ToolCallID: "a", Content: "A"},
		{Role: middleware.RoleTool, ToolCallID: "b", Content: "B"},
	}
	req := coreRequest(t, msgs)
	if !reflect.DeepEqual(req.Messages, want) {
		t.Fatalf("messages:\n got %+v\nwant %+v", req.Messages, want)
	}
	if req.LastUserText() != "generic" || req.Messages[1].Text() != "What is in\nthis picture?" {
		t.Errorf("texts %q %q", req.LastUserText(), req.Messages[1].Text())
	}
}

func TestRequestOptions(t *testing.T) {
	params := map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}}
	req := coreRequest(t, []llms.MessageContent{human("hi")},
		llms.WithStopWords([]string{"END"}),
		llms.WithFunctions([]llms.FunctionDefinition{{Name: "legacy", Description: "old", Parameters: json.RawMessage(`{"type": "object"}`)}}),
		llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "check_disk", Description: "disk", Parameters: params, Strict: true}}}),
		llms.WithToolChoice(llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: "check_disk"}}),
		llms.WithJSONMode(),
		llms.WithModel("m"),
	)
	wantTools := []middleware.Tool{
		{Name: "legacy", Description: "old", Parameters: []byte(`{"type":"object"}`)},
		{Name: "check_disk", Description: "disk", Strict: true, Parameters: []byte(`{"properties":{"path":{"type":"string"}},"type":"object"}`)},
	}
	if !reflect.DeepEqual(req.Tools, wantTools) {
		t.Errorf("tools %+v", req.Tools)
	}
	if req.ToolChoice != "check_disk" || !reflect.DeepEqual(req.Stop, []string{"END"}) || string(req.ResponseFormat) != `{"type":"json_object"}` || req.Model != "m" {
		t.Errorf("request %+v", req)
	}
	for _, tc := range []struct {
		choice any
		want   string
	}{
		{"auto", "auto"}, {"none", "none"}, {"required", "required"},
		{&llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: "x"}}, "x"},
		{map[string]any{"type": "function", "function": map[string]any{"name": "y"}}, "y"},
	} {
		if got := coreRequest(t, []llms.MessageContent{human("hi")}, llms.WithToolChoice(tc.choice)).ToolChoice; got != tc.want {
			t.Errorf("tool choice %#v: %q, want %q", tc.choice, got, tc.want)
		}
	}
	if got := coreRequest(t, []llms.MessageContent{human("hi")}, llms.WithFunctionCallBehavior(llms.FunctionCallBehaviorNone)).ToolChoice; got != "none" {
		t.Errorf("function call behavior: %q", got)
	}
}

// router returns a middleware that sends every call to model and sets max
// tokens, as a router and a budget do.
func router(model string, maxTokens int) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := req.Clone()
			r.Model, r.MaxTokens = model, maxTokens
			return next.Handle(ctx, r)
		})
	}
}

// TestProviderOverrides: the inner model gets the caller's own messages and
// options, plus the model the chain routed to and what it changed.
func TestProviderOverrides(t *testing.T) {
	strong := &stub{resp: textResponse("strong", 1, 1)}
	cheap := &stub{resp: textResponse("cheap", 1, 1)}
	llm := twlc.New(twlc.Models{"gpt-4o": strong, "gpt-4o-mini": cheap}, router("gpt-4o-mini", 512), twlc.WithDefaultModel("gpt-4o"))
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, "sys"), human("hi")}
	resp, err := llm.GenerateContent(t.Context(), msgs, llms.WithModel("gpt-4o"), llms.WithTemperature(0.2), llms.WithTopK(7),
		llms.WithMetadata(map[string]any{"user": "u1"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Content != "cheap" || len(strong.calls) != 0 {
		t.Fatalf("answered %q; strong called %d times", resp.Choices[0].Content, len(strong.calls))
	}
	c := cheap.lastCall(t)
	if c.opts.Model != "gpt-4o-mini" || c.opts.MaxTokens != 512 || c.opts.Temperature != 0.2 || c.opts.TopK != 7 {
		t.Errorf("inner options %+v", c.opts)
	}
	// Metadata is the caller's, untouched: the adapter adds none.
	if !reflect.DeepEqual(c.opts.Metadata, map[string]any{"user": "u1"}) {
		t.Errorf("metadata %v", c.opts.Metadata)
	}
	if &c.messages[0] != &msgs[0] {
		t.Error("unchanged messages were not passed as the caller's slice")
	}

	// No model named: the default.
	if _, err := twlc.New(twlc.Models{"gpt-4o": strong, "gpt-4o-mini": cheap}, nil, twlc.WithDefaultModel("gpt-4o")).
		GenerateContent(t.Context(), msgs); err != nil || strong.lastCall(t).opts.Model != "gpt-4o" {
		t.Errorf("default model: %v, %+v", err, strong.lastCall(t).opts)
	}
}

// TestProviderRebuildsChanges: messages and tools a middleware changed are
// converted back; the ones it kept are the caller's originals.
func TestProviderRebuildsChanges(t *testing.T) {
	in := &stub{resp: textResponse("ok", 1, 1)}
	compact := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := req.DeepClone()
			// Drop the middle message, add a summary, offer no tools, ask for
			// no JSON, change sampling.
			r.Messages = append([]middleware.Message{{Role: middleware.RoleSystem, Content: "summary"}}, r.Messages[0], r.Messages[2])
			r.Tools, r.ToolChoice, r.ResponseFormat = nil, "", nil
			r.Temperature, r.Seed, r.Stop, r.N = nil, ptr(int64(7)), []string{"X"}, 0
			return next.Handle(ctx, r)
		})
	}
	llm := twlc.New(twlc.Models{"m": in}, compact)
	image := llms.MessageContent{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{
		llms.ImageURLWithDetailPart("https://example.com/a.png", "high"), llms.TextPart("look")}}
	msgs := []llms.MessageContent{image, human("old turn"), human("new turn")}
	_, err := llm.GenerateContent(t.Context(), msgs, llms.WithTools(weatherTools("t")), llms.WithToolChoice("required"),
		llms.WithJSONMode(), llms.WithTemperature(0.5), llms.WithN(3), llms.WithStopWords([]string{"A"}))
	if err != nil {
		t.Fatal(err)
	}
	c := in.lastCall(t)
	want := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, "summary"), image, msgs[2]}
	if !reflect.DeepEqual(c.messages, want) {
		t.Errorf("messages %+v", c.messages)
	}
	o := c.opts
	if o.Tools != nil || o.Functions != nil || o.ToolChoice != nil || o.JSONMode || o.Temperature != 0 || o.Seed != 7 ||
		o.N != 0 || !reflect.DeepEqual(o.StopWords, []string{"X"}) {
		t.Errorf("options %+v", o)
	}
}

// TestProviderCoreRequest: Provider serves requests that did not come from
// a Model (another adapter, a middleware's own request).
func TestProviderCoreRequest(t *testing.T) {
	in := &stub{resp: &llms.ContentResponse{Choices: []*llms.ContentChoice{{
		StopReason: "tool_calls",
		ToolCalls:  []llms.ToolCall{{ID: "c1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "f", Arguments: "{}"}}},
		GenerationInfo: map[string]any{
			"InputTokens": 10, "OutputTokens": 5, "CacheReadInputTokens": 100, "CacheCreationInputTokens": 0},
	}}}}
	h := twlc.Provider(twlc.Models{"claude": in})
	resp, err := h.Handle(t.Context(), &middleware.Request{
		Model: "claude",
		Messages: []middleware.Message{
			{Role: middleware.RoleSystem, Content: "sys"},
			{Role: middleware.RoleUser, Parts: []middleware.Part{{Type: "text", Text: "a"}, {Type: "image_url", URL: "https://x/y.png"}}},
			{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: "c0", Name: "f", Arguments: "{}"}}},
			{Role: middleware.RoleTool, ToolCallID: "c0", Content: "result"},
		},
		Tools:       []middleware.Tool{{Name: "f", Parameters: []byte(`{"type":"object"}`)}},
		ToolChoice:  "f",
		Temperature: ptr(0.0),
		MaxTokens:   100,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := in.lastCall(t)
	wantMsgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "sys"),
		{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.TextPart("a"), llms.ImageURLPart("https://x/y.png")}},
		{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.ToolCall{ID: "c0", Type: "function", FunctionCall: &llms.FunctionCall{Name: "f", Arguments: "{}"}}}},
		{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "c0", Content: "result"}}},
	}
	if !reflect.DeepEqual(c.messages, wantMsgs) {
		t.Errorf("messages %+v", c.messages)
	}
	if c.opts.Model != "claude" || c.opts.MaxTokens != 100 || len(c.opts.Tools) != 1 || c.opts.Tools[0].Function.Name != "f" ||
		!reflect.DeepEqual(c.opts.Tools[0].Function.Parameters, map[string]any{"type": "object"}) {
		t.Errorf("options %+v", c.opts)
	}
	if tc, ok := c.opts.ToolChoice.(llms.ToolChoice); !ok || tc.Function.Name != "f" {
		t.Errorf("tool choice %#v", c.opts.ToolChoice)
	}
	want := middleware.Usage{InputTokens: 110, OutputTokens: 5, CachedInputTokens: 100}
	if resp.Usage != want || resp.FinishReason != middleware.FinishToolCalls || resp.Message.ToolCalls[0].ID != "c1" {
		t.Errorf("response %+v", resp)
	}
}

func TestUnknownModel(t *testing.T) {
	llm := twlc.New(twlc.Models{"a": &stub{}, "b": &stub{}}, nil)
	_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hi")})
	var ue *twlc.UnknownModelError
	if !errors.Is(err, twlc.ErrUnknownModel) || !errors.As(err, &ue) || ue.Model != "" || !reflect.DeepEqual(ue.Known, []string{"a", "b"}) {
		t.Fatalf("no default: %v", err)
	}
	_, err = llm.GenerateContent(t.Context(), []llms.MessageContent{human("hi")}, llms.WithModel("c"))
	if !errors.Is(err, twlc.ErrUnknownModel) || !strings.Contains(err.Error(), `"c"`) || !strings.Contains(err.Error(), "a, b") {
		t.Fatalf("unknown: %v", err)
	}
	if one := twlc.New(twlc.Models{"only": &stub{}}, nil); one.DefaultModel() != "only" {
		t.Fatalf("single model default %q", one.DefaultModel())
	}
}

// TestToolCallsPreserved: an OpenAI functions agent's second turn (the
// model's tool calls and their results, functions offered) goes through the
// chain and the real openai client with tool call ids intact, and the
// model's new tool calls come back with ids and arguments.
func TestToolCallsPreserved(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.LastRole("tool")).Reply(openaitest.ToolCalls(
		openaitest.Call("call_3", "check_memory", `{"host":"db-1"}`),
		openaitest.Call("call_4", "check_disk", `{"path":"/var"}`)))
	var sp spy
	inner := newOpenAI(t, srv, "gpt-4o", false)
	llm := twlc.New(twlc.Models{"gpt-4o": inner}, middleware.Chain(instrument.New(nil, nil), sp.mw))

	// As agents.OpenAIFunctionsAgent builds the call.
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "You are a helpful AI assistant."),
		human("Why is db-1 slow?"),
		{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{
			llms.ToolCall{ID: "call_1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "check_disk", Arguments: `{"path":"/"}`}},
			llms.ToolCall{ID: "call_2", Type: "function", FunctionCall: &llms.FunctionCall{Name: "check_cpu", Arguments: `{}`}},
		}},
		{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "call_1", Content: "12% used"}}},
		{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "call_2", Content: "load 0.3"}}},
	}
	functions := []llms.FunctionDefinition{
		{Name: "check_disk", Description: "disk usage", Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}}},
		{Name: "check_memory", Description: "memory usage", Parameters: map[string]any{"type": "object", "properties": map[string]any{"host": map[string]any{"type": "string"}}}},
	}
	opts := []llms.CallOption{llms.WithFunctions(functions), llms.WithStreamingFunc(nil)}
	resp, err := llm.GenerateContent(t.Context(), msgs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := inner.GenerateContent(t.Context(), msgs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp, plain) {
		t.Errorf("response %s\nplain %s", dump(resp), dump(plain))
	}
	c := resp.Choices[0]
	if c.StopReason != "tool_calls" || len(c.ToolCalls) != 2 || c.ToolCalls[0].ID != "call_3" || c.ToolCalls[0].FunctionCall.Arguments != `{"host":"db-1"}` ||
		c.ToolCalls[1].ID != "call_4" || c.ToolCalls[1].FunctionCall.Name != "check_disk" || c.FuncCall.Name != "check_memory" {
		t.Fatalf("tool calls %s", dump(c))
	}
	// The wire request of the wrapped call equals the plain one.
	recs := srv.Requests()
	if len(recs) != 2 || string(recs[0].Body) != string(recs[1].Body) {
		t.Fatalf("wire bodies differ:\n%s\n%s", recs[0].Body, recs[1].Body)
	}
	wire := recs[0].Chat
	if wire.Messages[2].ToolCalls[1].ID != "call_2" || wire.Messages[3].ToolCallID != "call_1" || len(wire.Tools) != 2 {
		t.Errorf("wire request %+v", wire)
	}
	// The chain saw the turn in core terms.
	req, core := sp.last(t)
	if req.Messages[2].ToolCalls[1] != (middleware.ToolCall{ID: "call_2", Name: "check_cpu", Arguments: "{}"}) ||
		req.Messages[4].Role != middleware.RoleTool || req.Messages[4].ToolCallID != "call_2" || len(req.Tools) != 2 || req.Stream != nil {
		t.Errorf("core request %+v", req)
	}
	if len(core.Message.ToolCalls) != 2 || core.Message.ToolCalls[1].ID != "call_4" || core.FinishReason != middleware.FinishToolCalls {
		t.Errorf("core response %+v", core)
	}
}

// TestResponseIsCopy: a caller mutating a returned response (content,
// GenerationInfo, tool calls) does not change what a later call returns,
// also when a cache answers both calls from the same stored response.
func TestResponseIsCopy(t *testing.T) {
	in := &stub{resp: &llms.ContentResponse{Choices: []*llms.ContentChoice{{
		Content: "answer", StopReason: "tool_calls",
		ToolCalls:      []llms.ToolCall{{ID: "c1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "f", Arguments: "{}"}}},
		GenerationInfo: map[string]any{"PromptTokens": 10, "CompletionTokens": 2, "TotalTokens": 12},
	}}}}
	in.resp.Choices[0].FuncCall = in.resp.Choices[0].ToolCalls[0].FunctionCall
	var stored *middleware.Response
	memo := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if stored != nil {
				hit := stored.Clone()
				hit.FromCache = true
				return hit, nil
			}
			resp, err := next.Handle(ctx, req)
			if err == nil {
				stored = resp.Clone()
			}
			return resp, err
		})
	}
	for name, mw := range map[string]middleware.Middleware{"direct": nil, "cached": memo} {
		t.Run(name, func(t *testing.T) {
			stored = nil
			llm := twlc.New(twlc.Models{"m": in}, mw)
			first, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")})
			if err != nil {
				t.Fatal(err)
			}
			want := dump(first)
			c := first.Choices[0]
			c.Content = "mutated"
			c.GenerationInfo["PromptTokens"] = 999
			c.ToolCalls[0].FunctionCall.Name = "evil"
			c.ToolCalls[0].ID = "x"
			first.Choices = append(first.Choices, &llms.ContentChoice{})
			second, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")})
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(second); got != want {
				t.Fatalf("second response %s, want %s", got, want)
			}
			if second.Choices[0].FuncCall != second.Choices[0].ToolCalls[0].FunctionCall {
				t.Error("FuncCall no longer aliases the first tool call's function, as the openai backend's does")
			}
		})
	}
	if in.resp.Choices[0].Content != "answer" || in.resp.Choices[0].GenerationInfo["PromptTokens"] != 10 {
		t.Fatal("the inner model's response was mutated")
	}
}

type reasoningEmbedder struct {
	stub
	vectors [][]float32
}

func (r *reasoningEmbedder) SupportsReasoning() bool { return true }

func (r *reasoningEmbedder) CreateEmbedding(_ context.Context, texts []string) ([][]float32, error) {
	return r.vectors[:len(texts)], nil
}

func TestForwardedCapabilities(t *testing.T) {
	r := &reasoningEmbedder{stub: stub{resp: textResponse("42", 3, 1)}, vectors: [][]float32{{1, 2}, {3, 4}}}
	llm := twlc.New(twlc.Models{"o3-mini": r, "plain": &stub{}}, nil, twlc.WithDefaultModel("o3-mini"))
	var _ interface {
		CreateEmbedding(context.Context, []string) ([][]float32, error)
	} = llm
	if !llm.SupportsReasoning() {
		t.Error("SupportsReasoning not forwarded")
	}
	v, err := llm.CreateEmbedding(t.Context(), []string{"a", "b"})
	if err != nil || !reflect.DeepEqual(v, r.vectors) {
		t.Errorf("CreateEmbedding %v %v", v, err)
	}
	plain := twlc.New(twlc.Models{"o3-mini": r, "plain": &stub{}}, nil, twlc.WithDefaultModel("plain"))
	if plain.SupportsReasoning() {
		t.Error("a model without SupportsReasoning reports reasoning")
	}
	if _, err := plain.CreateEmbedding(t.Context(), []string{"a"}); !errors.Is(err, twlc.ErrNoEmbeddings) || !strings.Contains(err.Error(), "plain") {
		t.Errorf("no embeddings: %v", err)
	}
	if s, err := llm.Call(t.Context(), "hi"); err != nil || s != "42" {
		t.Errorf("Call: %q %v", s, err)
	}
}

// TestContentBlockChoices: a backend that returns one choice per content
// block (Anthropic: thinking, text, tool use) gives one core answer, with
// the usage of the first choice counted once; the caller still gets every
// choice.
func TestContentBlockChoices(t *testing.T) {
	info := func() map[string]any {
		return map[string]any{"InputTokens": 100, "OutputTokens": 40, "CacheReadInputTokens": 0, "CacheCreationInputTokens": 0}
	}
	think := info()
	think["ThinkingContent"] = "The disk is the suspect."
	in := &stub{resp: &llms.ContentResponse{Choices: []*llms.ContentChoice{
		{StopReason: "tool_use", GenerationInfo: think},
		{Content: "Checking the disk.", StopReason: "tool_use", GenerationInfo: info()},
		{StopReason: "tool_use", GenerationInfo: info(), ToolCalls: []llms.ToolCall{{ID: "toolu_1",
			FunctionCall: &llms.FunctionCall{Name: "check_disk", Arguments: `{"path":"/"}`}}}},
	}}}
	var sp spy
	resp, err := twlc.New(twlc.Models{"claude-sonnet-4": in}, sp.mw).GenerateContent(t.Context(), []llms.MessageContent{human("q")})
	if err != nil {
		t.Fatal(err)
	}
	_, core := sp.last(t)
	want := middleware.Message{Role: middleware.RoleAssistant, Content: "Checking the disk.", Reasoning: "The disk is the suspect.",
		ToolCalls: []middleware.ToolCall{{ID: "toolu_1", Name: "check_disk", Arguments: `{"path":"/"}`}}}
	if !reflect.DeepEqual(core.Message, want) || core.FinishReason != middleware.FinishToolCalls ||
		core.Usage != (middleware.Usage{InputTokens: 100, OutputTokens: 40}) {
		t.Errorf("core response %+v", core)
	}
	if len(resp.Choices) != 3 || resp.Choices[2].ToolCalls[0].ID != "toolu_1" || resp.Choices[0].GenerationInfo["ThinkingContent"] != "The disk is the suspect." {
		t.Errorf("caller got %s", dump(resp))
	}
	// Several candidates asked for: the first one only.
	if _, err := twlc.New(twlc.Models{"m": in}, sp.mw).GenerateContent(t.Context(), []llms.MessageContent{human("q")}, llms.WithN(3)); err != nil {
		t.Fatal(err)
	}
	if _, core := sp.last(t); core.Message.Content != "" || core.Message.ToolCalls != nil {
		t.Errorf("with n=3: %+v", core.Message)
	}
}

// TestKeptToolsAreOriginals: tools a middleware keeps reach the inner model
// as the caller defined them.
func TestKeptToolsAreOriginals(t *testing.T) {
	in := &stub{resp: textResponse("ok", 1, 1)}
	onlySecond := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := req.Clone()
			r.Tools = append([]middleware.Tool(nil), req.Tools[1], middleware.Tool{Name: "read_artifact", Parameters: []byte(`{"type":"object"}`)})
			r.ToolChoice = "read_artifact"
			return next.Handle(ctx, r)
		})
	}
	tools := weatherTools("check_disk", "check_memory")
	if _, err := twlc.New(twlc.Models{"m": in}, onlySecond).GenerateContent(t.Context(), []llms.MessageContent{human("q")}, llms.WithTools(tools)); err != nil {
		t.Fatal(err)
	}
	o := in.lastCall(t).opts
	if len(o.Tools) != 2 || o.Tools[0].Function != tools[1].Function || o.Tools[1].Function.Name != "read_artifact" {
		t.Errorf("tools %+v", o.Tools)
	}
	if tc, ok := o.ToolChoice.(llms.ToolChoice); !ok || tc.Function.Name != "read_artifact" {
		t.Errorf("tool choice %#v", o.ToolChoice)
	}
}
