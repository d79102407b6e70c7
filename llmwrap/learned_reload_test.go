package llmwrap_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
	"github.com/tokenwise/tokenwise/policies"
)

func learnedPolicy(weights string) string {
	return `version: 1
cache: {enabled: true, ttl: 1h, deterministic_only: false}
routing:
  default: gpt-4o
  learned: {weights: ` + weights + `, weak: gpt-4o-mini, threshold: 0.5}
`
}

// saveWeights writes a learned scorer that scores every text high (strong)
// or low (weak), atomically as a trainer's output replaced by a deploy.
func saveWeights(t *testing.T, path string, strong bool) {
	t.Helper()
	bias := float32(-10)
	if strong {
		bias = 10
	}
	m := &learn.Model{Bits: 8, Ngrams: 2, Scale: 0.01, Bias: bias, Threshold: 0.5, Target: 0.9, Label: learn.LabelOnlyStrong, W: make([]int8, 1<<8)}
	tmp := filepath.Join(filepath.Dir(path), ".router.bin.tmp")
	if err := m.Save(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRetrainedWeightsRouteAfterTheirReload: the policy names a learned
// scorer's weights file; retraining replaces the file, the policy file
// unchanged. The watcher reloads the team, the chain routes with the new
// weights, and the cache, keyed on the route, does not serve the answer
// the old weights routed. The file may sit beside the policies or in a
// directory of its own, which is watched too.
func TestRetrainedWeightsRouteAfterTheirReload(t *testing.T) {
	for _, rel := range []string{"router.bin", "models/router.bin"} {
		t.Run(rel, func(t *testing.T) { testRetrainedWeights(t, rel) })
	}
}

func testRetrainedWeights(t *testing.T, rel string) {
	dir := t.TempDir()
	weights := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(weights), 0o755); err != nil {
		t.Fatal(err)
	}
	saveWeights(t, weights, true)
	writeAtomic(t, filepath.Join(dir, "default.yaml"), learnedPolicy(rel))
	preg, err := policies.NewRegistry(dir, policies.WithDebounce(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := llmwrap.NewRegistry(preg)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	changes := make(chan policies.Change, 16)
	defer preg.Subscribe(func(c policies.Change) { changes <- c })()
	ctx, stop := context.WithCancel(context.Background())
	wait, err := preg.StartWatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop()
		_ = wait()
	}()

	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text("ok"))
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware(), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ask := func() string {
		t.Helper()
		resp, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "What is the capital of France?"}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Model
	}
	if got := ask(); got != "gpt-4o" {
		t.Fatalf("before retraining: answered by %q, want gpt-4o (the weights score every text strong)", got)
	}

	saveWeights(t, weights, false)
	select {
	case c := <-changes:
		if len(c.Updated) != 1 || c.Updated[0] != "default" {
			t.Fatalf("reload after retraining: %+v, want the default team updated", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10 s of the weights file's replacement")
	}
	if got := ask(); got != "gpt-4o-mini" {
		t.Fatalf("after retraining: answered by %q, want gpt-4o-mini (the new weights score every text weak)", got)
	}
	if n := srv.Count(); n != 2 {
		t.Fatalf("the server saw %d calls, want 2 (the second routed anew, not the first's cached answer)", n)
	}

	// A reload that finds the same weights changes nothing.
	if err := preg.Reload(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if len(c.Updated) != 0 {
			t.Fatalf("a reload of unchanged files updated %v", c.Updated)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported for the explicit reload")
	}
}
