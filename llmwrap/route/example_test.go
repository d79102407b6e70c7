package route_test

import (
	"context"
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
)

// Rules route by stage and by whole-word keywords, and explain each
// decision. The requests offer a tool: a request without tools is never
// tool selection.
func Example() {
	rules, err := route.NewRules(route.Config{
		Default: "gpt-4o",
		Rules: []route.Rule{{Name: "cheap-tool-selection", Model: "gpt-4o-mini",
			When: route.Condition{Stage: middleware.StageToolSelection, Keywords: []string{"check", "status"}}}},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, task := range []string{"Check the disk on web-3", "checkout the repo and fix the build"} {
		req := &middleware.Request{Messages: []middleware.Message{{Role: middleware.RoleUser, Content: task}},
			Tools: []middleware.Tool{{Name: "check_disk"}}}
		d, _ := rules.Route(ctx, route.NewQuery(ctx, req))
		fmt.Printf("%-36q → %s (%s)\n", task, d.Model, d.Rule)
	}
	// Output:
	// "Check the disk on web-3"            → gpt-4o-mini (rule 1 "cheap-tool-selection": stage=tool_selection, keyword "check")
	// "checkout the repo and fix the build" → gpt-4o (default "gpt-4o": no rule matched)
}
