package llmwrap_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Build turns a policy into a middleware chain; a go-openai client adopts
// it through its HTTP client. Here the policy sends tool selection to the
// cheap model and caps the run at two calls.
func ExampleBuild() {
	pol, err := policies.LoadBytes([]byte(`version: 1
limits: {max_calls: 2}
routing:
  default: gpt-4o
  rules:
    - name: cheap-tool-selection
      when: {stage: tool_selection}
      model: gpt-4o-mini
`), "devops.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, err := llmwrap.Build(pol)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := openaitest.New() // a scripted OpenAI-compatible server, in memory
	defer srv.Close()
	srv.On().Reply(openaitest.ToolCalls(openaitest.Call("c1", "check_disk", `{}`)))

	cfg := goopenai.DefaultConfig("sk-...")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)

	ctx, run := middleware.StartRun(context.Background(), "ticket-4711")
	tools := []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{Name: "check_disk"}}}
	for i := range 3 {
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Tools: tools,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("Is the disk full? (%d)", i)}}})
		if err != nil {
			fmt.Printf("call %d refused by the run guard: %v\n", i+1, errors.Is(err, guard.ErrMaxCalls))
		}
	}
	for _, c := range run.Calls() {
		if c.Err == nil {
			fmt.Printf("call %d: %s, %s\n", c.Seq, c.Model, c.Rule)
		}
	}
	// Output:
	// call 3 refused by the run guard: true
	// call 1: gpt-4o-mini, rule 1 "cheap-tool-selection": stage=tool_selection
	// call 2: gpt-4o-mini, rule 1 "cheap-tool-selection": stage=tool_selection
}

// NewRegistry serves each call with the chain of its team's policy file
// (middleware.WithTeam) and follows the directory's reloads. A team
// without a file gets the default policy with a warning, or, with
// teams: {unknown: error}, an error.
func ExampleNewRegistry() {
	dir, err := os.MkdirTemp("", "policies")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("version: 1\nlimits: {max_calls: 10}\nteams: {unknown: error}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "devops.yaml"), []byte("version: 1\nextends: default.yaml\nlimits: {max_calls: 1}\n"), 0o644)

	pols, err := policies.NewRegistry(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	// go pols.Watch(ctx) would hot-reload edits.
	reg, err := llmwrap.NewRegistry(pols)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Close()
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	h := reg.Handler(provider)
	for _, team := range []string{"devops", "", "devosp"} {
		ctx, _ := middleware.StartRun(middleware.WithTeam(context.Background(), team), "r")
		ok := 0
		var err error
		for range 3 {
			if _, err = h.Handle(ctx, &middleware.Request{Model: "gpt-4o"}); err != nil {
				break
			}
			ok++
		}
		fmt.Printf("team %q: served %d of 3, unknown team: %v\n", team, ok, errors.Is(err, policies.ErrUnknownTeam))
	}
	// Output:
	// team "devops": served 1 of 3, unknown team: false
	// team "": served 3 of 3, unknown team: false
	// team "devosp": served 0 of 3, unknown team: true
}
