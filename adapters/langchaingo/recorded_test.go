package langchaingo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/internal/httprr"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

const langchaingoModule = "github.com/tmc/langchaingo"

// langchaingoDir returns the source directory, in the module cache, of the
// langchaingo version this module requires (test binaries carry no module
// build info, so the version is read from go.mod). It skips the test when
// the source is absent (go mod download puts it there).
func langchaingoDir(t *testing.T) string {
	t.Helper()
	version, err := requiredVersion(langchaingoModule)
	if err != nil {
		t.Skipf("cannot tell the langchaingo version: %v", err)
	}
	cache := ""
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		cache = strings.TrimSpace(string(out))
	}
	if cache == "" {
		cache = os.Getenv("GOMODCACHE")
	}
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, "go", "pkg", "mod")
	}
	dir := filepath.Join(cache, escapeModulePath(langchaingoModule)+"@"+version)
	if _, err := os.Stat(filepath.Join(dir, "llms", "openai", "testdata")); err != nil {
		t.Skipf("langchaingo %s source not found in the module cache (%v); run go mod download", version, err)
	}
	return dir
}

// requiredVersion reads the version of module path required by the go.mod
// above the working directory.
func requiredVersion(path string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			re := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(path) + `\s+(v\S+)`)
			if m := re.FindSubmatch(data); m != nil {
				return string(m[1]), nil
			}
			return "", fmt.Errorf("%s does not require %s", filepath.Join(dir, "go.mod"), path)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found")
		}
		dir = parent
	}
}

// escapeModulePath applies the module cache's case encoding ("!" + lower).
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// recording reproduces one of langchaingo's own openai tests
// (llms/openai/multicontent_test.go) exactly as it makes its call, so that
// the recorded request matches.
type recording struct {
	name      string
	model     string          // the client's model: the recorded request's
	clientOpt []openai.Option // as the langchaingo test configures its client
	messages  []llms.MessageContent
	options   func(stream func(context.Context, []byte) error) []llms.CallOption
	want      *regexp.Regexp // what langchaingo's test asserts on the content
	usage     middleware.Usage
}

var recordings = []recording{
	{
		name:  "TestMultiContentText",
		model: "gpt-3.5-turbo",
		messages: []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{
			llms.TextPart("I'm a pomeranian"), llms.TextPart("What kind of mammal am I?")}}},
		want:  regexp.MustCompile("dog|canid"),
		usage: middleware.Usage{InputTokens: 21, OutputTokens: 13},
	},
	{
		name:  "TestMultiContentTextChatSequence",
		model: "gpt-3.5-turbo",
		messages: []llms.MessageContent{
			{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.TextPart("Name some countries")}},
			{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.TextPart("Spain and Lesotho")}},
			{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.TextPart("Which if these is larger?")}},
		},
		want: regexp.MustCompile("spain.*larger"),
	},
	{
		name:      "TestMultiContentImage",
		model:     "gpt-4o",
		clientOpt: []openai.Option{openai.WithModel("gpt-4o")},
		messages: []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{
			llms.ImageURLPart("https://github.com/tmc/langchaingo/blob/main/docs/static/img/parrot-icon.png?raw=true"),
			llms.TextPart("describe this image in detail")}}},
		options: func(func(context.Context, []byte) error) []llms.CallOption {
			return []llms.CallOption{llms.WithMaxTokens(300)}
		},
		want: regexp.MustCompile("parrot"),
	},
	{
		name:  "TestWithStreaming",
		model: "gpt-3.5-turbo",
		messages: []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{
			llms.TextPart("I'm a pomeranian"), llms.TextPart("Tell me more about my taxonomy")}}},
		options: func(stream func(context.Context, []byte) error) []llms.CallOption {
			return []llms.CallOption{llms.WithStreamingFunc(stream)}
		},
		want:  regexp.MustCompile("dog|canid"),
		usage: middleware.Usage{InputTokens: 19, OutputTokens: 82},
	},
	{
		name:     "TestFunctionCall",
		model:    "gpt-3.5-turbo",
		messages: []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.TextPart("What is the weather like in Boston?")}}},
		options: func(func(context.Context, []byte) error) []llms.CallOption {
			return []llms.CallOption{llms.WithFunctions([]llms.FunctionDefinition{{
				Name:        "getCurrentWeather",
				Description: "Get the current weather in a given location",
				Parameters:  json.RawMessage(`{"type": "object", "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}`),
			}})}
		},
		usage: middleware.Usage{InputTokens: 81, OutputTokens: 14},
	},
	{
		// llms/openai/openrouter_httprr_test.go: OpenRouter's stream
		// names its finish in the content's chunk and ends with a usage
		// chunk whose choice has a null finish_reason, which the backend
		// reads as no finish; the answer is complete.
		name:  "TestOpenRouterWithHTTPRR",
		model: "meta-llama/llama-3.2-3b-instruct:free",
		clientOpt: []openai.Option{openai.WithBaseURL("https://openrouter.ai/api/v1"),
			openai.WithModel("meta-llama/llama-3.2-3b-instruct:free")},
		messages: []llms.MessageContent{human("Reply with exactly 'OK' and nothing else")},
		options: func(stream func(context.Context, []byte) error) []llms.CallOption {
			return []llms.CallOption{llms.WithTemperature(0), llms.WithMaxTokens(10), llms.WithStreamingFunc(stream)}
		},
		want:  regexp.MustCompile("ok"),
		usage: middleware.Usage{InputTokens: 612, OutputTokens: 2},
	},
}

// outcome is what a caller observes of one call.
type outcome struct {
	resp   *llms.ContentResponse
	chunks [][]byte
}

func (rec recording) call(t *testing.T, ctx context.Context, llm llms.Model) outcome {
	t.Helper()
	var mu sync.Mutex
	var out outcome
	stream := func(_ context.Context, chunk []byte) error {
		mu.Lock()
		out.chunks = append(out.chunks, append([]byte(nil), chunk...))
		mu.Unlock()
		return nil
	}
	var opts []llms.CallOption
	if rec.options != nil {
		opts = rec.options(stream)
	}
	resp, err := llm.GenerateContent(ctx, rec.messages, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out.resp = resp
	return out
}

// TestRecordedOpenAITraffic replays langchaingo's recordings of real OpenAI
// traffic (llms/openai/testdata/*.httprr in its module) through the plain
// langchaingo openai client and through the same client wrapped by the
// adapter, with a pass-through chain and with an instrumented one: what the
// caller sees (content, tool calls, GenerationInfo, stream chunks) is
// identical, and the run records the provider's usage.
func TestRecordedOpenAITraffic(t *testing.T) {
	dir := filepath.Join(langchaingoDir(t), "llms", "openai", "testdata")
	// The openai client reads these; make sure they cannot change the
	// recorded requests.
	for _, env := range []string{"OPENAI_MODEL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORGANIZATION"} {
		t.Setenv(env, "")
	}
	for _, rec := range recordings {
		t.Run(rec.name, func(t *testing.T) {
			file := filepath.Join(dir, rec.name+".httprr")
			newClient := func(t *testing.T) *openai.LLM {
				rr, err := httprr.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				opts := append([]openai.Option{openai.WithHTTPClient(rr.Client()), openai.WithToken("fake-api-key-for-testing")}, rec.clientOpt...)
				llm, err := openai.New(opts...)
				if err != nil {
					t.Fatal(err)
				}
				return llm
			}

			plain := rec.call(t, t.Context(), newClient(t))
			c := plain.resp.Choices[0]
			if rec.want != nil && !rec.want.MatchString(strings.ToLower(c.Content)) {
				t.Fatalf("plain client: content %q does not match %v", c.Content, rec.want)
			}

			t.Run("PassThrough", func(t *testing.T) {
				var sp spy
				llm := twlc.New(twlc.Models{rec.model: newClient(t)}, middleware.Chain(passThrough, sp.mw))
				got := rec.call(t, t.Context(), llm)
				compareOutcomes(t, plain, got)
				req, resp := sp.last(t)
				if req.Model != rec.model || (req.Stream != nil) != (len(plain.chunks) > 0) {
					t.Errorf("core request: model %q, stream %v", req.Model, req.Stream != nil)
				}
				if resp.Message.Content != c.Content || len(resp.Message.ToolCalls) != len(c.ToolCalls) {
					t.Errorf("core response %+v, want the recorded answer", resp.Message)
				}
			})

			t.Run("Instrumented", func(t *testing.T) {
				llm := twlc.New(twlc.Models{rec.model: newClient(t)}, instrument.New(nil, nil))
				ctx, run := middleware.StartRun(t.Context(), rec.name)
				got := rec.call(t, ctx, llm)
				compareOutcomes(t, plain, got)
				calls := run.Calls()
				if len(calls) != 1 {
					t.Fatalf("run recorded %d calls", len(calls))
				}
				want, _ := twlc.UsageFromGenerationInfo(c.GenerationInfo)
				if rec.usage != (middleware.Usage{}) && want != rec.usage {
					t.Errorf("recorded usage %+v, want %+v", want, rec.usage)
				}
				if calls[0].Usage != want || calls[0].Usage.IsZero() || calls[0].Model != rec.model || calls[0].Err != nil {
					t.Errorf("run call %+v, want usage %+v", calls[0], want)
				}
			})
		})
	}
}

// compareOutcomes checks that the wrapped call gave the caller exactly what
// the plain client gave.
func compareOutcomes(t *testing.T, want, got outcome) {
	t.Helper()
	if !reflect.DeepEqual(want.resp, got.resp) {
		t.Errorf("response differs:\nplain:   %s\nwrapped: %s", dump(want.resp), dump(got.resp))
	}
	if !reflect.DeepEqual(want.chunks, got.chunks) {
		t.Errorf("stream differs: plain %d chunks %q, wrapped %d chunks %q", len(want.chunks), want.chunks, len(got.chunks), got.chunks)
	}
	if len(want.resp.Choices) > 0 && len(want.resp.Choices[0].ToolCalls) > 0 {
		w, g := want.resp.Choices[0], got.resp.Choices[0]
		if g.ToolCalls[0].ID != w.ToolCalls[0].ID || g.FuncCall == nil || *g.FuncCall != *w.FuncCall {
			t.Errorf("tool calls differ: %+v vs %+v", w.ToolCalls, g.ToolCalls)
		}
	}
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
