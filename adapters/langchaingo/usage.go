package langchaingo

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/middleware"
)

// The GenerationInfo keys langchaingo's backends (v0.1.14) report usage
// under. Each field lists its aliases in order of preference.
var (
	// OpenAI, Ollama, Maritaca and Google AI (standardised names); input
	// includes cached tokens.
	keysPrompt     = []string{"PromptTokens", "prompt_tokens"}
	keysCompletion = []string{"CompletionTokens", "completion_tokens"}
	// Google AI and Bedrock (snake case); input includes cached tokens.
	keysSnakeInput  = []string{"input_tokens", "inputTokens"}
	keysSnakeOutput = []string{"output_tokens", "outputTokens"}
	// Anthropic: InputTokens excludes the cache reads and writes.
	keyAnthropicInput  = "InputTokens"
	keyAnthropicOutput = "OutputTokens"
	keyCacheRead       = "CacheReadInputTokens"
	keyCacheWrite      = "CacheCreationInputTokens"
	// Cached prompt tokens of the inclusive conventions.
	keysCached    = []string{"PromptCachedTokens", "CachedTokens", "CacheReadInputTokens", "cached_tokens"}
	keysReasoning = []string{"ReasoningTokens", "CompletionReasoningTokens", "ThinkingTokens", "reasoning_tokens"}
	keysTotal     = []string{"TotalTokens", "total_tokens", "totalTokens"}
	// OpenAI's audio tokens (part of the prompt and completion counts),
	// billed at the audio rates.
	keyAudioInput  = "PromptAudioTokens"
	keyAudioOutput = "CompletionAudioTokens"
	// Mistral nests the SDK's usage struct (or, after JSON, an object).
	keyNested = "usage"
)

// usageKeys are every key above, for rewriting a map's usage.
var usageKeys = func() []string {
	ks := []string{keyAnthropicInput, keyAnthropicOutput, keyCacheRead, keyCacheWrite, keyAudioInput, keyAudioOutput}
	for _, l := range [][]string{keysPrompt, keysCompletion, keysSnakeInput, keysSnakeOutput, keysCached, keysReasoning, keysTotal} {
		ks = append(ks, l...)
	}
	return ks
}()

// UsageFromGenerationInfo normalises the token usage a langchaingo backend
// reported in a [llms.ContentChoice]'s GenerationInfo to the core's
// convention (input includes cached, cache-write and audio tokens, output
// includes reasoning and audio tokens). It understands the keys of the openai, anthropic,
// googleai, ollama, maritaca, mistral and bedrock backends, and numbers of
// any Go integer or float type, json.Number or numeric strings (values that
// went through JSON are float64). ok is false when info carries no token
// counts.
//
// Read the first choice's GenerationInfo only: backends that return several
// choices (Anthropic returns one per content block) repeat the call's usage
// in each, so summing choices would count it several times.
//
// A negative count, or one beyond middleware.MaxCount, is no count (ok
// false): settled as given, it would take spend off a budget, or spend a
// whole budget on one call; the call is billed as one without usage.
func UsageFromGenerationInfo(info map[string]any) (middleware.Usage, bool) {
	u, ok := usageFromGenerationInfo(info)
	if u.Implausible() {
		return middleware.Usage{}, false
	}
	return u, ok
}

func usageFromGenerationInfo(info map[string]any) (u middleware.Usage, ok bool) {
	if len(info) == 0 {
		return u, false
	}
	if in, found := number(info, keyAnthropicInput); found {
		// Anthropic: input excludes the cache; the core's includes it.
		out, _ := number(info, keyAnthropicOutput)
		read, _ := number(info, keyCacheRead)
		write, _ := number(info, keyCacheWrite)
		u = middleware.Usage{InputTokens: in + read + write, OutputTokens: out, CachedInputTokens: read, CacheWriteTokens: write}
		u.ReasoningTokens, _ = first(info, keysReasoning)
		return u, true
	}
	in, okIn := first(info, keysPrompt)
	out, okOut := first(info, keysCompletion)
	if !okIn && !okOut {
		in, okIn = first(info, keysSnakeInput)
		out, okOut = first(info, keysSnakeOutput)
	}
	if !okIn && !okOut {
		if nested, found := info[keyNested]; found && nested != nil {
			return nestedUsage(nested)
		}
		return u, false
	}
	u.InputTokens, u.OutputTokens = in, out
	u.CachedInputTokens, _ = first(info, keysCached)
	u.CacheWriteTokens, _ = number(info, keyCacheWrite)
	u.ReasoningTokens, _ = first(info, keysReasoning)
	u.AudioInputTokens, _ = number(info, keyAudioInput)
	u.AudioOutputTokens, _ = number(info, keyAudioOutput)
	// Ollama reports the tokens of its context cache, which may exceed
	// what this call's prompt counted.
	u.CachedInputTokens = min(u.CachedInputTokens, u.InputTokens)
	// Google AI's output counts the answer without the thoughts, which
	// its total includes and which are billed as output (xAI's
	// completion tokens leave out the reasoning the same way): the
	// output is what the counts prove was produced.
	if total, found := first(info, keysTotal); found && total >= 0 && in >= 0 && out >= 0 {
		switch {
		case total-in > out:
			u.OutputTokens = total - in
		case u.ReasoningTokens > out:
			u.OutputTokens = middleware.SatAdd(out, u.ReasoningTokens)
		}
	} else if u.ReasoningTokens > out && out >= 0 {
		u.OutputTokens = middleware.SatAdd(out, u.ReasoningTokens)
	}
	return u, true
}

// nestedUsage reads a usage object nested under "usage": a map (after JSON)
// or a struct with PromptTokens/CompletionTokens fields (Mistral's SDK).
func nestedUsage(v any) (middleware.Usage, bool) {
	if m, isMap := v.(map[string]any); isMap {
		return usageFromGenerationInfo(m)
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return middleware.Usage{}, false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return middleware.Usage{}, false
	}
	m := map[string]any{}
	for _, name := range []string{"PromptTokens", "CompletionTokens", "TotalTokens"} {
		if f := rv.FieldByName(name); f.IsValid() && f.CanInterface() {
			m[name] = f.Interface()
		}
	}
	return usageFromGenerationInfo(m)
}

// first returns the value of the first key of keys present in info.
func first(info map[string]any, keys []string) (int64, bool) {
	for _, k := range keys {
		if n, ok := number(info, k); ok {
			return n, true
		}
	}
	return 0, false
}

// number reads info[key] as a token count.
func number(info map[string]any, key string) (int64, bool) {
	v, ok := info[key]
	if !ok {
		return 0, false
	}
	return toInt64(v)
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case uint:
		return int64(min(uint64(n), math.MaxInt64)), true
	case uint64:
		return int64(min(n, math.MaxInt64)), true
	case uint32:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint8:
		return int64(n), true
	case float64:
		return floatCount(n)
	case float32:
		return floatCount(float64(n))
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		if f, err := n.Float64(); err == nil {
			return floatCount(f)
		}
	case string:
		if i, err := strconv.ParseInt(n, 10, 64); err == nil {
			return i, true
		}
	case *int:
		if n != nil {
			return int64(*n), true
		}
	case *int32:
		if n != nil {
			return int64(*n), true
		}
	case *int64:
		if n != nil {
			return *n, true
		}
	}
	return 0, false
}

func floatCount(f float64) (int64, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return int64(math.Round(f)), true
}

// responseUsage returns the usage of a langchaingo response: its first
// choice's, never a sum over choices.
func responseUsage(cr *llms.ContentResponse) middleware.Usage {
	if cr == nil || len(cr.Choices) == 0 || cr.Choices[0] == nil {
		return middleware.Usage{}
	}
	u, _ := UsageFromGenerationInfo(cr.Choices[0].GenerationInfo)
	return u
}

// writeUsage replaces the usage in info (a copy the caller owns) with u. It
// removes every usage key info had, then writes OpenAI's key set (the
// standardised names most langchaingo code reads), plus Anthropic's or the
// snake-case set when info used those, so that code reading the backend's
// own keys keeps working. Counts are ints, as the backends report them.
func writeUsage(info map[string]any, u middleware.Usage) {
	_, anthropic := info[keyAnthropicInput]
	_, snake := info[keysSnakeInput[0]]
	_, audio := info[keyAudioInput]
	for _, k := range usageKeys {
		delete(info, k)
	}
	info["PromptTokens"] = int(u.InputTokens)
	info["CompletionTokens"] = int(u.OutputTokens)
	info["TotalTokens"] = int(u.Total())
	info["PromptCachedTokens"] = int(u.CachedInputTokens)
	info["ReasoningTokens"] = int(u.ReasoningTokens)
	if u.AudioInputTokens != 0 || u.AudioOutputTokens != 0 || audio {
		info[keyAudioInput] = int(u.AudioInputTokens)
		info[keyAudioOutput] = int(u.AudioOutputTokens)
	}
	if u.CacheWriteTokens != 0 || anthropic {
		info[keyCacheWrite] = int(u.CacheWriteTokens)
	}
	if anthropic {
		info[keyAnthropicInput] = int(u.InputTokens - u.CachedInputTokens - u.CacheWriteTokens)
		info[keyAnthropicOutput] = int(u.OutputTokens)
		info[keyCacheRead] = int(u.CachedInputTokens)
	}
	if snake {
		info["input_tokens"] = int(u.InputTokens)
		info["output_tokens"] = int(u.OutputTokens)
		info["total_tokens"] = int(u.Total())
	}
}
