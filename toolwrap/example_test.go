package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// One turn of three tool calls: two independent checks run in parallel,
// a failing tool becomes an observation, results come back in call order.
func ExampleExecutor_Execute() {
	ex, err := toolwrap.New([]toolwrap.Tool{
		{Name: "check_disk", Call: func(context.Context, string) (string, error) {
			return "Disk Usage: 95% (CRITICAL). Large folder: /var/log", nil
		}},
		{Name: "check_memory", Call: func(context.Context, string) (string, error) { return "Memory: 41% used", nil }},
		{Name: "clean_logs", Meta: toolwrap.Meta{SideEffects: true, Timeout: 30 * time.Second},
			Call: func(context.Context, string) (string, error) { return "", errors.New("read-only file system") }},
	}, toolwrap.Config{MaxParallel: 4})
	if err != nil {
		panic(err)
	}
	ctx, run := middleware.StartRun(context.Background(), "ticket-4711")
	results, err := ex.Execute(ctx, []middleware.ToolCall{
		{ID: "call_1", Name: "check_disk", Arguments: `{}`},
		{ID: "call_2", Name: "check_memory", Arguments: `{}`},
		{ID: "call_3", Name: "clean_logs", Arguments: `{"path":"/var/log"}`},
	})
	fmt.Println("error:", err)
	for _, r := range results {
		fmt.Printf("%s %s: %s\n", r.CallID, r.Name, r.Content)
	}
	fmt.Println("recorded:", len(run.Tools()))
	// Output:
	// error: <nil>
	// call_1 check_disk: Disk Usage: 95% (CRITICAL). Large folder: /var/log
	// call_2 check_memory: Memory: 41% used
	// call_3 clean_logs: tool clean_logs failed: read-only file system
	// recorded: 3
}

// A large result is stored as an artifact; the conversation gets an
// excerpt, and read_artifact reads lines back within the same run.
func ExampleArtifacts() {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "log line %d\n", i)
	}
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0),
		toolwrap.ArtifactConfig{ThresholdBytes: 1024, HeadLines: 2, TailLines: 1}, nil)
	ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "read_logs",
		Call: func(context.Context, string) (string, error) { return b.String(), nil }}}, toolwrap.Config{}, toolwrap.WithArtifacts(arts))

	ctx, _ := middleware.StartRun(context.Background(), "run-1")
	res, _ := ex.Execute(ctx, []middleware.ToolCall{{ID: "c1", Name: "read_logs"}})
	id := res[0].Artifact
	fmt.Println(strings.ReplaceAll(res[0].Content, id, "art_…"))

	read, _ := ex.Execute(ctx, []middleware.ToolCall{{ID: "c2", Name: "read_artifact",
		Arguments: fmt.Sprintf(`{"id":%q,"offset":500,"limit":2}`, id)}})
	fmt.Println(strings.ReplaceAll(read[0].Content, id, "art_…"))

	other, _ := middleware.StartRun(context.Background(), "run-2")
	stolen, _ := ex.Execute(other, []middleware.ToolCall{{ID: "c3", Name: "read_artifact",
		Arguments: fmt.Sprintf(`{"id":%q}`, id)}})
	fmt.Println(strings.ReplaceAll(stolen[0].Content, id, "art_…"))
	// Output:
	// [tool result stored as artifact art_…: 12890 bytes, 1000 lines. Read it with read_artifact: {"id":"art_…","offset":0,"limit":50} or {"id":"art_…","grep":"regexp"}]
	// log line 0
	// log line 1
	// ... 997 lines omitted (lines 2-998) ...
	// log line 999
	// [art_… lines 500-501 of 1000]
	// log line 500
	// log line 501
	// tool read_artifact failed: artifact "art_…" not found
}
