package routeeval_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/route/routeeval"
)

var update = flag.Bool("update", false, "rewrite examples/routing/*.jsonl from the generator")

// bundled are the README's example files, made by Synthetic.
var bundled = []struct {
	file string
	cfg  routeeval.SynthConfig
}{
	{"train.jsonl", routeeval.SynthConfig{N: 1000, Seed: 1}},
	{"test.jsonl", routeeval.SynthConfig{N: 1000, Seed: 2}},
	{"shifted.jsonl", routeeval.SynthConfig{N: 1000, Seed: 3, Shifted: true}},
}

// TestBundledDataIsSynthetic checks that examples/routing holds what the
// generator makes (go test -run Bundled -update rewrites it), and that it
// reads back as written.
func TestBundledDataIsSynthetic(t *testing.T) {
	t.Parallel()
	for _, b := range bundled {
		path := filepath.Join("..", "..", "..", "examples", "routing", b.file)
		ex := routeeval.Synthetic(b.cfg)
		var buf bytes.Buffer
		if err := routeeval.WriteJSONL(&buf, ex); err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, buf.Bytes()) {
			t.Fatalf("%s differs from the generator; rewrite it with go test -run Bundled -update", path)
		}
		back, err := routeeval.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ex {
			if back[i].Text != ex[i].Text || back[i].Weak != ex[i].Weak || back[i].Strong != ex[i].Strong || back[i].Category != ex[i].Category {
				t.Fatalf("%s line %d reads back differently", path, i+1)
			}
		}
	}
}
