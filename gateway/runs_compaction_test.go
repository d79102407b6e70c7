package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestGatewayRunReportHasCompactionSavings: GET /v1/runs/{id} reports
// what the context compaction of the team's policy saved
// (compaction_saved_usd), the same figure the library's run report gives
// for the same conversation under the same policy, apart from the
// cache's savings (saved_usd), which it leaves as they were.
func TestGatewayRunReportHasCompactionSavings(t *testing.T) {
	const devops = "version: 1\nname: devops\ncache: {enabled: true}\n" +
		"context: {max_input_tokens: 3000, strategies: [drop], keep_last_turns: 1, block_size: 2}\n"
	e := start(t, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": devops}, "")
	reply, per := billedReply()
	e.upstream.Default(reply)
	msgs := []goopenai.ChatCompletionMessage{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Tell me a story."}}
	for i := range 6 {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "assistant", Content: strings.Repeat(fmt.Sprintf("word%d ", i), 500)},
			goopenai.ChatCompletionMessage{Role: "user", Content: "Go on."})
	}
	long, _ := json.Marshal(goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs})
	short := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"How full is the disk?"}]}`
	const id = "compacted"
	for i, body := range []string{string(long), short, short} {
		if status, code := e.call(t, devopsKey, id, body); status != 200 {
			t.Fatalf("call %d: %d %q", i, status, code)
		}
	}
	status, rep, code := e.runReport(t, devopsKey, id)
	if status != 200 {
		t.Fatalf("%d %q", status, code)
	}

	// The library, same policy, same conversation.
	p, err := policies.LoadBytes([]byte(devops), "devops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := llmwrap.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	srv.On().Reply(reply)
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	ctx, run := middleware.StartRun(context.Background(), id)
	if _, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	lib := run.Totals().SavedPico
	if lib <= 0 {
		t.Fatalf("the library's run saved %d pico by compaction, want some", lib)
	}
	if rep.CompactionSavedPico != lib || rep.CompactionSavedUSD != strings.TrimPrefix(middleware.FormatPico(lib), "$") {
		t.Errorf("gateway's compaction saved %d pico (%q), want the library's %d", rep.CompactionSavedPico, rep.CompactionSavedUSD, lib)
	}
	if rep.SavedPico != per {
		t.Errorf("saved_usd_pico %d, want the one cache hit's %d", rep.SavedPico, per)
	}
}
