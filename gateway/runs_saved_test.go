package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestGatewayRunReportSavedIsTheCaches: saved_usd of GET /v1/runs/{id} is
// the cache's savings, as documented; what the context compaction of the
// team's policy saved on another call of the run is not the cache's.
func TestGatewayRunReportSavedIsTheCaches(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\ncache: {enabled: true}\n" +
			"context: {max_input_tokens: 3000, strategies: [drop], keep_last_turns: 1, block_size: 2}\n",
	}
	e := start(t, pols, "")
	reply, per := billedReply()
	e.upstream.Default(reply)
	msgs := []map[string]string{{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Tell me a story."}}
	for i := range 6 {
		msgs = append(msgs, map[string]string{"role": "assistant", "content": strings.Repeat(fmt.Sprintf("word%d ", i), 500)},
			map[string]string{"role": "user", "content": "Go on."})
	}
	long, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": msgs})
	short := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"How full is the disk?"}]}`
	const id = "saved"
	for i, body := range []string{string(long), short, short} {
		if status, code := e.call(t, devopsKey, id, body); status != 200 {
			t.Fatalf("call %d: %d %q", i, status, code)
		}
	}
	if n := e.upstream.Count(); n != 2 {
		t.Fatalf("%d upstream calls, want 2 (the third is a cache hit)", n)
	}
	var compacted bool
	for _, r := range e.upstream.Requests() {
		compacted = compacted || r.Chat != nil && len(r.Chat.Messages) < len(msgs) && len(r.Chat.Messages) > 1
	}
	if !compacted {
		t.Fatal("the long conversation was not compacted")
	}
	status, rep, code := e.runReport(t, devopsKey, id)
	if status != 200 {
		t.Fatalf("%d %q", status, code)
	}
	if rep.CacheHits != 1 || rep.SavedPico != per || rep.SavedUSD != strings.TrimPrefix(middleware.FormatPico(per), "$") {
		t.Fatalf("cache hits %d, saved %d pico (%s), want 1 hit saving %d pico", rep.CacheHits, rep.SavedPico, rep.SavedUSD, per)
	}
}
