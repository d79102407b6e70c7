package main

import (
	"context"
	"encoding/json"
	"fmt"
)

// tool is one of the agent's tools, usable from the langchaingo agent
// (tools.Tool) and from the go-openai loop.
type tool struct {
	name, description string
	run              func(ctx context.Context, input string) (string, error)
}

func (t tool) Name() string        { return t.name }
func (t tool) Description() string { return t.description }
func (t tool) Call(ctx context.Context, input string) (string, error) {
	return t.run(ctx, input)
}

func devopsTools() []tool {
	return []tool{
		{name: "check_disk", description: "Reports disk usage and the largest folders.",
			run: func(ctx context.Context, input string) (string, error) { return diskReport, nil }},
		{name: "clean_logs", description: "Deletes rotated logs in a folder and reports the space freed.",
			run: func(ctx context.Context, input string) (string, error) { return cleanReport, nil }},
	}
}

// argOf reads the single string argument of a tool call (the shape
// langchaingo's OpenAI-functions agent declares: {"__arg1": "..."}).
func argOf(arguments string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(arguments), &m); err != nil {
		return arguments
	}
	if v, ok := m["__arg1"]; ok {
		return fmt.Sprint(v)
	}
	return arguments
}
