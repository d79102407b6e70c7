package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

// TestReportModelLineSaysWhatTheCacheSaved: a model's line of the run
// report says how many of its calls the cache answered and what those
// hits saved; the money a context compaction saved on another call of the
// same model is not the cache's (it is in the run's "saved:" line).
func TestReportModelLineSaysWhatTheCacheSaved(t *testing.T) {
	t.Parallel()
	srv := openaitest.New()
	srv.On().Reply(openaitest.Text("ok"))
	p := mustPolicy(t, "version: 1\ncache: {enabled: true}\ncontext: {max_input_tokens: 3000, strategies: [drop], keep_last_turns: 1, block_size: 2}\n")
	client := goClient(t, srv, p)
	ctx, run := middleware.StartRun(context.Background(), "saved")
	long := []goopenai.ChatCompletionMessage{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Tell me a story."}}
	for i := range 6 {
		long = append(long, goopenai.ChatCompletionMessage{Role: "assistant", Content: strings.Repeat(fmt.Sprintf("word%d ", i), 500)},
			goopenai.ChatCompletionMessage{Role: "user", Content: "Go on."})
	}
	short := []goopenai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}
	for _, msgs := range [][]goopenai.ChatCompletionMessage{long, short, short} {
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
	calls := run.Calls()
	if len(calls) != 3 || calls[0].SavedPico <= 0 || calls[0].Cache == middleware.CacheHit || calls[2].Cache != middleware.CacheHit || calls[2].SavedPico <= 0 {
		t.Fatalf("want a compacted call, a miss and a hit: %+v", calls)
	}
	rep := observe.Report(run)
	want := fmt.Sprintf("gpt-4o: 3 calls (1 from the cache, saved %s)", middleware.FormatPico(calls[2].SavedPico))
	if !strings.Contains(rep, want) {
		t.Errorf("report lacks %q:\n%s", want, rep)
	}
	total := fmt.Sprintf("saved: %d tokens, %s (1 cache hit)", calls[0].Saved.Total()+calls[2].Saved.Total(),
		middleware.FormatPico(calls[0].SavedPico+calls[2].SavedPico))
	if !strings.Contains(rep, total) {
		t.Errorf("report lacks %q:\n%s", total, rep)
	}
}
