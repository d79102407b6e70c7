package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Skipped is an entry of a price file that an import left out, and why.
type Skipped struct {
	Model  string
	Reason string
}

// Imported is the result of [ImportLiteLLM].
type Imported struct {
	Models  map[string]ModelSpec
	Skipped []Skipped // sorted by model
}

// litellmEntry is one model of LiteLLM's model_prices_and_context_window.json.
// Prices are US dollars per token, as JSON numbers.
type litellmEntry struct {
	Provider    string      `json:"litellm_provider"`
	Mode        string      `json:"mode"`
	Input       json.Number `json:"input_cost_per_token"`
	Output      json.Number `json:"output_cost_per_token"`
	CacheRead   json.Number `json:"cache_read_input_token_cost"`
	CacheWrite  json.Number `json:"cache_creation_input_token_cost"`
	MaxInput    json.Number `json:"max_input_tokens"`
	MaxOutput   json.Number `json:"max_output_tokens"`
	MaxTokens   json.Number `json:"max_tokens"`
	Reasoning   json.Number `json:"output_cost_per_reasoning_token"`
	InputAudio  json.Number `json:"input_cost_per_audio_token"`
	OutputAudio json.Number `json:"output_cost_per_audio_token"`
}

// ImportLiteLLM reads LiteLLM's public price file
// (model_prices_and_context_window.json, which gateway users already keep
// current) and maps each chat model onto a ModelSpec:
//
//	input_cost_per_token          → input_per_1m (× 1,000,000, exactly)
//	output_cost_per_token         → output_per_1m
//	cache_read_input_token_cost   → cached_input_per_1m
//	cache_creation_input_token_cost → cache_write_per_1m
//	input_cost_per_audio_token    → audio_input_per_1m
//	output_cost_per_audio_token   → audio_output_per_1m
//	max_input_tokens              → context_window
//	max_output_tokens (max_tokens) → max_output_tokens
//	litellm_provider              → provider
//
// Prices are converted from their decimal text, never through float64. It
// skips, with a reason: the "sample_spec" entry, modes other than chat,
// completion and responses (embeddings, images, audio, ...), entries
// without an input or output price, prices finer than a micro-dollar per
// million tokens (our unit), and models priced per unit we do not model
// (a reasoning token price different from the output one). Only
// entries whose provider is in providers are kept (all when empty).
func ImportLiteLLM(r io.Reader, providers ...string) (*Imported, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("reading the LiteLLM price file: %w", err)
	}
	out := &Imported{Models: map[string]ModelSpec{}}
	skip := func(name, format string, args ...any) {
		out.Skipped = append(out.Skipped, Skipped{Model: name, Reason: fmt.Sprintf(format, args...)})
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if name == "sample_spec" {
			continue
		}
		var e litellmEntry
		d := json.NewDecoder(bytes.NewReader(raw[name]))
		d.UseNumber()
		if err := d.Decode(&e); err != nil {
			skip(name, "not a model entry: %v", err)
			continue
		}
		if len(providers) > 0 && !slices.Contains(providers, e.Provider) {
			continue
		}
		switch e.Mode {
		case "chat", "completion", "responses", "":
		default:
			skip(name, "mode %s", e.Mode)
			continue
		}
		var m ModelSpec
		m.Provider = e.Provider
		var bad []string
		price := func(field string, n json.Number, dst *USD) {
			if n == "" {
				return
			}
			v, err := perTokenToPer1M(string(n))
			if err != nil {
				bad = append(bad, field+": "+err.Error())
				return
			}
			*dst = v
		}
		price("input_cost_per_token", e.Input, &m.InputPer1M)
		price("output_cost_per_token", e.Output, &m.OutputPer1M)
		price("cache_read_input_token_cost", e.CacheRead, &m.CachedInputPer1M)
		price("cache_creation_input_token_cost", e.CacheWrite, &m.CacheWritePer1M)
		var reasoning USD
		price("output_cost_per_reasoning_token", e.Reasoning, &reasoning)
		price("input_cost_per_audio_token", e.InputAudio, &m.AudioInputPer1M)
		price("output_cost_per_audio_token", e.OutputAudio, &m.AudioOutputPer1M)
		if len(bad) > 0 {
			skip(name, "%s", strings.Join(bad, "; "))
			continue
		}
		switch {
		case m.InputPer1M == 0 && m.OutputPer1M == 0:
			skip(name, "no input or output price")
			continue
		case reasoning != 0 && reasoning != m.OutputPer1M:
			skip(name, "reasoning tokens priced apart from output (%s per 1M)", reasoning)
			continue
		}
		var err error
		if m.ContextWindow, err = tokenCount(e.MaxInput); err == nil {
			out := e.MaxOutput
			if out == "" {
				out = e.MaxTokens
			}
			m.MaxOutputTokens, err = tokenCount(out)
		}
		if err != nil {
			skip(name, "%v", err)
			continue
		}
		if m.ContextWindow > 0 && m.MaxOutputTokens > m.ContextWindow {
			m.MaxOutputTokens = 0 // LiteLLM's max_tokens is sometimes the window: unknown
		}
		out.Models[name] = m
	}
	return out, nil
}

var million = big.NewRat(1_000_000, 1)

// perTokenToPer1M converts a JSON number of dollars per token (e.g.
// 2.5e-06) to an exact USD per one million tokens.
func perTokenToPer1M(s string) (USD, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("negative price %s", s)
	}
	r.Mul(r, million) // dollars per 1M tokens
	micro := new(big.Rat).Mul(r, million)
	if !micro.IsInt() || !micro.Num().IsInt64() {
		return 0, fmt.Errorf("%s per token is finer than a micro-dollar per million tokens", s)
	}
	return USD(micro.Num().Int64()), nil
}

func tokenCount(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v < 0 {
		if f, ferr := n.Float64(); ferr == nil && f >= 0 && f == float64(int64(f)) {
			return int64(f), nil
		}
		return 0, fmt.Errorf("token count %s is not a whole number", n)
	}
	return v, nil
}

// YAML renders the imported models as a policy file that other policies
// extend (extends: FILE) or copy from: "version: 1" and a models: section
// with one flow mapping per model, keys quoted, prices in their exact
// decimal text.
func (im *Imported) YAML(header string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		if l != "" {
			b.WriteString("# " + l + "\n")
		}
	}
	b.WriteString("version: 1\nmodels:\n")
	for _, name := range slices.Sorted(maps.Keys(im.Models)) {
		m := im.Models[name]
		var f []string
		if m.Provider != "" {
			f = append(f, "provider: "+strconv.Quote(m.Provider))
		}
		for _, p := range []struct {
			k string
			v USD
		}{{"input_per_1m", m.InputPer1M}, {"output_per_1m", m.OutputPer1M}, {"cached_input_per_1m", m.CachedInputPer1M}, {"cache_write_per_1m", m.CacheWritePer1M},
			{"audio_input_per_1m", m.AudioInputPer1M}, {"audio_output_per_1m", m.AudioOutputPer1M}} {
			if p.v != 0 {
				f = append(f, p.k+": "+p.v.text())
			}
		}
		if m.ContextWindow > 0 {
			f = append(f, "context_window: "+strconv.FormatInt(m.ContextWindow, 10))
		}
		if m.MaxOutputTokens > 0 {
			f = append(f, "max_output_tokens: "+strconv.FormatInt(m.MaxOutputTokens, 10))
		}
		fmt.Fprintf(&b, "  %s: {%s}\n", strconv.Quote(name), strings.Join(f, ", "))
	}
	return b.Bytes()
}
