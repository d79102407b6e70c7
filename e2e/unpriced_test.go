package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestUnpricedModelIsWarnedOnce: a caller of a model the catalog and the
// policy have no price for (a local model, another server's, a new one)
// under the default policy gets its answer, and the log says once per
// model that its calls cost an unknown amount, reported as $0, and how to
// price it. Before, such calls were reported at $0.00 without a word
// (llama3.2: 3 calls, $0.00), the bill silently missing from every
// report. A priced model's calls warn of nothing.
func TestUnpricedModelIsWarnedOnce(t *testing.T) {
	srv := openaitest.New()
	srv.On().Reply(openaitest.Text("hi"))
	var logs bytes.Buffer
	var cost atomic.Int64
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			cost.Add(f.Facts.CostPico)
		}
	})
	c := goClient(t, srv, policies.Default(), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	for i, model := range []string{"llama3.2", "llama3.2", "gpt-4o-mini", "llama3.2", "qwen3:8b"} {
		if _, err := c.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: model,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("question %d", i)}}}); err != nil {
			t.Fatalf("%s: %v", model, err)
		}
	}
	if cost.Load() == 0 {
		t.Errorf("gpt-4o-mini's call was billed nothing")
	}
	warned := map[string]int{}
	for line := range strings.Lines(logs.String()) {
		var rec struct{ Level, Msg, Model string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Contains(rec.Msg, "has no price") {
			warned[rec.Model]++
			if rec.Level != "WARN" || !strings.Contains(rec.Msg, "$0") || !strings.Contains(rec.Msg, "models:") {
				t.Errorf("warning %s: want a WARN that says its calls are reported at $0 and how to price the model under models:", line)
			}
		}
	}
	if warned["llama3.2"] != 1 || warned["qwen3:8b"] != 1 || len(warned) != 2 {
		t.Errorf("warnings per model %v, want one for llama3.2 and one for qwen3:8b:\n%s", warned, logs.String())
	}
}
