package policies

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCatalogImportFromLiteLLMFile maps a price file in LiteLLM's format
// onto ModelSpecs — exact prices from their decimal text, context window,
// max output, provider — reports every entry it skipped and why, and
// renders a policy file that loads and prices its models.
func TestCatalogImportFromLiteLLMFile(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/litellm_prices.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := ImportLiteLLM(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ModelSpec{
		"gpt-4.1-mini": {Provider: "openai", InputPer1M: 400_000, OutputPer1M: 1_600_000, CachedInputPer1M: 100_000,
			ContextWindow: 1_047_576, MaxOutputTokens: 32_768},
		"gpt-5-pro-2030-01-01": {Provider: "openai", InputPer1M: 15 * Dollar, OutputPer1M: 120 * Dollar, ContextWindow: 400_000, MaxOutputTokens: 272_000},
		"claude-sonnet-4-5-20250929": {Provider: "anthropic", InputPer1M: 3 * Dollar, OutputPer1M: 15 * Dollar, CachedInputPer1M: 300_000,
			CacheWritePer1M: 3_750_000, ContextWindow: 200_000, MaxOutputTokens: 64_000},
		"gemini/gemini-2.0-flash-lite": {Provider: "gemini", InputPer1M: 75_000, OutputPer1M: 300_000, ContextWindow: 1_048_576, MaxOutputTokens: 8_192},
		"gpt-4o-audio-preview": {Provider: "openai", InputPer1M: 2_500_000, OutputPer1M: 10 * Dollar, AudioInputPer1M: 40 * Dollar, AudioOutputPer1M: 80 * Dollar,
			ContextWindow: 128_000, MaxOutputTokens: 16_384},
		// An embeddings model: its input price, its input limit, no output.
		"text-embedding-3-small": {Provider: "openai", InputPer1M: 20_000, ContextWindow: 8191, Embeddings: true},
	}
	if len(im.Models) != len(want) {
		t.Errorf("imported %d models, want %d: %v", len(im.Models), len(want), im.Models)
	}
	for name, w := range want {
		if got := im.Models[name]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %+v, want %+v", name, got, w)
		}
	}
	skipped := map[string]string{}
	for _, s := range im.Skipped {
		skipped[s.Model] = s.Reason
	}
	for name, reason := range map[string]string{
		"dall-e-3":                      "mode image_generation",
		"openrouter/some-lab/tiny:free": "no input or output price",
		"fireworks_ai/odd-price":        "finer than a micro-dollar per million tokens",
	} {
		if !strings.Contains(skipped[name], reason) {
			t.Errorf("%s skipped for %q, want %q", name, skipped[name], reason)
		}
	}
	if len(im.Skipped) != 3 {
		t.Errorf("skipped %v, want 3 entries", im.Skipped)
	}

	// The rendered file is a policy: extend it, or copy its models.
	src := im.YAML("imported from testdata/litellm_prices.json")
	p, err := LoadBytes(src, "imported.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	for name, w := range want {
		got, ok := p.Model(name)
		if !ok || got.InputPer1M != w.InputPer1M || got.OutputPer1M != w.OutputPer1M || got.CachedInputPer1M != w.CachedInputPer1M ||
			got.AudioInputPer1M != w.AudioInputPer1M || got.AudioOutputPer1M != w.AudioOutputPer1M || got.Embeddings != w.Embeddings {
			t.Errorf("loaded %s = %+v", name, got)
		}
	}
	// A dated name of an imported model resolves to it.
	if m, ok := p.Model("gpt-5-pro-2030-01-01"); !ok || m.Cost(TokenCounts{Input: 1_000, Output: 100}) != 27*PicoPerMicro*1_000 {
		t.Errorf("gpt-5-pro costs %s for 1,000 in + 100 out, want $0.027", m.Cost(TokenCounts{Input: 1_000, Output: 100}))
	}

	// A provider filter keeps only its models.
	f.Seek(0, 0)
	only, err := ImportLiteLLM(f, "anthropic")
	if err != nil || len(only.Models) != 1 || only.Models["claude-sonnet-4-5-20250929"].Provider != "anthropic" {
		t.Errorf("anthropic only: %+v %v", only, err)
	}
}

func TestImportLiteLLMRejectsBrokenFiles(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "[]", `{"m": 1`, "not json"} {
		if _, err := ImportLiteLLM(strings.NewReader(src)); err == nil {
			t.Errorf("ImportLiteLLM(%q) succeeded", src)
		}
	}
	im, err := ImportLiteLLM(strings.NewReader(`{"m": {"input_cost_per_token": -1e-6, "output_cost_per_token": 1e-6}, "n": "x"}`))
	if err != nil || len(im.Models) != 0 || len(im.Skipped) != 2 {
		t.Errorf("negative price or non-object entry imported: %+v %v", im, err)
	}
}

// TestImportYAMLFilesFitTheLimits: YAMLFiles splits more models than one
// policy file may hold into a chain of files, each within the loader's
// limits, whose merged models are exactly the imported ones; a small
// import stays one file.
func TestImportYAMLFilesFitTheLimits(t *testing.T) {
	t.Parallel()
	im := &Imported{Models: map[string]ModelSpec{}}
	for i := range 2500 {
		im.Models[fmt.Sprintf("lab/model-%d", i)] = ModelSpec{Provider: "openai", InputPer1M: Dollar, OutputPer1M: 2 * Dollar,
			CachedInputPer1M: Dollar / 2, ContextWindow: 128_000, MaxOutputTokens: 4096,
			LongContext:  LongContextPrices{AboveInputTokens: 200_000, InputPer1M: 2 * Dollar},
			ServiceTiers: map[string]ServiceTierPrices{"flex": {InputPer1M: Dollar / 2, OutputPer1M: Dollar}}}
	}
	if _, err := LoadBytes(im.YAML("all"), "all.yaml"); err == nil {
		t.Fatal("2,500 models in one file loaded; the test no longer exercises the split")
	}
	dir := t.TempDir()
	files := im.YAMLFiles("imported", filepath.Join(dir, "prices.yaml"))
	if len(files) < 3 {
		t.Fatalf("%d files, want at least 3 for 2,500 models", len(files))
	}
	for _, f := range files {
		if p := prescan(f.Data, f.Path); p != nil {
			t.Fatalf("%v", p)
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Path, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := LoadFileExtends(files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Models, im.Models) {
		t.Errorf("the chain's models differ from the imported ones (%d vs %d)", len(p.Models), len(im.Models))
	}
	small := &Imported{Models: map[string]ModelSpec{"m": {InputPer1M: Dollar}}}
	if files := small.YAMLFiles("x", "p.yaml"); len(files) != 1 || files[0].Path != "p.yaml" || !bytes.Equal(files[0].Data, small.YAML("x")) {
		t.Errorf("a small import: %+v", files)
	}
}
