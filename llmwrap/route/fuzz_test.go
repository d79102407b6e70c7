package route_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

type routeBytes struct {
	b []byte
	i int
}

func (f *routeBytes) n(k int) int {
	if f.i >= len(f.b) {
		return 0
	}
	f.i++
	return int(f.b[f.i-1]) % k
}

var (
	fuzzModels = []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-nano", "o3-mini"}
	fuzzWords  = []string{"deploy", "Deploy", "DEPLOY", "deployment", "check", "check-up", "checkout", "status", "ſtatus", "İstanbul",
		"istanbul", "k8s", "K8S", "kelvin", "\u212aelvin", "error", "_error", "disk space", "disk", "space", "日本", "ünïcode", "x",
		"\n", " ", ", ", ".", "-", "🚀", "\xff\xfe", "\u0130", "straße", "STRASSE"}
	fuzzRegexes = []string{`(?i)\bdeploy\b`, `^check`, `disk\s+space`, `[0-9]{3,}`, `(?s).*`, `日本`, `error|status`, `\bk8s$`}
	fuzzStages  = []string{"tool_selection", "result_analysis", "final_answer"}
)

func (f *routeBytes) word() string { return fuzzWords[f.n(len(fuzzWords))] }

func (f *routeBytes) text() string {
	var b strings.Builder
	long := f.n(2) == 0 // long texts go through the keyword memo
	for k := f.n(12); k > 0 || (long && b.Len() < 80); k-- {
		b.WriteString(f.word())
		b.WriteString([]string{" ", "", ",", "\t"}[f.n(4)])
		if b.Len() > 4096 {
			break
		}
	}
	return b.String()
}

// fuzzPolicy writes a policy file of random routing rules.
func fuzzPolicy(f *routeBytes) string {
	var b strings.Builder
	b.WriteString("version: 1\nrouting:\n")
	if f.n(3) != 0 {
		fmt.Fprintf(&b, "  default: %s\n", fuzzModels[f.n(len(fuzzModels))])
	}
	n := f.n(6)
	if n == 0 {
		return b.String()
	}
	b.WriteString("  rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: r%d\n      model: %s\n      when:\n", i, fuzzModels[f.n(len(fuzzModels))])
		empty, text := true, false
		if f.n(3) == 0 {
			fmt.Fprintf(&b, "        stage: %s\n", fuzzStages[f.n(len(fuzzStages))])
			empty = false
		}
		if k := f.n(4); k > 0 {
			var kws []string
			for range k {
				kws = append(kws, fmt.Sprintf("%q", strings.TrimSpace(f.word())))
			}
			fmt.Fprintf(&b, "        keywords: [%s]\n", strings.Join(kws, ", "))
			empty, text = false, true
		}
		if f.n(4) == 0 {
			fmt.Fprintf(&b, "        regex: %q\n", fuzzRegexes[f.n(len(fuzzRegexes))])
			empty, text = false, true
		}
		if f.n(2) == 0 && text {
			b.WriteString("        keywords_in: conversation\n")
		}
		if f.n(4) == 0 {
			fmt.Fprintf(&b, "        max_input_tokens: %d\n", 1+f.n(200)*10)
			empty = false
		}
		if f.n(5) == 0 {
			fmt.Fprintf(&b, "        min_input_tokens: %d\n", 1+f.n(200)*10)
			empty = false
		}
		if f.n(4) == 0 {
			fmt.Fprintf(&b, "        has_tools: %v\n", f.n(2) == 0)
			empty = false
		}
		if f.n(6) == 0 {
			fmt.Fprintf(&b, "        requested_model: [%q]\n", []string{"gpt-4o*", "gpt-4o", "o3-*"}[f.n(3)])
			empty = false
		}
		if empty {
			b.WriteString("        {}\n")
		}
	}
	return b.String()
}

func fuzzRouteRequest(f *routeBytes) *middleware.Request {
	req := &middleware.Request{Model: fuzzModels[f.n(len(fuzzModels))]}
	if f.n(2) == 0 {
		req.Tools = []middleware.Tool{{Name: "check_disk"}}
	}
	for i := range f.n(12) {
		switch f.n(6) {
		case 0:
			req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleSystem, Content: f.text()})
		case 1:
			req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleAssistant, Content: f.text()})
		case 2:
			id := fmt.Sprint("call_", i)
			req.Messages = append(req.Messages,
				middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "check_disk", Arguments: "{}"}}},
				middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: f.text()})
		case 3:
			req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleUser,
				Parts: []middleware.Part{{Type: "text", Text: f.text()}, {Type: "image_url", URL: "https://example.com/a.png"}, {Type: "text", Text: f.text()}}})
		default:
			req.Messages = append(req.Messages, middleware.Message{Role: middleware.RoleUser, Content: f.text()})
		}
	}
	return req
}

// FuzzRouteDecidesOneOfThePolicysModels loads a policy of random routing
// rules (stages, keywords over the last user message or the conversation,
// regular expressions, token thresholds, tools, requested models) with
// policies.LoadBytes, and routes a random request (system messages
// anywhere, tool calls, multimodal parts, Unicode case folding, invalid
// UTF-8) through its rules: the decision is the policy's default, one of
// its rules' models, or none when it has no default; and it is the same
// for the same request from rules that saw it before (the keyword memo)
// and from rules built anew, for the very strings and for equal copies.
func FuzzRouteDecidesOneOfThePolicysModels(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 1, 0, 2, 0, 3, 4, 5, 1, 1, 1, 0, 0, 0, 1, 6, 3, 2, 1, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	f.Add([]byte("\x01\x01\x05\x00\x00\x03\x05\x06\x07\x01\x00\x01\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := &routeBytes{b: data}
		yaml := fuzzPolicy(fb)
		p, err := policies.LoadBytes([]byte(yaml), "fuzz.yaml")
		if err != nil {
			return // the loader's own fuzz target checks its errors
		}
		warm, err := llmwrap.NewRules(p)
		if err != nil {
			t.Fatalf("a loaded policy's rules: %v\n%s", err, yaml)
		}
		cold, err := llmwrap.NewRules(p)
		if err != nil {
			t.Fatal(err)
		}
		models := []string{p.Routing.Default}
		for _, r := range p.Routing.Rules {
			models = append(models, r.Model)
		}
		req := fuzzRouteRequest(fb)
		ctx := context.Background()
		if fb.n(3) == 0 {
			ctx = middleware.WithStage(ctx, middleware.Stage(append(fuzzStages, "planning")[fb.n(len(fuzzStages)+1)]))
		}
		route1 := func(r route.Router, req *middleware.Request) (route.Decision, bool) {
			return r.Route(ctx, route.NewQuery(ctx, req))
		}
		d, ok := route1(warm, req)
		if ok != (d.Model != "") || (ok && !slices.Contains(models, d.Model)) || (!ok && p.Routing.Default != "") {
			t.Fatalf("decision %+v (%v), models of the policy %q\n%s", d, ok, models, yaml)
		}
		for i, r := range []struct {
			router route.Router
			req    *middleware.Request
		}{{warm, req}, {warm, req}, {warm, req.DeepClone()}, {cold, req.DeepClone()}, {cold, req}} {
			if d2, ok2 := route1(r.router, r.req); d2 != d || ok2 != ok {
				t.Fatalf("decision %d: %+v (%v), first %+v (%v)\n%s", i, d2, ok2, d, ok, yaml)
			}
		}
	})
}
