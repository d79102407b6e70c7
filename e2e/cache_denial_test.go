package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	openaigo "github.com/openai/openai-go/v3"
	"github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/internal/httprr"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// keyer runs request bodies through the real OpenAI transport and returns
// the canonical cache encoding of the core request the chain received.
type keyer struct {
	tr  *twopenai.Transport
	key []byte
}

var (
	errKeyed        = errors.New("keyed")
	errNotForwarded = errors.New("the transport did not decode the body")
)

func newKeyer() *keyer {
	k := &keyer{}
	chain := func(middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
			k.key = cache.AppendCanonical(nil, cache.ScopeGlobal, req)
			return nil, errKeyed
		})
	}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errNotForwarded })
	k.tr = twopenai.NewTransport(chain, twopenai.WithBaseTransport(base))
	return k
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// of returns the key of body; false when the transport could not decode it
// (it then forwards the body untouched: no chain, no cache).
func (k *keyer) of(body []byte) ([]byte, bool) {
	k.key = nil
	r, _ := http.NewRequest(http.MethodPost, "http://upstream.test/v1/chat/completions", bytes.NewReader(body))
	resp, _ := k.tr.RoundTrip(r)
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return k.key, k.key != nil
}

// handShapes are request bodies of the shapes our tests and the issue's
// probes use: every message role and field, tools of every type, every form
// of tool_choice, vendor fields, invalid UTF-8.
var handShapes = []string{
	`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are an SRE."},{"role":"user","content":"disk?"}],"temperature":0,"seed":7}`,
	`{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://x.test/a.png","detail":"low"}},{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},{"type":"file","file":{"file_id":"f1"}}]}],"n":3,"logprobs":true,"top_logprobs":2}`,
	`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"},"refusal":null,"audio":{"id":"audio_1"}},{"role":"function","name":"f","content":"42"}],"functions":[{"name":"f","parameters":{"type":"object"}}],"function_call":"auto"}`,
	`{"model":"gpt-4o","messages":[{"role":"user","content":"go"},{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"check_disk","arguments":"{\"path\":\"/\"}"}}],"refusal":"I can't"},{"role":"tool","tool_call_id":"c1","content":"95%"}],"tools":[{"type":"function","function":{"name":"check_disk","description":"disk","parameters":{"type":"object","properties":{"path":{"type":"string"}}},"strict":true}},{"type":"custom","custom":{"name":"grammar","format":{"type":"text"}}}],"tool_choice":{"type":"function","function":{"name":"auto"}},"parallel_tool_calls":false}`,
	`{"model":"gpt-4o","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"lone \ud800 surrogate","name":"ops"}],"tool_choice":"auto","response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},"stop":["\n\n","END"],"max_completion_tokens":100,"reasoning_effort":"low","modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"},"prediction":{"type":"content","content":"x"},"web_search_options":{"search_context_size":"low"},"verbosity":"low"}`,
	`{"model":"Qwen/Qwen2.5-7B","messages":[{"role":"user","content":"pick"}],"guided_choice":["yes","no"],"guided_json":{"type":"object"},"min_tokens":5,"top_k":20,"min_p":0.1,"repetition_penalty":1.1,"chat_template_kwargs":{"enable_thinking":false},"frequency_penalty":0.5,"presence_penalty":0.1,"logit_bias":{"50256":-100},"max_tokens":64}`,
	`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"user":"u1","metadata":{"trace":"t"},"store":true,"service_tier":"flex","prompt_cache_key":"k","safety_identifier":"s"}`,
}

// corpus returns the request bodies the key properties are checked over:
// handShapes, every chat completion langchaingo recorded from real
// providers (its httprr testdata in the module cache), and go-openai's and
// openai-go's request types with every field filled by reflection.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i, s := range handShapes {
		out[fmt.Sprintf("shape %d", i)] = []byte(s)
	}
	if dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tmc/langchaingo").Output(); err == nil && len(bytes.TrimSpace(dir)) > 0 {
		files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(dir)), "llms", "*", "testdata", "*.httprr*"))
		more, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(dir)), "*", "testdata", "*.httprr*"))
		recorded := 0
		for _, f := range append(files, more...) {
			rr, err := httprr.Open(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for i, rec := range rr.Records() {
				if strings.HasSuffix(rec.URL, "/chat/completions") && json.Valid(rec.Body) {
					out[fmt.Sprintf("%s#%d", filepath.Base(f), i)] = rec.Body
					recorded++
				}
			}
		}
		if recorded < 10 {
			t.Fatalf("only %d recorded chat completions found in langchaingo's testdata", recorded)
		}
	} else {
		t.Logf("langchaingo's source is not in the module cache: recorded bodies left out")
	}

	var gr openai.ChatCompletionRequest
	fill(reflect.ValueOf(&gr).Elem(), 0)
	// go-openai refuses a message with both Content and MultiContent: one
	// message of each kind.
	m := gr.Messages[0]
	m.MultiContent = nil
	gr.Messages = append(gr.Messages, m)
	gr.Messages[0].Content = ""
	gr.ToolChoice = openai.ToolChoice{Type: "function", Function: openai.ToolFunction{Name: "auto"}}
	body, err := json.Marshal(gr)
	if err != nil {
		t.Fatalf("go-openai request filled by reflection: %v", err)
	}
	out["go-openai by reflection"] = body

	var op openaigo.ChatCompletionNewParams
	fill(reflect.ValueOf(&op).Elem(), 0)
	if body, err = json.Marshal(op); err != nil {
		t.Fatalf("openai-go request filled by reflection: %v", err)
	}
	out["openai-go by reflection"] = body
	return out
}

// fill sets every exported field reachable from v to a non-zero value
// (one element per slice and map). A union (a struct of "Of..." pointers,
// openai-go's form) gets its first variant only.
func fill(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strconv.Itoa(depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(depth + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(depth + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		m := reflect.MakeMap(v.Type())
		val := reflect.New(v.Type().Elem()).Elem()
		fill(val, depth+1)
		m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), val)
		v.Set(m)
	case reflect.Interface:
		if reflect.TypeFor[string]().Implements(v.Type()) {
			v.Set(reflect.ValueOf("auto"))
		}
	case reflect.Struct:
		t := v.Type()
		union := false
		for i := range t.NumField() {
			if strings.HasPrefix(t.Field(i).Name, "Of") {
				union = true
				break
			}
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "ExtraFields" {
				continue
			}
			if union {
				if strings.HasPrefix(f.Name, "Of") {
					fill(v.Field(i), depth+1)
					return
				}
				continue
			}
			fill(v.Field(i), depth+1)
		}
	}
}

// mutation is one change of a JSON document: at path (object keys and
// array indexes), op "set" replaces the value, "delete" removes the member
// or element, "add" adds a member to the object or an element to the array.
type mutation struct {
	path []any
	op   string
}

func (m mutation) String() string { return fmt.Sprintf("%s %v", m.op, m.path) }

// jsonMutations lists one change of every kind at every path of doc.
func jsonMutations(doc any, path []any, out []mutation) []mutation {
	p := append([]any(nil), path...)
	switch d := doc.(type) {
	case map[string]any:
		out = append(out, mutation{p, "add"})
		for _, k := range sortedKeys(d) {
			out = append(out, mutation{append(p[:len(p):len(p)], k), "delete"})
			out = jsonMutations(d[k], append(p[:len(p):len(p)], k), out)
		}
	case []any:
		out = append(out, mutation{p, "add"})
		for i, e := range d {
			out = append(out, mutation{append(p[:len(p):len(p)], i), "delete"})
			out = jsonMutations(e, append(p[:len(p):len(p)], i), out)
		}
	default:
		out = append(out, mutation{p, "set"})
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apply returns a changed deep copy of doc.
func apply(doc any, m mutation) any {
	var cp any
	b, _ := json.Marshal(doc)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	_ = d.Decode(&cp)
	if len(m.path) == 0 {
		return change(cp, m.op)
	}
	parent := cp
	for _, k := range m.path[:len(m.path)-1] {
		parent = child(parent, k)
	}
	last := m.path[len(m.path)-1]
	switch p := parent.(type) {
	case map[string]any:
		if m.op == "delete" {
			delete(p, last.(string))
		} else {
			p[last.(string)] = change(p[last.(string)], m.op)
		}
	case []any:
		i := last.(int)
		if m.op == "delete" {
			return replaceAt(cp, m.path[:len(m.path)-1], append(p[:i:i], p[i+1:]...))
		}
		p[i] = change(p[i], m.op)
	}
	return cp
}

func child(doc any, k any) any {
	if m, ok := doc.(map[string]any); ok {
		return m[k.(string)]
	}
	return doc.([]any)[k.(int)]
}

func replaceAt(doc any, path []any, v any) any {
	if len(path) == 0 {
		return v
	}
	parent := doc
	for _, k := range path[:len(path)-1] {
		parent = child(parent, k)
	}
	switch p := parent.(type) {
	case map[string]any:
		p[path[len(path)-1].(string)] = v
	case []any:
		p[path[len(path)-1].(int)] = v
	}
	return doc
}

// change returns v changed by op: a probe member or element added, or a
// scalar replaced by a different one of its kind (null by a string).
func change(v any, op string) any {
	switch x := v.(type) {
	case map[string]any:
		x["tw_probe"] = json.Number("1")
		return x
	case []any:
		if len(x) == 0 {
			return append(x, "tw_probe")
		}
		return append(x, x[len(x)-1])
	case string:
		return x + "~"
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return json.Number(strconv.FormatFloat(f+1, 'g', -1, 64))
	case bool:
		return !x
	case nil:
		return "tw_probe"
	}
	panic(fmt.Sprintf("change %T", v))
}

func decodeDoc(t *testing.T, body []byte) any {
	t.Helper()
	var doc any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// storedDoc reports whether a decoded request body has store: true.
func storedDoc(doc any) bool {
	m, _ := doc.(map[string]any)
	return m["store"] == true
}

// TestEveryFieldOutsideTheNeutralListSplitsTheKey: over a corpus of real
// request bodies, every change at every field path (a value changed, a
// member or element removed, an unknown member or an element added) sent
// through the OpenAI transport gives another cache key, unless the path is
// under a top-level field of middleware.NeutralFields (but metadata with
// store: true: middleware.NeutralMember), where it gives the same key.
func TestEveryFieldOutsideTheNeutralListSplitsTheKey(t *testing.T) {
	t.Parallel()
	k := newKeyer()
	total, undecodable := 0, 0
	bodies := corpus(t)
	for name, body := range bodies {
		doc := decodeDoc(t, body)
		base := mustMarshal(doc)
		baseKey, ok := k.of(base)
		if !ok {
			t.Fatalf("%s: the transport did not decode %s", name, base)
		}
		for _, m := range jsonMutations(doc, nil, nil) {
			changed := mustMarshal(apply(doc, m))
			key, ok := k.of(changed)
			total++
			if !ok {
				undecodable++ // sent on untouched: no cache involved
				continue
			}
			// (metadata is neutral but with store: true, which the
			// mutations of other paths leave as it is.)
			neutral := len(m.path) > 0 && middleware.NeutralMember(m.path[0].(string), storedDoc(doc))
			if same := bytes.Equal(key, baseKey); same != neutral {
				t.Errorf("%s: %v: same key %v, want %v\n%s\n%s", name, m, same, neutral, base, changed)
			}
		}
	}
	if total < 1000 || undecodable*10 > total {
		t.Fatalf("%d changes, %d undecodable: the corpus does not exercise the key", total, undecodable)
	}
	t.Logf("%d bodies, %d changes, %d sent on undecoded", len(bodies), total, undecodable)
}

// TestNeutralFieldsDoNotSplitTheKey: adding, changing or removing any of
// middleware.NeutralFields, in any body of the corpus, keeps the key (but
// metadata in a body with store: true, which splits it); the list is the
// documented one.
func TestNeutralFieldsDoNotSplitTheKey(t *testing.T) {
	t.Parallel()
	want := []string{"metadata", "prompt_cache_key", "safety_identifier", "service_tier", "stream", "stream_options", "user"}
	if got := middleware.NeutralFields(); !reflect.DeepEqual(got, want) {
		t.Fatalf("NeutralFields() = %v, want %v", got, want)
	}
	values := map[string][]any{
		"metadata":          {map[string]any{"trace_id": "a"}, map[string]any{"trace_id": "b", "span": "1"}, nil},
		"prompt_cache_key":  {"k1", "k2"},
		"safety_identifier": {"u-1", "u-2"},
		"service_tier":      {"auto", "default", "flex", "priority"},
		"stream":            {true, false},
		"stream_options":    {map[string]any{"include_usage": true}, map[string]any{"include_usage": false, "include_obfuscation": true}},
		"user":              {"alice", "bob"},
	}
	k := newKeyer()
	for name, body := range corpus(t) {
		doc := decodeDoc(t, body).(map[string]any)
		base := map[string]any{}
		for f, v := range doc {
			if !middleware.NeutralField(f) {
				base[f] = v
			}
		}
		baseKey, ok := k.of(mustMarshal(base))
		if !ok {
			t.Fatalf("%s: not decoded", name)
		}
		for _, f := range want {
			if !middleware.NeutralField(f) {
				t.Fatalf("NeutralField(%q) = false", f)
			}
			for _, v := range values[f] {
				withIt := map[string]any{f: v}
				for k, v := range base {
					withIt[k] = v
				}
				key, ok := k.of(mustMarshal(withIt))
				if !ok {
					t.Fatalf("%s: not decoded with %s = %v", name, f, v)
				}
				if neutral := middleware.NeutralMember(f, storedDoc(doc)); bytes.Equal(key, baseKey) != neutral {
					t.Errorf("%s: %s = %v: same key %v, want %v", name, f, v, !neutral, neutral)
				}
			}
		}
	}
	for _, f := range []string{"temperature", "guided_choice", "min_tokens", "tw_unknown", "Metadata", "users", "store"} {
		if middleware.NeutralField(f) {
			t.Errorf("NeutralField(%q) = true", f)
		}
	}
	if !middleware.NeutralMember("metadata", false) || middleware.NeutralMember("metadata", true) || !middleware.NeutralMember("user", true) {
		t.Error("NeutralMember: metadata is neutral but with store: true, the other neutral fields always")
	}
}

// TestKeyTellsApartWhatTheCoreConflates: pairs the core request alone
// cannot tell apart (the probes) get different keys through the
// transport.
func TestKeyTellsApartWhatTheCoreConflates(t *testing.T) {
	t.Parallel()
	k := newKeyer()
	const msgs = `"messages":[{"role":"user","content":"q"}]`
	for _, pair := range [][2]string{
		{`{"model":"m",` + msgs + `,"tool_choice":"auto"}`, `{"model":"m",` + msgs + `,"tool_choice":{"type":"function","function":{"name":"auto"}}}`},
		{`{"model":"m","messages":[{"role":"user","content":"\ud800"}]}`, `{"model":"m","messages":[{"role":"user","content":"\ufffd"}]}`},
		{"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", `{"model":"m","messages":[{"role":"user","content":"\ufffd"}]}`},
		{`{"model":"m",` + msgs + `}`, `{"model":"m",` + msgs + `,"guided_choice":["a","b"]}`},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"custom","custom":{"name":"a"}}]}`, `{"model":"m",` + msgs + `,"tools":[{"type":"custom","custom":{"name":"b"}}]}`},
		{`{"model":"m","messages":[{"role":"assistant","content":"x","refusal":"no"}]}`, `{"model":"m","messages":[{"role":"assistant","content":"x"}]}`},
		{`{"model":"m","messages":[{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}}]}`, `{"model":"m","messages":[{"role":"assistant","content":null}]}`},
	} {
		a, okA := k.of([]byte(pair[0]))
		b, okB := k.of([]byte(pair[1]))
		if !okA || !okB {
			t.Fatalf("not decoded: %s / %s", pair[0], pair[1])
		}
		if bytes.Equal(a, b) {
			t.Errorf("same key for\n%s\n%s", pair[0], pair[1])
		}
	}
}

// TestEveryLangchaingoOptionSplitsTheKey: through the langchaingo adapter,
// setting any field of llms.CallOptions (filled by reflection) gives
// another key, except the streaming funcs and Metadata other than the
// backend switches langchaingo's backends read from it.
func TestEveryLangchaingoOptionSplitsTheKey(t *testing.T) {
	t.Parallel()
	var key []byte
	chain := func(middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
			key = cache.AppendCanonical(nil, cache.ScopeGlobal, req)
			return nil, errKeyed
		})
	}
	llm := twlc.New(twlc.Models{"m": stubModel{}}, chain)
	keyOf := func(opts ...llms.CallOption) []byte {
		key = nil
		_, _ = llm.GenerateContent(context.Background(), []llms.MessageContent{human("q")}, opts...)
		if key == nil {
			t.Fatal("the chain was not called")
		}
		return key
	}
	base := keyOf(llms.WithModel("m"))
	neutral := map[string]bool{"StreamingFunc": true, "StreamingReasoningFunc": true, "Metadata": true}
	typ := reflect.TypeFor[llms.CallOptions]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Model" {
			continue
		}
		v := reflect.New(f.Type).Elem()
		switch f.Type.Kind() {
		case reflect.Func:
			v = reflect.MakeFunc(f.Type, func([]reflect.Value) []reflect.Value {
				return []reflect.Value{reflect.Zero(f.Type.Out(0))}
			})
		case reflect.Interface:
			v.Set(reflect.ValueOf("required"))
		default:
			fill(v, 0)
		}
		got := keyOf(llms.WithModel("m"), func(o *llms.CallOptions) { reflect.ValueOf(o).Elem().Field(i).Set(v) })
		if same := bytes.Equal(got, base); same != neutral[f.Name] {
			t.Errorf("CallOptions.%s = %v: same key %v, want %v", f.Name, v, same, neutral[f.Name])
		}
	}
	for _, m := range []map[string]any{
		{"thinking_config": &llms.ThinkingConfig{Mode: llms.ThinkingModeHigh}},
		{"CachedContentName": "cachedContents/abc"},
		{"anthropic:beta_headers": []string{"output-128k-2025-02-19"}},
	} {
		if bytes.Equal(keyOf(llms.WithModel("m"), llms.WithMetadata(m)), base) {
			t.Errorf("metadata switch %v did not split the key", m)
		}
	}
	if !bytes.Equal(keyOf(llms.WithModel("m"), llms.WithMetadata(map[string]any{"trace": "t"})), base) {
		t.Error("metadata trace data split the key")
	}
	// A forced function named like a mode is not the mode.
	if bytes.Equal(keyOf(llms.WithModel("m"), llms.WithToolChoice("auto")),
		keyOf(llms.WithModel("m"), llms.WithToolChoice(llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: "auto"}}))) {
		t.Error(`tool_choice "auto" and the function named auto share a key`)
	}
}

// TestKeyOfARequestChangedOutsideTheCache: when a middleware outside the
// cache changes a request that came through the transport, the key holds
// the changed core fields as well as the body: it differs from the
// unchanged request's and is the same for the same change.
func TestKeyOfARequestChangedOutsideTheCache(t *testing.T) {
	var key []byte
	addSystem := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			r := req.Clone()
			r.Messages = append([]middleware.Message{{Role: "system", Content: "be brief"}}, req.Messages...)
			return next.Handle(ctx, r)
		})
	}
	capture := func(middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
			key = cache.AppendCanonical(nil, cache.ScopeGlobal, req)
			return nil, errKeyed
		})
	}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errNotForwarded })
	changed := twopenai.NewTransport(middleware.Chain(addSystem, capture), twopenai.WithBaseTransport(base))
	keyOf := func(tr *twopenai.Transport, body string) []byte {
		key = nil
		r, _ := http.NewRequest(http.MethodPost, "http://upstream.test/v1/chat/completions", strings.NewReader(body))
		if resp, _ := tr.RoundTrip(r); resp != nil {
			resp.Body.Close()
		}
		if key == nil {
			t.Fatal("not keyed")
		}
		return key
	}
	k := newKeyer()
	for _, body := range handShapes {
		plain, _ := k.of([]byte(body))
		c1, c2 := keyOf(changed, body), keyOf(changed, body)
		if bytes.Equal(plain, c1) || !bytes.Equal(c1, c2) {
			t.Errorf("%s: changed key equal to the plain one %v, stable %v", body, bytes.Equal(plain, c1), bytes.Equal(c1, c2))
		}
	}
}

// TestStoredCompletionIsNeverAnsweredFromAnUnstoredOne: a request with
// store: true asks the provider to keep the completion, whose id the caller
// may retrieve or evaluate later; the answer of the same request without it
// (a completion the provider did not keep) never answers it, while two
// requests that both ask for it share their answer — through the real
// go-openai client and the transport.
func TestStoredCompletionIsNeverAnsweredFromAnUnstoredOne(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text("kept or not"))
	client := goClient(t, srv, cachePolicy(policies.Cache{Enabled: true, TTL: policies.Duration(time.Hour), MaxEntries: 100}))
	req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "keep this one"}}}
	for i, c := range []struct {
		store bool
		calls int
	}{{false, 1}, {true, 2}, {true, 2}, {false, 2}} {
		req.Store = c.store
		if _, err := client.CreateChatCompletion(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if srv.Count() != c.calls {
			t.Fatalf("call %d (store %t): %d provider calls, want %d", i+1, c.store, srv.Count(), c.calls)
		}
	}
}

// TestStoredCompletionsMetadataSplitsTheKey: with store: true the provider
// keeps the completion with the request's metadata, by which the caller
// lists (GET /v1/chat/completions?metadata[k]=v), evaluates and distils
// its stored completions; a hit would give it the id of a completion kept
// with another request's metadata, which its filter never finds. So with
// store: true two requests whose metadata differ never share an answer;
// those with the same metadata do, and without store: true metadata stays
// neutral — through the real go-openai client and the transport.
func TestStoredCompletionsMetadataSplitsTheKey(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text("kept with its metadata"))
	client := goClient(t, srv, cachePolicy(policies.Cache{Enabled: true, TTL: policies.Duration(time.Hour), MaxEntries: 100}))
	req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "keep this one"}}}
	for i, c := range []struct {
		store bool
		run   string
		calls int
	}{{true, "a", 1}, {true, "a", 1}, {true, "b", 2}, {true, "b", 2}, {false, "a", 3}, {false, "c", 3}} {
		req.Store, req.Metadata = c.store, map[string]string{"run": c.run}
		if _, err := client.CreateChatCompletion(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if srv.Count() != c.calls {
			t.Fatalf("call %d (store %t, metadata run=%s): %d provider calls, want %d", i+1, c.store, c.run, srv.Count(), c.calls)
		}
	}
}
