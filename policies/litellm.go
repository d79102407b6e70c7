package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"path/filepath"
	"regexp"
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
	PerRequest  json.Number `json:"input_cost_per_request"`
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
//	input_cost_per_request        → request_fee (USD per request)
//	max_input_tokens              → context_window
//	max_output_tokens (max_tokens) → max_output_tokens
//	litellm_provider              → provider
//	…_flex, …_priority (of the four prices above but audio)
//	                              → service_tiers.flex, service_tiers.priority
//	…_above_200k_tokens (and …_above_200k_tokens_priority)
//	                              → long_context (of the tier), above_input_tokens: 200000
//
// Prices are converted from their decimal text, never through float64. It
// skips, with a reason: the "sample_spec" entry, modes other than chat,
// completion, responses and embedding (images, audio, ...; an embedding
// entry is an embeddings model, priced by its input), entries
// without an input or output price, prices finer than a micro-dollar per
// million tokens (our unit), and models priced per unit we do not model
// (a reasoning token price different from the output one) or at more
// than one long-context threshold. Only
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
		var m ModelSpec
		switch e.Mode {
		case "chat", "completion", "responses", "":
		case "embedding":
			m.Embeddings = true
		default:
			skip(name, "mode %s", e.Mode)
			continue
		}
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
		if e.PerRequest != "" {
			// Dollars per request, not per token.
			if v, err := ParseUSD(string(e.PerRequest)); err != nil || v < 0 {
				bad = append(bad, "input_cost_per_request: not a non-negative dollar amount of at most six decimals")
			} else {
				m.RequestFee = v
			}
		}
		if why := litellmTiers(raw[name], &m, price); why != "" {
			bad = append(bad, why)
		}
		if len(bad) > 0 {
			skip(name, "%s", strings.Join(bad, "; "))
			continue
		}
		switch {
		case m.InputPer1M == 0 && m.OutputPer1M == 0:
			skip(name, "no input or output price")
			continue
		case m.Embeddings && m.InputPer1M == 0:
			skip(name, "an embeddings model without an input price")
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
		if m.ContextWindow > 0 && m.MaxOutputTokens > m.ContextWindow || m.Embeddings {
			// LiteLLM's max_tokens is sometimes the window (an embeddings
			// model's: its input limit): unknown, or none.
			m.MaxOutputTokens = 0
		}
		out.Models[name] = m
	}
	return out, nil
}

// litellmRate is one of the rates a tier or long-context rule sets, by
// the prefix of LiteLLM's fields for it.
var litellmRates = []struct {
	prefix string
	rate   func(*Rates) *USD
}{
	{"input_cost_per_token", func(r *Rates) *USD { return &r.InputPer1M }},
	{"output_cost_per_token", func(r *Rates) *USD { return &r.OutputPer1M }},
	{"cache_read_input_token_cost", func(r *Rates) *USD { return &r.CachedInputPer1M }},
	{"cache_creation_input_token_cost", func(r *Rates) *USD { return &r.CacheWritePer1M }},
}

// litellmLong matches the suffix of a long-context rate:
// _above_200k_tokens, optionally followed by a tier (_priority, _flex).
var litellmLong = regexp.MustCompile(`^_above_([0-9]+)k_tokens(?:_(flex|priority))?$`)

// litellmTiers reads an entry's service-tier rates (input_cost_per_token_flex,
// output_cost_per_token_priority, cache_read_input_token_cost_flex, ...)
// and long-context rates (input_cost_per_token_above_200k_tokens, the same
// with _priority or _flex after it) into m, converting each with price.
// It returns why the entry cannot be priced, or "": a model with more than
// one long-context threshold (one rule per model or tier here).
func litellmTiers(entry json.RawMessage, m *ModelSpec, price func(string, json.Number, *USD)) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(entry, &fields) != nil {
		return ""
	}
	tiers := map[string]*ServiceTierPrices{}
	tier := func(name string) *ServiceTierPrices {
		if tiers[name] == nil {
			tiers[name] = &ServiceTierPrices{}
		}
		return tiers[name]
	}
	thresholds := map[string]int64{} // per tier ("" the model's own rule)
	for _, field := range slices.Sorted(maps.Keys(fields)) {
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(fields[field]))
		d.UseNumber()
		if d.Decode(&n) != nil || n == "" {
			continue // null, or not a number
		}
		for _, lr := range litellmRates {
			suffix, ok := strings.CutPrefix(field, lr.prefix)
			if !ok || suffix == "" {
				continue
			}
			var r Rates
			switch suffix {
			case "_flex", "_priority":
				price(field, n, lr.rate(&r))
				t := tier(suffix[1:])
				setRate(&t.InputPer1M, &t.CachedInputPer1M, &t.CacheWritePer1M, &t.OutputPer1M, r)
				continue
			}
			sm := litellmLong.FindStringSubmatch(suffix)
			if sm == nil {
				continue
			}
			k, err := strconv.ParseInt(sm[1], 10, 32)
			if err != nil {
				continue
			}
			if k == 0 {
				return "a long-context price above 0 tokens (" + field + ")"
			}
			above := k * 1000
			if prev, ok := thresholds[sm[2]]; ok && prev != above {
				return fmt.Sprintf("long-context rates at more than one threshold (%dk and %dk tokens)", prev/1000, k)
			}
			thresholds[sm[2]] = above
			price(field, n, lr.rate(&r))
			long := &m.LongContext
			if sm[2] != "" {
				long = &tier(sm[2]).LongContext
			}
			long.AboveInputTokens = above
			setRate(&long.InputPer1M, &long.CachedInputPer1M, &long.CacheWritePer1M, &long.OutputPer1M, r)
		}
	}
	// A rule whose prices are all zero prices nothing (LiteLLM writes 0
	// for "same as the standard"): dropped.
	unrated := func(l *LongContextPrices) {
		if l.InputPer1M == 0 && l.CachedInputPer1M == 0 && l.CacheWritePer1M == 0 && l.OutputPer1M == 0 {
			*l = LongContextPrices{}
		}
	}
	unrated(&m.LongContext)
	for name, t := range tiers {
		unrated(&t.LongContext)
		if *t == (ServiceTierPrices{}) {
			continue
		}
		if m.ServiceTiers == nil {
			m.ServiceTiers = map[string]ServiceTierPrices{}
		}
		m.ServiceTiers[name] = *t
	}
	return ""
}

// setRate copies the rates r sets (non-zero) to the destinations.
func setRate(in, cached, write, out *USD, r Rates) {
	overlay(in, r.InputPer1M)
	overlay(cached, r.CachedInputPer1M)
	overlay(write, r.CacheWritePer1M)
	overlay(out, r.OutputPer1M)
}

// ratesYAML renders the rates r sets as block-mapping lines.
func ratesYAML(r Rates) []string {
	var f []string
	for _, p := range []struct {
		k string
		v USD
	}{{"input_per_1m", r.InputPer1M}, {"cached_input_per_1m", r.CachedInputPer1M}, {"cache_write_per_1m", r.CacheWritePer1M}, {"output_per_1m", r.OutputPer1M}} {
		if p.v != 0 {
			f = append(f, p.k+": "+p.v.text())
		}
	}
	return f
}

// longYAML renders a long-context rule as the lines of a block mapping
// (none for no rule).
func longYAML(l LongContextPrices) []string {
	if l == (LongContextPrices{}) {
		return nil
	}
	out := []string{"long_context:", "  above_input_tokens: " + strconv.FormatInt(l.AboveInputTokens, 10)}
	for _, r := range ratesYAML(Rates{l.InputPer1M, l.CachedInputPer1M, l.CacheWritePer1M, l.OutputPer1M}) {
		out = append(out, "  "+r)
	}
	return out
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

// YAML renders the imported models as one policy file that other policies
// extend (extends: FILE) or copy from: "version: 1" and a models: section
// in block style, one mapping per model, keys quoted, prices in their
// exact decimal text. A file of more models than one policy file may hold
// (1,000 entries under models:, 10,000 entries in all, see the loader's
// limits) does not load: write those with YAMLFiles.
func (im *Imported) YAML(header string) []byte {
	var b bytes.Buffer
	writeHeader(&b, header)
	b.WriteString("version: 1\nmodels:\n")
	for _, name := range slices.Sorted(maps.Keys(im.Models)) {
		for _, l := range modelYAML(name, im.Models[name]) {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// ImportFile is one file of an import written with YAMLFiles: its path and
// contents.
type ImportFile struct {
	Path string
	Data []byte
}

// YAMLFiles renders the imported models as policy files that each load
// within the loader's limits, whatever the number of models. The first is
// path; when the models do not fit in it, it extends the next part,
// written in the directory "<path without extension>.parts" as 2.yaml,
// 3.yaml, ..., each extending the next: a chain of bases whose merged
// models are all the imported ones. A policy that extends path prices with
// every model.
func (im *Imported) YAMLFiles(header, path string) []ImportFile {
	stem := strings.TrimSuffix(path, filepath.Ext(path))
	partsDir := stem + ".parts"
	var chunks [][]string // the lines of each file's models
	var cur []string
	models, entries, opens := 0, 0, 0
	// Room for version:, models: and extends: in each file.
	const entryRoom, width = maxEntries - 3, maxWidth
	for _, name := range slices.Sorted(maps.Keys(im.Models)) {
		ls := modelYAML(name, im.Models[name])
		e, o := 0, 0
		for _, l := range ls {
			e += 1 + strings.Count(l, ",")
			o += strings.Count(l, "[") + strings.Count(l, "{")
		}
		if models > 0 && (models+1 > width || entries+e > entryRoom || opens+o > maxFlowOpens) {
			chunks = append(chunks, cur)
			cur, models, entries, opens = nil, 0, 0, 0
		}
		cur = append(cur, ls...)
		models, entries, opens = models+1, entries+e, opens+o
	}
	chunks = append(chunks, cur)
	var files []ImportFile
	for i, ls := range chunks {
		var b bytes.Buffer
		writeHeader(&b, header)
		if len(chunks) > 1 {
			fmt.Fprintf(&b, "# Part %d of %d.\n", i+1, len(chunks))
		}
		b.WriteString("version: 1\n")
		if i+1 < len(chunks) {
			next := fmt.Sprintf("%d.yaml", i+2)
			if i == 0 {
				next = filepath.Base(partsDir) + "/" + next
			}
			b.WriteString("extends: " + strconv.Quote(next) + "\n")
		}
		b.WriteString("models:\n")
		for _, l := range ls {
			b.WriteString(l + "\n")
		}
		p := path
		if i > 0 {
			p = filepath.Join(partsDir, fmt.Sprintf("%d.yaml", i+1))
		}
		files = append(files, ImportFile{Path: p, Data: b.Bytes()})
	}
	return files
}

func writeHeader(b *bytes.Buffer, header string) {
	for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		if l != "" {
			b.WriteString("# " + l + "\n")
		}
	}
}

// modelYAML renders one model as the lines of a block mapping under
// models:.
func modelYAML(name string, m ModelSpec) []string {
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
	if m.RequestFee != 0 {
		f = append(f, "request_fee: "+m.RequestFee.text())
	}
	if m.Embeddings {
		f = append(f, "embeddings: true")
	}
	if m.ContextWindow > 0 {
		f = append(f, "context_window: "+strconv.FormatInt(m.ContextWindow, 10))
	}
	if m.MaxOutputTokens > 0 {
		f = append(f, "max_output_tokens: "+strconv.FormatInt(m.MaxOutputTokens, 10))
	}
	f = append(f, longYAML(m.LongContext)...)
	if len(m.ServiceTiers) > 0 {
		f = append(f, "service_tiers:")
		for _, tier := range slices.Sorted(maps.Keys(m.ServiceTiers)) {
			t := m.ServiceTiers[tier]
			r := append(ratesYAML(Rates{t.InputPer1M, t.CachedInputPer1M, t.CacheWritePer1M, t.OutputPer1M}), longYAML(t.LongContext)...)
			if len(r) == 0 {
				f = append(f, "  "+strconv.Quote(tier)+": {}")
				continue
			}
			f = append(f, "  "+strconv.Quote(tier)+":")
			for _, l := range r {
				f = append(f, "    "+l)
			}
		}
	}
	if len(f) == 0 {
		return []string{"  " + strconv.Quote(name) + ": {}"}
	}
	out := []string{"  " + strconv.Quote(name) + ":"}
	for _, l := range f {
		out = append(out, "    "+l)
	}
	return out
}
