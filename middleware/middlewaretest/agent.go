package middlewaretest

import (
	"fmt"
	"strings"

	"github.com/tokenwise/tokenwise/middleware"
)

// AgentRequest returns a representative agent request, built afresh (its
// strings are its own): a 750-byte system prompt, a question, eight
// assistant tool calls each with its tool result (repeat × 480 bytes of
// output), the user message last, and three tools; gpt-4o-mini at
// temperature 0.2. With repeat 1 it is the 8 KB request of the end-to-end
// benchmarks (./bench), as a core request.
func AgentRequest(last string, repeat int) *middleware.Request {
	line := "The service web-%d reported disk usage of %d%% on /var at 12:%02d; logs rotate daily and the archive is kept for 14 days. "
	var sys strings.Builder
	for i := range 6 {
		fmt.Fprintf(&sys, line, i, 40+i, i)
	}
	msgs := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are an SRE assistant. Use the tools, be terse, cite hosts. " + sys.String()},
		{Role: middleware.RoleUser, Content: "Check the disks of the web tier and tell me which hosts need cleanup."},
	}
	for i := range 8 {
		id := fmt.Sprintf("call_%d", i)
		msgs = append(msgs,
			middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{
				ID: id, Name: "check_disk", Arguments: fmt.Sprintf(`{"host":"web-%d","path":"/var"}`, i)}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id,
				Content: fmt.Sprintf("Filesystem Size Used Avail Use%% Mounted on\n/dev/sda1 100G %dG %dG %d%% /var\n", 40+i, 60-i, 40+i) + strings.Repeat("ok ", 160*repeat)},
		)
	}
	msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: last})
	params := []byte(`{"type":"object","properties":{"host":{"type":"string"},"path":{"type":"string"}},"required":["host"]}`)
	var tools []middleware.Tool
	for _, name := range []string{"check_disk", "rotate_logs", "list_files"} {
		tools = append(tools, middleware.Tool{Name: name, Description: "Runs " + name + " on a host and returns its output.", Parameters: params})
	}
	t := 0.2
	return &middleware.Request{Model: "gpt-4o-mini", Messages: msgs, Tools: tools, Temperature: &t}
}
